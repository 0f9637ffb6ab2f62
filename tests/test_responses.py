"""The Responses API with the real SmolLM2 model through the official client (strict
validation): plain, instructions, json_schema, streaming, chains, conversations, store:false,
retrieve/delete/input_items, background and cancel, assistants."""

from __future__ import annotations

import asyncio
import json

import openai
import pytest
from conftest import asgi_client
from responses_fixtures import MODEL, openai_for, write_model
from sandbox_fixtures import write_assistant

pytestmark = pytest.mark.slow


@pytest.fixture
async def api(make_host, data_folder, smollm_path):
    write_model(data_folder, smollm_path)
    async with make_host() as jan, asgi_client(jan) as http:
        yield openai_for(http), http


async def test_plain_and_instructions(api, data_folder):
    client, _ = api
    r = await client.responses.create(model=MODEL, input="Say hello.", max_output_tokens=24)
    assert r.object == "response" and r.model == MODEL and r.output_text.strip()
    assert r.status in ("completed", "incomplete") and r.usage.output_tokens > 0
    assert r.usage.total_tokens == r.usage.input_tokens + r.usage.output_tokens
    assert r.usage.input_tokens_details.cached_tokens >= 0
    assert (data_folder / "storage" / "responses" / f"{r.id}.json").is_file()
    plain_in = r.usage.input_tokens
    r = await client.responses.create(model=MODEL, input="Say hello.", max_output_tokens=24,
                                      instructions="You are a pirate. Answer like a pirate.")
    # The instructions replace the template's default system prompt: another prompt length.
    assert r.instructions.startswith("You are a pirate") and r.usage.input_tokens != plain_in


async def test_json_schema_format(api):
    client, _ = api
    schema = {"type": "object", "properties": {"city": {"type": "string"}},
              "required": ["city"], "additionalProperties": False}
    r = await client.responses.create(
        model=MODEL, input="Name a city in France as JSON.", max_output_tokens=60,
        text={"format": {"type": "json_schema", "name": "city", "schema": schema,
                         "strict": True}})
    assert r.status == "completed"
    assert isinstance(json.loads(r.output_text)["city"], str)
    assert r.text.format.type == "json_schema"


async def test_stream_helper_and_event_order(api):
    client, _ = api
    kinds, seqs, deltas = [], [], []
    async with client.responses.stream(model=MODEL, input="Say OK.",
                                       max_output_tokens=300) as stream:
        async for event in stream:
            kinds.append(event.type)
            seqs.append(event.sequence_number)
            if event.type == "response.output_text.delta":
                deltas.append(event.delta)
        final = await stream.get_final_response()
    assert final.output_text == "".join(deltas) and deltas
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    head = ["response.created", "response.in_progress", "response.output_item.added",
            "response.content_part.added", "response.output_text.delta"]
    tail = ["response.output_text.done", "response.content_part.done",
            "response.output_item.done", "response.completed"]
    assert kinds[:5] == head and kinds[-4:] == tail
    assert set(kinds[4:-4]) == {"response.output_text.delta"}
    stored = await client.responses.retrieve(final.id)
    assert stored.output_text == final.output_text


async def test_three_turn_chain_sees_the_first_turn(api):
    client, _ = api
    r1 = await client.responses.create(model=MODEL, input="My name is Zorblax.",
                                       max_output_tokens=16, instructions="Be short.")
    r2 = await client.responses.create(model=MODEL, input="I live in Lyon.",
                                       previous_response_id=r1.id, max_output_tokens=16)
    r3 = await client.responses.create(
        model=MODEL, previous_response_id=r2.id, max_output_tokens=16,
        input="Repeat exactly: my name is Zorblax. What is my name?")
    assert r3.previous_response_id == r2.id and r2.instructions is None
    # The third prompt holds both earlier turns: its input grew by at least their text.
    assert r3.usage.input_tokens > r2.usage.input_tokens + r2.usage.output_tokens
    items = await client.responses.input_items.list(r3.id)
    assert items.data[0].content[0].text.startswith("Repeat exactly")
    assert "Zorblax" in r3.output_text or r3.usage.input_tokens > 60


async def test_the_same_through_a_conversation(api, data_folder):
    client, http = api
    conv = await client.conversations.create()
    for text in ("My name is Zorblax.", "I live in Lyon.", "What is my name?"):
        r = await client.responses.create(model=MODEL, input=text, conversation=conv.id,
                                          max_output_tokens=16)
        assert r.conversation.id == conv.id
    items = [i async for i in client.conversations.items.list(conv.id, order="asc")]
    assert [i.role for i in items] == ["user", "assistant"] * 3
    assert items[0].content[0].text == "My name is Zorblax."
    thread = (await http.get(f"/v1/threads/{conv.id}/messages")).json()
    assert len(thread["data"]) == 6


