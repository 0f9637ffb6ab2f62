"""Conversations through the official client: CRUD, items, pagination, the conversation list,
and a conversation being a thread (both ways), on the file stores and on PostgreSQL."""

from __future__ import annotations

import openai
import pg_fixtures
import pytest
from conftest import asgi_client
from responses_fixtures import (
    SCRIPTED,
    ScriptedEngine,
    fake_model,
    openai_for,
    text_script,
    use_engine,
)

pg_dsn = pg_fixtures.pg_dsn
pg_server = pg_fixtures.pg_server
PG = {"modules": {"threads": "threads-postgresql", "messages": "messages-postgresql",
                  "inference": "scripted"}}


def msg(text: str, role: str = "user") -> dict:
    return {"type": "message", "role": role, "content": [{"type": "input_text", "text": text}]}


@pytest.fixture(params=["files", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def api(request, make_host, data_folder):
    fake_model(data_folder)
    settings = dict(SCRIPTED)
    if request.param == "postgresql":
        dsn = request.getfixturevalue("pg_dsn")
        settings = {**PG, "extensions": {"threads-postgresql": {"dsn": dsn}}}
    async with make_host(settings=settings) as jan, asgi_client(jan) as http:
        use_engine(jan, ScriptedEngine(text_script("Noted")))
        yield openai_for(http), http


async def test_conversation_crud(api):
    client, _ = api
    conv = await client.conversations.create(metadata={"topic": "tea"}, items=[msg("hello")])
    assert conv.object == "conversation" and conv.metadata == {"topic": "tea"}
    got = await client.conversations.retrieve(conv.id)
    assert got.id == conv.id and got.created_at == conv.created_at
    updated = await client.conversations.update(conv.id, metadata={"topic": "coffee"})
    assert updated.metadata == {"topic": "coffee"}
    deleted = await client.conversations.delete(conv.id)
    assert deleted.deleted and deleted.id == conv.id
    with pytest.raises(openai.NotFoundError):
        await client.conversations.retrieve(conv.id)


async def test_items_crud_and_pagination(api):
    client, _ = api
    conv = await client.conversations.create()
    added = await client.conversations.items.create(
        conv.id, items=[msg(f"m{i}") for i in range(5)])
    assert [i.content[0].text for i in added.data] == [f"m{i}" for i in range(5)]
    page = await client.conversations.items.list(conv.id, limit=2)  # default order: desc
    assert [i.content[0].text for i in page.data] == ["m4", "m3"] and page.has_more
    page2 = await client.conversations.items.list(conv.id, limit=2, after=page.last_id)
    assert [i.content[0].text for i in page2.data] == ["m2", "m1"]
    every = [i.content[0].text async for i in client.conversations.items.list(
        conv.id, limit=2, order="asc")]
    assert every == [f"m{i}" for i in range(5)]
    one = await client.conversations.items.retrieve(added.data[1].id, conversation_id=conv.id)
    assert one.content[0].text == "m1"
    after = await client.conversations.items.delete(added.data[1].id, conversation_id=conv.id)
    assert after.id == conv.id
    left = [i.content[0].text async for i in client.conversations.items.list(conv.id,
                                                                              order="asc")]
    assert left == ["m0", "m2", "m3", "m4"]
    with pytest.raises(openai.NotFoundError):
        await client.conversations.items.retrieve(added.data[1].id, conversation_id=conv.id)


async def test_bad_items_add_nothing(api):
    client, http = api
    conv = await client.conversations.create()
    r = await http.post(f"/v1/conversations/{conv.id}/items", json={"items": [
        msg("fine"), {"type": "message", "role": "robot", "content": "x"}]})
    assert r.status_code == 400 and r.json()["error"]["param"] == "items[1].role"
    assert (await client.conversations.items.list(conv.id)).data == []


async def test_conversation_list_newest_first_with_cursor(api):
    _, http = api
    ids = [(await http.post("/v1/conversations", json={})).json()["id"] for _ in range(3)]
    page = (await http.get("/v1/conversations", params={"limit": 2})).json()
    assert [c["id"] for c in page["data"]] == ids[::-1][:2] and page["has_more"]
    rest = (await http.get("/v1/conversations", params={"after": page["last_id"]})).json()
    assert [c["id"] for c in rest["data"]] == [ids[0]] and not rest["has_more"]
    assert all(c["object"] == "conversation" for c in page["data"])


async def test_a_conversation_is_a_thread_and_the_reverse(api):
    client, http = api
    conv = await client.conversations.create(items=[msg("from conversations")])
    thread = (await http.get(f"/v1/threads/{conv.id}")).json()
    assert thread["id"] == conv.id
    msgs = (await http.get(f"/v1/threads/{conv.id}/messages")).json()["data"]
    assert msgs[0]["content"][0]["text"]["value"] == "from conversations"
    made = (await http.post("/v1/threads", json={"messages": [
        {"role": "user", "content": "from threads"}]})).json()
    items = await client.conversations.items.list(made["id"])
    assert items.data[0].content[0].text == "from threads"
    r = await client.responses.create(model="fake", input="continue", conversation=made["id"])
    assert r.conversation.id == made["id"] and r.output_text == "Noted"
    msgs = (await http.get(f"/v1/threads/{made['id']}/messages", params={"order": "asc"})
            ).json()["data"]
    assert [m["role"] for m in msgs] == ["user", "user", "assistant"]
    assert msgs[2]["content"][0]["text"]["value"] == "Noted"
