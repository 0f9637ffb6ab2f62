"""The Responses API's own logic against a scripted inference provider (fast, no model):
function-tool flow, what a chain or a conversation sends to the engine, store:false, errors."""

from __future__ import annotations

import asyncio
import json

import openai
import pytest
from conftest import asgi_client
from responses_fixtures import (
    SCRIPTED,
    ScriptedEngine,
    call_script,
    fake_model,
    openai_for,
    text_script,
    use_engine,
)

from jan.sdk.errors import InvalidRequest, Unavailable
from jan.sdk.inference import Delta, Done

WEATHER = {"type": "function", "name": "get_weather", "description": "Weather in a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                          "required": ["city"]}}


@pytest.fixture
def engine() -> ScriptedEngine:
    return ScriptedEngine(text_script("Hello from the script"))


@pytest.fixture
async def api(make_host, data_folder, engine):
    fake_model(data_folder)
    async with make_host(settings=SCRIPTED) as jan, asgi_client(jan) as http:
        use_engine(jan, engine)
        yield openai_for(http), http, jan


async def test_function_call_then_its_output(api, engine, data_folder):
    client, _, _ = api
    engine.scripts = [call_script("get_weather", '{"city": "Paris"}'),
                      text_script("It is sunny in Paris")]
    r = await client.responses.create(model="fake", input="Weather in Paris?", tools=[WEATHER],
                                      tool_choice={"type": "function", "name": "get_weather"})
    assert r.status == "completed"
    call = r.output[0]
    assert call.type == "function_call" and call.name == "get_weather"
    assert json.loads(call.arguments) == {"city": "Paris"} and call.call_id == "call_1"
    asked = engine.requests[0]
    assert asked.tools[0].function.name == "get_weather"
    assert asked.tool_choice.name == "get_weather"
    r2 = await client.responses.create(
        model="fake", previous_response_id=r.id, tools=[WEATHER],
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}])
    assert r2.output_text == "It is sunny in Paris"
    turns = engine.requests[1].messages
    assert [m.role for m in turns] == ["user", "assistant", "tool"]
    assert turns[1].tool_calls[0].name == "get_weather" and turns[2].tool_call_id == "call_1"
    assert turns[2].content == "sunny"


async def test_streamed_function_call_events(api, engine):
    _, http, _ = api
    engine.scripts = [call_script("get_weather", '{"city": "Oslo"}')]
    async with http.stream("POST", "/v1/responses", json={
            "model": "fake", "input": "weather?", "tools": [WEATHER], "stream": True}) as r:
        assert r.status_code == 200
        events = [json.loads(line[6:]) async for line in r.aiter_lines()
                  if line.startswith("data: ")]
    kinds = [e["type"] for e in events]
    assert kinds == ["response.created", "response.in_progress", "response.output_item.added",
                     "response.function_call_arguments.delta",
                     "response.function_call_arguments.delta",
                     "response.function_call_arguments.done", "response.output_item.done",
                     "response.completed"]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert events[5]["arguments"] == '{"city": "Oslo"}'
    assert events[-1]["response"]["output"][0]["arguments"] == '{"city": "Oslo"}'


async def test_chain_sends_every_turn_but_not_old_instructions(api, engine):
    client, _, _ = api
    r1 = await client.responses.create(model="fake", input="my name is Ada",
                                       instructions="first rules")
    r2 = await client.responses.create(model="fake", input="second", previous_response_id=r1.id)
    await client.responses.create(model="fake", input="what is my name?",
                                  previous_response_id=r2.id, instructions="third rules")
    third = engine.requests[2].messages
    assert [(m.role, m.content) for m in third] == [
        ("system", "third rules"), ("user", "my name is Ada"),
        ("assistant", "Hello from the script"), ("user", "second"),
        ("assistant", "Hello from the script"), ("user", "what is my name?")]
    assert r2.instructions is None