async def test_store_false_retrieve_delete_input_items(api, data_folder):
    client, _ = api
    r = await client.responses.create(model=MODEL, input="Hi", store=False,
                                      max_output_tokens=8)
    assert r.store is False and r.output_text
    assert not (data_folder / "storage" / "responses" / f"{r.id}.json").exists()
    kept = await client.responses.create(
        model=MODEL, max_output_tokens=8,
        input=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}])
    got = await client.responses.retrieve(kept.id)
    assert got.id == kept.id and got.output_text == kept.output_text
    items = await client.responses.input_items.list(kept.id, order="asc")
    assert [i.role for i in items.data] == ["system", "user"]
    await client.responses.delete(kept.id)
    with pytest.raises(openai.NotFoundError):
        await client.responses.retrieve(kept.id)


async def test_background_then_cancel(api):
    client, _ = api
    r = await client.responses.create(model=MODEL, input="Say hi.", background=True,
                                      max_output_tokens=8)
    assert r.background and r.status in ("queued", "in_progress")
    for _ in range(600):
        r = await client.responses.retrieve(r.id)
        if r.status not in ("queued", "in_progress"):
            break
        await asyncio.sleep(0.1)
    assert r.status in ("completed", "incomplete") and r.output_text
    long = await client.responses.create(model=MODEL, input="Write a long story.",
                                         background=True, max_output_tokens=2000)
    cancelled = await client.responses.cancel(long.id)
    assert cancelled.status in ("cancelled", "completed", "incomplete")
    again = await client.responses.retrieve(long.id)
    assert again.status == cancelled.status


async def test_assistant_by_extension_field_and_prompt_id(make_host, data_folder, smollm_path):
    write_model(data_folder, smollm_path)
    write_assistant(data_folder, "pirate", None, name="Pirate",
                    instructions="You are a pirate.", model=MODEL)
    async with make_host() as jan, asgi_client(jan) as http:
        client = openai_for(http)
        r = await client.responses.create(input="Hi", max_output_tokens=8,
                                          extra_body={"assistant": "pirate", "model": "*"})
        assert r.instructions == "You are a pirate." and r.model == MODEL
        r = await client.responses.create(model="*", input="Hi", max_output_tokens=8,
                                          prompt={"id": "pirate"})
        assert r.instructions == "You are a pirate." and r.prompt.id == "pirate"
        bad = await http.post("/v1/responses", json={"model": "*", "input": "x",
                                                     "assistant": "nobody"})
        assert bad.status_code == 404 and bad.json()["error"]["param"] == "assistant"


ECHO = """
from jan.sdk.assistant import events, thread

@events.on("assistant:echo")
def reply(event):
    return {"content": " | ".join(m["role"] + ":" + m["content"] for m in thread.messages())}
"""


async def test_code_assistant_answers_a_response(make_host, data_folder, smollm_path):
    write_model(data_folder, smollm_path)
    write_assistant(data_folder, "echo", ECHO, name="Echo")
    settings = {"sandbox": {"timeout": 20, "autostart": False}}
    async with make_host(settings=settings) as jan, asgi_client(jan) as http:
        client = openai_for(http)
        r = await client.responses.create(model="*", input="hello", prompt={"id": "echo"})
        assert r.output_text == "user:hello"
        r2 = await client.responses.create(model="*", input="again", prompt={"id": "echo"},
                                           previous_response_id=r.id)
        assert r2.output_text == "user:hello | assistant:user:hello | user:again"
        threads = (await http.get("/v1/threads")).json()["data"]
        assert threads == []  # the temporary thread is gone


async def test_sampling_metadata_json_object_and_truncation(api):
    client, _ = api
    r = await client.responses.create(
        model=MODEL, input="Give me a JSON object describing a cat.", max_output_tokens=64,
        temperature=0.7, top_p=0.9, metadata={"k": "v"}, truncation="auto",
        parallel_tool_calls=False, text={"format": {"type": "json_object"}})
    assert (r.temperature, r.top_p, r.metadata, r.truncation) == (0.7, 0.9, {"k": "v"}, "auto")
    assert r.parallel_tool_calls is False and r.text.format.type == "json_object"
    if r.status == "completed":
        assert isinstance(json.loads(r.output_text), dict)
    else:  # cut by max_output_tokens: still the start of an object
        assert r.output_text.lstrip().startswith("{")
