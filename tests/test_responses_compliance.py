"""The seven checks of the Open Responses compliance suite, reproduced with the real model and
validated against the ``openresponses-types`` package, all seven requests sent at once.

The tool checks (tool calling, streaming tool calling) are validated like every other response,
and the last test checks that a call with valid arguments actually comes back.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import openresponses_types as ort
import pytest
from conftest import asgi_client
from responses_fixtures import MODEL, write_model

pytestmark = pytest.mark.slow

EVENTS = {list(cls.model_fields["type"].annotation)[0].value: cls
          for name, cls in vars(ort).items() if name.endswith("StreamingEvent")}
WEATHER = {"type": "function", "name": "get_weather", "description": "Get the weather",
           "parameters": {"type": "object", "properties": {"location": {"type": "string"}},
                          "required": ["location"]}}
CHECKS: dict[str, dict[str, Any]] = {
    "basic": {"input": "Say hello in one word."},
    "streaming": {"input": "Count from 1 to 3.", "stream": True},
    "system_prompt": {"instructions": "You are a pirate.", "input": "Say hello."},
    "tool_calling": {"input": "What's the weather in Paris?", "tools": [WEATHER],
                     "tool_choice": "required"},
    "streaming_tool_calling": {"input": "What's the weather in Tokyo?", "tools": [WEATHER],
                               "tool_choice": "required", "stream": True},
    "multi_turn": {"input": [
        {"type": "message", "role": "user", "content": "My name is Alice."},
        {"type": "message", "role": "assistant", "content": "Hello Alice!"},
        {"type": "message", "role": "user", "content": "What is my name?"}]},
    "image_input": {"input": [{"type": "message", "role": "user", "content": [
        {"type": "input_text", "text": "What is in this image?"},
        {"type": "input_image", "image_url": "https://example.com/cat.png"}]}]},
}


async def send(http: Any, body: dict[str, Any]) -> tuple[int, Any]:
    body = {"model": MODEL, "max_output_tokens": 48, **body}
    if not body.get("stream"):
        r = await http.post("/v1/responses", json=body)
        return r.status_code, r.json()
    events = []
    async with http.stream("POST", "/v1/responses", json=body) as r:
        name = None
        async for line in r.aiter_lines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                event = json.loads(line[6:])
                assert event["type"] == name  # named SSE events, no [DONE]
                events.append(event)
        return r.status_code, events


def valid_response(body: dict[str, Any]) -> ort.ResponseResource:
    return ort.ResponseResource.model_validate(body)


def valid_events(events: list[dict[str, Any]]) -> ort.ResponseResource:
    seqs = [e["sequence_number"] for e in events]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    for event in events:
        EVENTS[event["type"]].model_validate(event)
    assert events[0]["type"] == "response.created" and events[1]["type"] == "response.in_progress"
    assert events[-1]["type"] in ("response.completed", "response.incomplete")
    return valid_response(events[-1]["response"])


@pytest.fixture
async def http(make_host, data_folder, smollm_path):
    write_model(data_folder, smollm_path)
    async with make_host() as jan, asgi_client(jan) as client:
        yield client


async def test_seven_checks_at_once(http):
    results = dict(zip(CHECKS, await asyncio.gather(*(send(http, b) for b in CHECKS.values())),
                       strict=True))
    for name in ("basic", "system_prompt", "multi_turn", "tool_calling"):
        status, body = results[name]
        assert status == 200, (name, body)
        resource = valid_response(body)
        assert resource.output, name
    for name in ("streaming", "streaming_tool_calling"):
        status, events = results[name]
        assert status == 200, name
        valid_events(events)
    streamed = results["streaming"][1]
    text = "".join(e["delta"] for e in streamed if e["type"] == "response.output_text.delta")
    assert text and text == streamed[-1]["response"]["output"][0]["content"][0]["text"]
    assert results["system_prompt"][1]["instructions"] == "You are a pirate."
    status, error = results["image_input"]
    assert status == 400 and error["error"]["param"] == "input[0].content[1]"
    assert "text only" in error["error"]["message"]


async def test_tool_checks_return_calls(http):
    (s1, plain), (s2, events) = await asyncio.gather(
        send(http, CHECKS["tool_calling"]), send(http, CHECKS["streaming_tool_calling"]))
    assert s1 == 200 and s2 == 200
    call = valid_response(plain).output[0]
    assert plain["output"][0]["type"] == "function_call" and call.name == "get_weather"
    assert "location" in json.loads(plain["output"][0]["arguments"])
    kinds = [e["type"] for e in events]
    assert "response.function_call_arguments.delta" in kinds
    done = next(e for e in events if e["type"] == "response.function_call_arguments.done")
    assert "location" in json.loads(done["arguments"])