async def test_conversation_items_are_the_history(api, engine):
    client, http, _ = api
    conv = await client.conversations.create(items=[{"type": "message", "role": "user",
                                                     "content": "I like tea"}])
    await client.responses.create(model="fake", input="and you?", conversation=conv.id)
    await client.responses.create(model="fake", input="what do I like?", conversation=conv.id)
    assert [m.content for m in engine.requests[1].messages] == [
        "I like tea", "and you?", "Hello from the script", "what do I like?"]
    items = await client.conversations.items.list(conv.id, order="asc")
    assert [i.role for i in items.data] == ["user", "user", "assistant", "user", "assistant"]
    msgs = (await http.get(f"/v1/threads/{conv.id}/messages", params={"order": "asc"})).json()
    assert [m["content"][0]["text"]["value"] for m in msgs["data"]][:2] == ["I like tea",
                                                                           "and you?"]


async def test_function_items_in_a_conversation_are_skipped_by_thread_readers(
        api, engine, data_folder):
    client, http, _ = api
    engine.scripts = [call_script("get_weather", '{"city": "Rome"}')]
    conv = await client.conversations.create()
    r = await client.responses.create(model="fake", input="weather?", conversation=conv.id,
                                      tools=[WEATHER])
    items = await client.conversations.items.list(conv.id, order="asc")
    assert [i.type for i in items.data] == ["message", "function_call"]
    assert items.data[1].call_id == r.output[0].call_id
    lines = (data_folder / "threads" / conv.id / "messages.jsonl").read_text().splitlines()
    record = json.loads(lines[1])
    assert record["content"] == [] and record["jan_item"]["type"] == "function_call"
    assert record["object"] == "thread.message"
    thread_msgs = (await http.get(f"/v1/threads/{conv.id}/messages")).json()["data"]
    assert thread_msgs[0]["content"] == []


async def test_store_false_keeps_nothing(api, data_folder):
    client, _, _ = api
    r = await client.responses.create(model="fake", input="hi", store=False)
    assert r.store is False and r.output_text == "Hello from the script"
    assert not list((data_folder / "storage").rglob(f"{r.id}*"))
    with pytest.raises(openai.NotFoundError):
        await client.responses.retrieve(r.id)


async def test_retention_bound_prunes_oldest(make_host, data_folder, engine):
    fake_model(data_folder)
    settings = {**SCRIPTED, "extensions": {"responses": {"max_stored_responses": 2}}}
    async with make_host(settings=settings) as jan, asgi_client(jan) as http:
        use_engine(jan, engine)
        client = openai_for(http)
        ids = [(await client.responses.create(model="fake", input=f"n{i}")).id for i in range(3)]
        left = sorted(p.stem for p in (data_folder / "storage" / "responses").glob("*.json"))
        assert left == sorted(ids[1:])
        with pytest.raises(openai.NotFoundError):
            await client.responses.retrieve(ids[0])


@pytest.mark.parametrize("body,param", [
    ({"model": "fake", "input": "x", "reasoning": {"effort": "high"}}, "reasoning"),
    ({"model": "fake", "input": "x", "tools": [{"type": "web_search"}]}, "tools[0].type"),
    ({"model": "fake", "input": "x", "frobnicate": 1}, "frobnicate"),
    ({"model": "fake", "input": [{"type": "message", "role": "user", "content": [
        {"type": "input_image", "image_url": "http://x/y.png"}]}]}, "input[0].content[0]"),
    ({"model": "fake", "input": "x", "previous_response_id": "resp_nope"},
     "previous_response_id"),
    ({"model": "fake", "input": "x", "conversation": "conv_nope"}, "conversation"),
    ({"model": "nope", "input": "x"}, "model"),
    ({"model": "fake", "input": "x", "tool_choice": {"type": "function", "name": "zz"},
      "tools": [WEATHER]}, "tool_choice.name"),
    ({"model": "fake", "input": "x", "background": True, "store": False}, "background"),
    ({"model": "fake", "input": "x", "temperature": 5}, "temperature"),
])
async def test_what_we_cannot_honour_is_refused_by_name(api, body, param):
    _, http, _ = api
    r = await http.post("/v1/responses", json=body)
    assert r.status_code in (400, 404), r.text
    assert r.json()["error"]["param"] == param


async def test_bus_events_for_creation_and_completion(api):
    client, _, jan = api
    seen = []
    jan.host.bus.on("response.*", lambda topic, data: seen.append((topic, data["id"])))
    r = await client.responses.create(model="fake", input="hi")
    for _ in range(500):  # delivery is asynchronous: wait for it
        if ("response.completed", r.id) in seen:
            break
        await asyncio.sleep(0.01)
    assert ("response.created", r.id) in seen and ("response.completed", r.id) in seen


