"""One conformance suite for the thread and message API, run against every provider.

The same tests drive ``/v1/threads`` and ``/v1/threads/{id}/messages`` with the file stores
(the default) and with ``threads-postgresql``/``messages-postgresql`` chosen in settings.json
``modules``: ids, ordering, cursor pagination, errors and events must be indistinguishable.
The PostgreSQL run uses a real server (see ``tests/pg_fixtures.py``).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pg_fixtures
import psycopg
import pytest

# PostgreSQL fixtures (tests/pg_fixtures.py), made visible to this module's tests.
pg_dsn = pg_fixtures.pg_dsn
pg_server = pg_fixtures.pg_server

PG_MODULES = {"threads": "threads-postgresql", "messages": "messages-postgresql"}


@pytest.fixture(params=["files", pytest.param("postgresql", marks=pytest.mark.postgres)])
def provider(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def store_settings(provider: str, request: pytest.FixtureRequest,
                   monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    if provider == "files":
        return {}
    dsn = request.getfixturevalue("pg_dsn")
    monkeypatch.delenv("JAN_POSTGRES_DSN", raising=False)  # the setting below must count
    return {"modules": PG_MODULES, "extensions": {"threads-postgresql": {"dsn": dsn}}}


@pytest.fixture
async def host(make_host, store_settings):  # overrides conftest's: same host, chosen stores
    async with make_host(settings=store_settings) as jan:
        yield jan


@pytest.fixture
def events(host) -> list[tuple[str, Any]]:
    seen: list[tuple[str, Any]] = []

    async def record(topic: str, data: Any) -> None:
        seen.append((topic, data))

    host.host.bus.on("thread.*", record)
    host.host.bus.on("message.*", record)
    return seen


async def drained(host, events: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    await host.host.bus.drain()
    return list(events)


def assert_error(r, status: int, *, param: str | None = None, code: str | None = None,
                 contains: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert isinstance(error["message"], str) and error["message"]
    assert error["type"] == ("invalid_request_error" if status < 500 else "server_error")
    if param is not None:
        assert error["param"] == param
    if code is not None:
        assert error["code"] == code
    if contains is not None:
        assert contains in error["message"]
    return error


async def new_thread(client, **body: Any) -> dict[str, Any]:
    r = await client.post("/v1/threads", json=body)
    assert r.status_code == 200, r.text
    return r.json()


async def new_message(client, thread_id: str, text: str, role: str = "user",
                      **body: Any) -> dict[str, Any]:
    r = await client.post(f"/v1/threads/{thread_id}/messages",
                          json={"role": role, "content": text, **body})
    assert r.status_code == 200, r.text
    return r.json()


async def page(client, url: str, **params: Any) -> dict[str, Any]:
    r = await client.get(url, params={k: v for k, v in params.items() if v is not None})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "list"
    ids = [item["id"] for item in body["data"]]
    assert body["first_id"] == (ids[0] if ids else None)
    assert body["last_id"] == (ids[-1] if ids else None)
    return body


async def check_pagination(client, url: str, created: list[str]) -> None:
    """Every window of ``url`` against the known creation order ``created``."""
    asc, desc = created, created[::-1]
    full = await page(client, url, limit=100, order="asc")
    assert [i["id"] for i in full["data"]] == asc and full["has_more"] is False
    default = await page(client, url)
    assert [i["id"] for i in default["data"]] == desc  # newest first by default
    for order, ids in (("asc", asc), ("desc", desc)):
        seen: list[str] = []
        after = None
        while True:
            p = await page(client, url, limit=3, order=order, after=after)
            got = [i["id"] for i in p["data"]]
            assert got == ids[len(seen):len(seen) + 3]
            seen += got
            assert p["has_more"] is (len(seen) < len(ids))
            if not p["has_more"]:
                break
            after = p["last_id"]
        assert seen == ids
        p = await page(client, url, limit=2, order=order, before=ids[5])
        assert [i["id"] for i in p["data"]] == ids[3:5] and p["has_more"] is True
        p = await page(client, url, limit=10, order=order, before=ids[2])
        assert [i["id"] for i in p["data"]] == ids[0:2] and p["has_more"] is False
        p = await page(client, url, limit=5, order=order, after=ids[-1])
        assert p["data"] == [] and p["has_more"] is False
        assert p["first_id"] is None and p["last_id"] is None


# --------------------------------------------------------------------------- threads
async def test_thread_create_retrieve_and_event(client, host, events):
    body = await new_thread(client, metadata={"topic": "tests"}, title="First")
    assert body["object"] == "thread" and body["id"].startswith("thread_")
    assert body["metadata"] == {"topic": "tests"}
    assert body["title"] == "First"
    r = await client.get(f"/v1/threads/{body['id']}")
    assert r.status_code == 200 and r.json() == body
    assert await drained(host, events) == [("thread.created", body)]


async def test_thread_modify_merges_metadata(client, host, events):
    thread = await new_thread(client, metadata={"a": "1", "b": "2"})
    r = await client.post(f"/v1/threads/{thread['id']}",
                          json={"metadata": {"b": "3", "c": "4"}, "title": "Renamed"})
    assert r.status_code == 200, r.text
    modified = r.json()
    assert modified["metadata"] == {"a": "1", "b": "3", "c": "4"}
    assert modified["title"] == "Renamed"
    assert modified["created_at"] == thread["created_at"]
    assert (await client.get(f"/v1/threads/{thread['id']}")).json() == modified
    assert (await drained(host, events))[-1] == ("thread.updated", modified)


async def test_thread_delete_removes_its_messages(client, host, events):
    thread = await new_thread(client)
    await new_message(client, thread["id"], "hello")
    r = await client.delete(f"/v1/threads/{thread['id']}")
    assert r.status_code == 200
    assert r.json() == {"id": thread["id"], "object": "thread.deleted", "deleted": True}
    assert_error(await client.get(f"/v1/threads/{thread['id']}"), 404, code="not_found",
                 contains=thread["id"])
    assert_error(await client.get(f"/v1/threads/{thread['id']}/messages"), 404,
                 code="not_found")
    assert_error(await client.delete(f"/v1/threads/{thread['id']}"), 404, code="not_found")
    assert (await drained(host, events))[-1] == ("thread.deleted", r.json())


async def test_thread_pagination(client):
    created = [(await new_thread(client, title=f"t{i}"))["id"] for i in range(7)]
    await check_pagination(client, "/v1/threads", created)


async def test_thread_errors(client):
    assert_error(await client.get("/v1/threads/thread_nope"), 404, code="not_found",
                 contains="thread_nope")
    assert_error(await client.post("/v1/threads/thread_nope", json={"title": "x"}), 404,
                 code="not_found")
    assert_error(await client.get("/v1/threads", params={"limit": 0}), 400, param="limit")
    assert_error(await client.get("/v1/threads", params={"limit": 101}), 400, param="limit")
    assert_error(await client.get("/v1/threads", params={"order": "sideways"}), 400,
                 param="order")
    assert_error(await client.get("/v1/threads", params={"after": "thread_nope"}), 400,
                 param="after")
    too_many = {f"k{i}": "v" for i in range(17)}
    assert_error(await client.post("/v1/threads", json={"metadata": too_many}), 400,
                 param="metadata")
    r = await client.post("/v1/threads", content=b"{not json",
                          headers={"content-type": "application/json"})
    assert_error(r, 400)


# --------------------------------------------------------------------------- messages
async def test_message_create_retrieve_and_event(client, host, events):
    thread = await new_thread(client)
    text = "héllo wörld 🌍 with a NUL \u0000 and \"quotes\"\nnew line"
    message = await new_message(client, thread["id"], text, metadata={"k": "v"})
    assert message["object"] == "thread.message"
    assert message["thread_id"] == thread["id"] and message["role"] == "user"
    assert message["content"] == [{"type": "text", "text": {"value": text, "annotations": []}}]
    assert message["metadata"] == {"k": "v"}
    r = await client.get(f"/v1/threads/{thread['id']}/messages/{message['id']}")
    assert r.status_code == 200 and r.json() == message
    got = await drained(host, events)
    assert ("message.created", message) in got


async def test_large_message_round_trips(client, host, events):
    thread = await new_thread(client)
    text = "".join(chr(0x41 + i % 26) for i in range(50_000)) + " ✓"
    message = await new_message(client, thread["id"], text)
    listed = await page(client, f"/v1/threads/{thread['id']}/messages")
    assert listed["data"] == [message]
    assert listed["data"][0]["content"][0]["text"]["value"] == text
    assert ("message.created", message) in await drained(host, events)


async def test_message_modify_and_delete(client, host, events):
    thread = await new_thread(client)
    first = await new_message(client, thread["id"], "one", metadata={"a": "1"})
    second = await new_message(client, thread["id"], "two", role="assistant")
    url = f"/v1/threads/{thread['id']}/messages"
    r = await client.post(f"{url}/{first['id']}", json={"metadata": {"b": "2"}})
    assert r.status_code == 200, r.text
    modified = r.json()
    assert modified["metadata"] == {"a": "1", "b": "2"}
    assert modified["content"] == first["content"]
    assert (await client.get(f"{url}/{first['id']}")).json() == modified
    r = await client.delete(f"{url}/{first['id']}")
    assert r.status_code == 200
    assert r.json() == {"id": first["id"], "object": "thread.message.deleted", "deleted": True}
    assert [m["id"] for m in (await page(client, url))["data"]] == [second["id"]]
    assert_error(await client.get(f"{url}/{first['id']}"), 404, code="not_found",
                 contains=first["id"])
    assert_error(await client.delete(f"{url}/{first['id']}"), 404, code="not_found")
    # Only message events: a thread.updated (an automatic title) may land anywhere in between.
    seen = [(t, d) for t, d in await drained(host, events) if t.startswith("message.")]
    assert [t for t, _ in seen][-2:] == ["message.updated", "message.deleted"]
    assert seen[-1] == ("message.deleted", r.json())


async def test_message_pagination(client):
    thread = await new_thread(client)
    created = [(await new_message(client, thread["id"], f"m{i}"))["id"] for i in range(7)]
    await check_pagination(client, f"/v1/threads/{thread['id']}/messages", created)


async def test_messages_keep_creation_order_under_concurrency(client):
    thread = await new_thread(client)
    url = f"/v1/threads/{thread['id']}/messages"
    results = await asyncio.gather(*(
        client.post(url, json={"role": "user", "content": f"c{i}"}) for i in range(20)))
    assert all(r.status_code == 200 for r in results)
    listed = await page(client, url, limit=100, order="asc")
    assert sorted(m["id"] for m in listed["data"]) == sorted(r.json()["id"] for r in results)
    assert len(listed["data"]) == 20


async def test_thread_created_with_messages(client):
    thread = await new_thread(client, messages=[
        {"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}])
    listed = await page(client, f"/v1/threads/{thread['id']}/messages", order="asc")
    assert [m["content"][0]["text"]["value"] for m in listed["data"]] == ["hi", "hello"]
    assert [m["role"] for m in listed["data"]] == ["user", "assistant"]


async def test_message_errors(client):
    thread = await new_thread(client)
    url = f"/v1/threads/{thread['id']}/messages"
    await new_message(client, thread["id"], "x")
    assert_error(await client.get("/v1/threads/thread_nope/messages"), 404, code="not_found",
                 contains="thread_nope")
    assert_error(await client.post("/v1/threads/thread_nope/messages",
                                   json={"role": "user", "content": "x"}), 404,
                 code="not_found")
    assert_error(await client.get(f"{url}/msg_nope"), 404, code="not_found",
                 contains="msg_nope")
    assert_error(await client.post(f"{url}/msg_nope", json={"metadata": {}}), 404,
                 code="not_found")
    assert_error(await client.post(url, json={"content": "no role"}), 400, param="role")
    assert_error(await client.post(url, json={"role": "wizard", "content": "x"}), 400,
                 param="role")
    assert_error(await client.get(url, params={"limit": 0}), 400, param="limit")
    assert_error(await client.get(url, params={"limit": 101}), 400, param="limit")
    assert_error(await client.get(url, params={"order": "up"}), 400, param="order")
    assert_error(await client.get(url, params={"before": "msg_nope"}), 400, param="before")
    assert_error(await client.get("/v1/threads/thread_nope/messages",
                                  params={"after": "msg_nope"}), 404, code="not_found")


# --------------------------------------------------------------------------- official client
async def test_openai_client_round_trip(openai_client):
    thread = await openai_client.beta.threads.create(
        messages=[{"role": "user", "content": "first"}], metadata={"via": "sdk"})
    assert thread.metadata == {"via": "sdk"}
    for i in range(4):
        await openai_client.beta.threads.messages.create(
            thread.id, role="user" if i % 2 else "assistant", content=f"n{i}")
    texts = [m.content[0].text.value async for m in
             openai_client.beta.threads.messages.list(thread.id, order="asc", limit=2)]
    assert texts == ["first", "n0", "n1", "n2", "n3"]
    newest = await openai_client.beta.threads.messages.list(thread.id, limit=1)
    assert newest.data[0].content[0].text.value == "n3" and newest.has_more
    updated = await openai_client.beta.threads.update(thread.id, metadata={"more": "yes"})
    assert updated.metadata == {"via": "sdk", "more": "yes"}
    msg = newest.data[0]
    changed = await openai_client.beta.threads.messages.update(
        msg.id, thread_id=thread.id, metadata={"seen": "1"})
    assert changed.metadata == {"seen": "1"}
    gone = await openai_client.beta.threads.messages.delete(msg.id, thread_id=thread.id)
    assert gone.deleted
    assert (await openai_client.beta.threads.delete(thread.id)).deleted
    import openai

    with pytest.raises(openai.NotFoundError) as info:
        await openai_client.beta.threads.retrieve(thread.id)
    assert info.value.body["code"] == "not_found"


# --------------------------------------------------------------------------- provider check
async def test_the_chosen_provider_serves(client, provider, store_settings, data_folder):
    """Guards the parametrisation: the PostgreSQL run must really hit the database."""
    thread = await new_thread(client)
    message = await new_message(client, thread["id"], "where am I stored?")
    on_disk = (data_folder / "threads" / thread["id"]).exists()
    if provider == "files":
        assert on_disk
        return
    assert not on_disk
    dsn = store_settings["extensions"]["threads-postgresql"]["dsn"]
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        row = await (await conn.execute(
            "SELECT m.content FROM messages m JOIN threads t ON t.id = m.thread_id "
            "WHERE m.id = %s", (message["id"],))).fetchone()
    assert row[0][0]["text"]["value"] == "where am I stored?"
