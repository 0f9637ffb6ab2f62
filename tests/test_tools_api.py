"""Tool calling through /v1/chat/completions: the real SmolLM2 model (whose chat template knows
nothing of tools, so our generic tool prompt and grammar do the work), the official client with
strict response validation, greedy sampling."""

from __future__ import annotations

import asyncio
import json

import openai
import pytest
from conftest import asgi_client
from test_chat_api import MODEL, write_model

pytestmark = pytest.mark.slow

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"},
                           "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
            "required": ["city", "unit"],
        },
    },
}
TIME = {"type": "function", "function": {
    "name": "get_time", "description": "Current time in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]


def strict(tool: dict) -> dict:
    """The SDK's stream helpers only take strict tools (closed schemas)."""
    fn = tool["function"]
    return {"type": "function", "function": {
        **fn, "strict": True, "parameters": {**fn["parameters"], "additionalProperties": False}}}


@pytest.fixture
async def api(make_host, data_folder, smollm_path):
    write_model(data_folder, smollm_path)
    async with make_host() as jan, asgi_client(jan) as http:
        client = openai.AsyncOpenAI(base_url="http://test/v1", api_key="local",
                                    http_client=http, _strict_response_validation=True,
                                    max_retries=0)
        yield client, http


def check_weather_args(arguments: str) -> dict:
    args = json.loads(arguments)
    assert set(args) == {"city", "unit"}
    assert isinstance(args["city"], str) and args["unit"] in ("celsius", "fahrenheit")
    return args


async def test_required_tool_gives_schema_valid_call(api):
    client, _ = api
    r = await client.chat.completions.create(model=MODEL, messages=ASK, tools=[WEATHER],
                                             tool_choice="required", max_tokens=80)
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    calls = choice.message.tool_calls
    assert calls and all(c.id.startswith("call_") and c.type == "function" for c in calls)
    assert len({c.id for c in calls}) == len(calls)
    assert calls[0].function.name == "get_weather"
    check_weather_args(calls[0].function.arguments)
    assert r.usage.completion_tokens > 5  # the call's tokens are counted


async def test_named_tool_streamed_reassembles_with_the_sdk_helper(api):
    client, _ = api
    named = {"type": "function", "function": {"name": "get_weather"}}
    async with client.chat.completions.stream(
            model=MODEL, messages=ASK, tools=[strict(TIME), strict(WEATHER)], tool_choice=named,
            parallel_tool_calls=False, max_tokens=80) as stream:
        async for _ in stream:
            pass
        final = await stream.get_final_completion()
    msg = final.choices[0].message
    assert final.choices[0].finish_reason == "tool_calls"
    assert len(msg.tool_calls) == 1 and msg.tool_calls[0].function.name == "get_weather"
    check_weather_args(msg.tool_calls[0].function.arguments)


async def test_streamed_deltas_have_the_canonical_shape(api):
    _, http = api
    body = {"model": MODEL, "messages": ASK, "tools": [WEATHER], "tool_choice": "required",
            "parallel_tool_calls": False, "max_tokens": 80, "stream": True}
    async with http.stream("POST", "/v1/chat/completions", json=body) as r:
        assert r.status_code == 200
        lines = [line async for line in r.aiter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line[6:]) for line in lines[:-1]]
    deltas = [c["choices"][0]["delta"] for c in chunks]
    assert deltas[0]["role"] == "assistant" and deltas[0]["content"] is None
    calls = [d["tool_calls"][0] for d in deltas if d.get("tool_calls")]
    assert calls[0]["id"].startswith("call_") and calls[0]["type"] == "function"
    assert calls[0]["function"] == {"name": "get_weather", "arguments": ""}
    for later in calls[1:]:  # only index and an argument fragment: never the name again
        assert set(later) == {"index", "function"} and set(later["function"]) == {"arguments"}
    assert not any(d.get("content") for d in deltas)  # no trigger text leaked into content
    check_weather_args("".join(c["function"]["arguments"] for c in calls))
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


async def test_two_turn_loop_call_then_answer(api):
    client, _ = api
    first = await client.chat.completions.create(model=MODEL, messages=ASK, tools=[WEATHER],
                                                 tool_choice="required",
                                                 parallel_tool_calls=False, max_tokens=80)
    call = first.choices[0].message.tool_calls[0]
    messages = [*ASK, first.choices[0].message.model_dump(exclude_none=True),
                {"role": "tool", "tool_call_id": call.id,
                 "content": json.dumps({"temperature": 21, "sky": "sunny"})}]
    second = await client.chat.completions.create(model=MODEL, messages=messages,
                                                  tools=[WEATHER], max_tokens=40)
    msg = second.choices[0].message
    assert msg.tool_calls is None and msg.content and msg.content.strip()
    assert second.choices[0].finish_reason in ("stop", "length")


async def test_tool_choice_none_gives_text(api):
    client, _ = api
    r = await client.chat.completions.create(model=MODEL, messages=ASK, tools=[WEATHER],
                                             tool_choice="none", max_tokens=30)
    assert r.choices[0].message.tool_calls is None
    assert r.choices[0].message.content.strip()
    assert r.choices[0].finish_reason in ("stop", "length")


async def test_parallel_calls_distinct_and_valid(api):
    client, _ = api
    ask = [{"role": "user", "content": "Weather in Paris and in Tokyo?"}]
    r = await client.chat.completions.create(model=MODEL, messages=ask, tools=[WEATHER],
                                             tool_choice="required", max_tokens=160)
    calls = r.choices[0].message.tool_calls
    assert calls and r.choices[0].finish_reason in ("tool_calls", "length")
    seen = [(c.function.name, c.function.arguments) for c in calls]
    assert len(set(seen)) == len(seen)  # a model looping on one call is cut, not repeated
    done = calls if r.choices[0].finish_reason == "tool_calls" else calls[:-1]
    for c in done:
        check_weather_args(c.function.arguments)


async def test_legacy_functions(api):
    client, http = api
    body = {"model": MODEL, "messages": ASK, "functions": [WEATHER["function"]],
            "function_call": {"name": "get_weather"}, "max_tokens": 80}
    r = await http.post("/v1/chat/completions", json=body)
    assert r.status_code == 200, r.text
    choice = r.json()["choices"][0]
    assert choice["finish_reason"] == "function_call"
    fc = choice["message"]["function_call"]
    assert fc["name"] == "get_weather"
    check_weather_args(fc["arguments"])
    turn = [*ASK, {"role": "assistant", "content": None, "function_call": fc},
            {"role": "function", "name": "get_weather", "content": "21 C"}]
    r2 = await http.post("/v1/chat/completions", json={
        "model": MODEL, "messages": turn, "functions": [WEATHER["function"]], "max_tokens": 20})
    assert r2.status_code == 200, r2.text


@pytest.mark.parametrize("change, param", [
    ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {
        "type": "object", "properties": {"a": {"$ref": "#/$defs/missing"}}}}}]},
     "tools[0].function.parameters"),
    ({"tool_choice": {"type": "function", "function": {"name": "nope"}}}, "tool_choice"),
    ({"tools": [{"type": "retrieval"}]}, "tools[0].type"),
    ({"tools": [{"type": "function", "function": {"name": "bad name!"}}]},
     "tools[0].function.name"),
    ({"tools": None, "tool_choice": "required"}, "tool_choice"),
    ({"messages": [*ASK, {"role": "tool", "tool_call_id": "call_x", "content": "1"}]},
     "messages[1].tool_call_id"),
    ({"messages": [*ASK, {"role": "tool", "content": "1"}]}, "messages[1].tool_call_id"),
    ({"messages": [*ASK, {"role": "assistant", "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": {}}}]}]},
     "messages[1].tool_calls[0].function.arguments"),
    ({"parallel_tool_calls": "yes"}, "parallel_tool_calls"),
])
async def test_bad_tool_requests_are_400s_naming_the_field(api, change, param):
    _, http = api
    body = {"model": MODEL, "messages": ASK, "tools": [WEATHER], "max_tokens": 5, **change}
    body = {k: v for k, v in body.items() if v is not None}
    for stream in (False, True):
        r = await http.post("/v1/chat/completions", json={**body, "stream": stream})
        assert r.status_code == 400, r.text
        err = r.json()["error"]
        assert err["param"] == param and err["type"] == "invalid_request_error"
        assert err["message"]


async def test_four_concurrent_streams_mixing_tools_and_chat(api):
    client, _ = api

    async def one(i: int) -> tuple[str | None, list]:
        if i % 2:  # plain chat (the SDK's helper refuses a reply cut by max_tokens)
            stream = await client.chat.completions.create(model=MODEL, messages=ASK,
                                                          max_tokens=30, stream=True)
            text = "".join([c.choices[0].delta.content or "" async for c in stream])
            return text, []
        async with client.chat.completions.stream(
                model=MODEL, messages=ASK, max_tokens=60, tools=[strict(WEATHER)],
                tool_choice="required", parallel_tool_calls=False) as stream:
            async for _ in stream:
                pass
            final = await stream.get_final_completion()
        msg = final.choices[0].message
        return msg.content, msg.tool_calls or []

    alone = await one(0)
    results = await asyncio.gather(*(one(i) for i in range(4)))
    for i, (content, calls) in enumerate(results):
        if i % 2 == 0:
            assert len(calls) == 1 and not content
            check_weather_args(calls[0].function.arguments)
            # greedy: the same call alone and batched with other streams
            assert calls[0].function.arguments == alone[1][0].function.arguments
        else:
            assert content and not calls