class Overflowing(ScriptedEngine):
    """Refuses prompts of more than ``limit`` turns, like a full context."""

    def __init__(self, limit: int) -> None:
        super().__init__(text_script("fits"))
        self.limit = limit

    async def generate(self, spec, request):
        self.requests.append(request)
        if len(request.messages) > self.limit:
            raise InvalidRequest("prompt too long", code="context_length_exceeded",
                                 param="messages")
        for event in self.scripts[0]:
            yield event


async def test_truncation_auto_drops_the_oldest_turns(make_host, data_folder):
    fake_model(data_folder)
    engine = Overflowing(limit=3)
    async with make_host(settings=SCRIPTED) as jan, asgi_client(jan) as http:
        use_engine(jan, engine)
        client = openai_for(http)
        prev = None
        for text in ("one", "two"):
            prev = (await client.responses.create(model="fake", input=text,
                                                  previous_response_id=prev)).id
        with pytest.raises(openai.BadRequestError):
            await client.responses.create(model="fake", input="three",
                                          previous_response_id=prev)
        r = await client.responses.create(model="fake", input="three", truncation="auto",
                                          previous_response_id=prev)
    assert r.output_text == "fits" and r.truncation == "auto"
    assert [m.content for m in engine.requests[-1].messages] == ["two", "fits", "three"]


class Gated(ScriptedEngine):
    """Streams one delta, then waits until released (or cancelled)."""

    def __init__(self) -> None:
        super().__init__(text_script("x"))
        self.release = asyncio.Event()

    async def generate(self, spec, request):
        yield Delta(text="partial")
        await self.release.wait()
        yield Done()


async def test_background_runs_then_cancel_stops_it(make_host, data_folder):
    fake_model(data_folder)
    engine = Gated()
    async with make_host(settings=SCRIPTED) as jan, asgi_client(jan) as http:
        use_engine(jan, engine)
        client = openai_for(http)
        r = await client.responses.create(model="fake", input="go", background=True)
        assert r.status == "queued" and r.background
        cancelled = await client.responses.cancel(r.id)
        assert cancelled.status == "cancelled"
        assert (await client.responses.retrieve(r.id)).status == "cancelled"
        engine.release.set()
        done = await client.responses.create(model="fake", input="go", background=True)
        for _ in range(500):
            done = await client.responses.retrieve(done.id)
            if done.status == "completed":
                break
            await asyncio.sleep(0.01)
        assert done.status == "completed" and done.output_text == "partial"
        plain = await client.responses.create(model="fake", input="go")
        with pytest.raises(openai.BadRequestError):
            await client.responses.cancel(plain.id)


class Failing(ScriptedEngine):
    async def generate(self, spec, request):
        yield Delta(text="half")
        raise Unavailable("the runner died")


async def test_failure_mid_stream_is_response_failed(make_host, data_folder):
    fake_model(data_folder)
    async with make_host(settings=SCRIPTED) as jan, asgi_client(jan) as http:
        use_engine(jan, Failing(text_script("x")))
        async with http.stream("POST", "/v1/responses", json={
                "model": "fake", "input": "x", "stream": True}) as r:
            events = [json.loads(line[6:]) async for line in r.aiter_lines()
                      if line.startswith("data: ")]
        last = events[-1]
        assert last["type"] == "response.failed"
        assert last["response"]["status"] == "failed"
        assert last["response"]["error"]["message"] == "the runner died"
        stored = (await http.get(f"/v1/responses/{last['response']['id']}")).json()
        assert stored["status"] == "failed"


async def test_input_items_pagination(api):
    client, _, _ = api
    r = await client.responses.create(model="fake", input=[
        {"role": "user", "content": f"m{i}"} for i in range(5)])
    page = await client.responses.input_items.list(r.id, limit=2)
    assert [i.content[0].text for i in page.data] == ["m4", "m3"] and page.has_more
    every = [i.content[0].text async for i in client.responses.input_items.list(
        r.id, limit=2, order="asc")]
    assert every == [f"m{i}" for i in range(5)]
