"""/v1/threads and /v1/threads/{id}/messages through the official client and raw HTTP."""

from __future__ import annotations

import json

import openai
import pytest

from jan.sdk.storage import read_lines

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
BETA = {"OpenAI-Beta": "assistants=v2"}


def assert_error(r, status: int, param: str | None = None) -> dict:
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    if param is not None:
        assert error["param"] == param, error
    return error


async def test_every_route_through_the_official_client(openai_client, host):
    seen: list[tuple[str, dict]] = []

    async def record(topic, data):
        seen.append((topic, data))

    host.host.bus.on("*", record)
    beta = openai_client.beta
    thread = await beta.threads.create(
        messages=[{"role": "user", "content": "hello", "metadata": {"n": "0"}},
                  {"role": "assistant", "content": [{"type": "text", "text": "hi there"}]}],
        metadata={"topic": "demo"})
    assert thread.object == "thread" and thread.metadata == {"topic": "demo"}
    assert (await beta.threads.retrieve(thread.id)).id == thread.id
    made = [await beta.threads.messages.create(thread.id, role="user", content=f"m{i}")
            for i in range(9)]
    # auto-paginating iteration in both orders, 3 per page
    asc = [m async for m in beta.threads.messages.list(thread.id, order="asc", limit=3)]
    desc = [m async for m in beta.threads.messages.list(thread.id, order="desc", limit=3)]
    assert [m.content[0].text.value for m in asc] == ["hello", "hi there"] + [
        f"m{i}" for i in range(9)]
    assert [m.id for m in desc] == [m.id for m in asc][::-1]
    assert asc[1].role == "assistant" and asc[0].metadata == {"n": "0"}
    assert all(m.status == "completed" and m.thread_id == thread.id for m in asc)
    page = await beta.threads.messages.list(thread.id, limit=4, before=made[3].id,
                                            order="asc")
    assert [m.id for m in page.data] == [asc[1].id] + [m.id for m in made[:3]]
    assert page.has_more
    one = await beta.threads.messages.retrieve(made[4].id, thread_id=thread.id)
    assert one == made[4]
    changed = await beta.threads.messages.update(made[4].id, thread_id=thread.id,
                                                 metadata={"seen": "yes"})
    assert changed.metadata == {"seen": "yes"} and changed.content == made[4].content
    gone = await beta.threads.messages.delete(made[4].id, thread_id=thread.id)
    assert gone.deleted and gone.object == "thread.message.deleted"
    updated = await beta.threads.update(thread.id, metadata={"more": "1"})
    assert updated.metadata == {"topic": "demo", "more": "1"}
    deleted = await beta.threads.delete(thread.id)
    assert deleted.deleted and deleted.object == "thread.deleted"
    with pytest.raises(openai.NotFoundError) as info:
        await beta.threads.messages.list(thread.id)
    assert info.value.body["code"] == "not_found"
    await host.host.bus.drain()
    topics = [t for t, _ in seen]
    for topic in ("thread.created", "message.created", "message.updated", "message.deleted",
                  "thread.updated", "thread.deleted"):
        assert topic in topics
    assert ("message.updated", changed.model_dump(mode="json")) in [
        (t, d) for t, d in seen if t == "message.updated"]


async def test_jan_list_and_patch(client):
    ids = []
    for i in range(5):
        r = await client.post("/v1/threads", json={"title": f"t{i}"}, headers=BETA)
        assert r.status_code == 200
        ids.append(r.json()["id"])
    r = await client.get("/v1/threads", params={"limit": 2}, headers=BETA)
    body = r.json()
    assert [t["id"] for t in body["data"]] == ids[::-1][:2]
    assert body["has_more"] is True and body["first_id"] == ids[4] and body["last_id"] == ids[3]
    r = await client.get("/v1/threads", params={"limit": 2, "after": body["last_id"]})
    assert [t["id"] for t in r.json()["data"]] == [ids[2], ids[1]]
    r = await client.patch(f"/v1/threads/{ids[0]}", json={"title": "renamed",
                                                           "metadata": {"k": "v"}})
    assert r.status_code == 200, r.text
    assert r.json()["title"] == "renamed" and r.json()["metadata"] == {"k": "v"}
    assert (await client.get(f"/v1/threads/{ids[0]}")).json()["title"] == "renamed"
    r = await client.post(f"/v1/threads/{ids[1]}")  # an empty modify is a retrieve
    assert r.status_code == 200 and r.json()["title"] == "t1"


async def test_errors_name_the_field(client):
    thread = (await client.post("/v1/threads", json={})).json()
    url = f"/v1/threads/{thread['id']}/messages"
    assert_error(await client.get("/v1/threads/thread_missing"), 404, "thread_id")
    assert_error(await client.patch("/v1/threads/thread_missing", json={}), 404)
    assert_error(await client.get("/v1/threads/..%2Fetc"), 404)
    assert_error(await client.get(f"{url}/01HZNOTHERE0000000000000000"), 404, "message_id")
    assert_error(await client.post(f"{url}/01HZNOTHERE0000000000000000",
                                   json={"metadata": {"a": "b"}}), 404)
    cases = [
        ({"role": "user", "content": "x", "metadata": {"k": "v" * 513}}, "metadata"),
        ({"role": "user", "content": "x", "metadata": {"k" * 65: "v"}}, "metadata"),
        ({"role": "user", "content": "x", "metadata": {"k": 1}}, "metadata"),
        ({"role": "user", "content": "x", "metadata": "nope"}, "metadata"),
        ({"role": "user"}, "content"),
        ({"role": "robot", "content": "x"}, "role"),
        ({"role": "user", "content": [{"type": "video"}]}, "content"),
    ]
    for body, param in cases:
        error = assert_error(await client.post(url, json=body), 400)
        assert error["param"] is not None and error["param"].startswith(param), (body, error)
    error = assert_error(await client.post(f"/v1/threads/{thread['id']}",
                                           json={"metadata": {f"k{i}": "v" for i in
                                                              range(17)}}), 400, "metadata")
    assert "16" in error["message"]
    assert_error(await client.post("/v1/threads", json={"messages": [{"role": "user"}]}), 400)
    assert_error(await client.get(url, params={"limit": 101}), 400, "limit")
    assert_error(await client.get(url, params={"order": "random"}), 400, "order")
    assert (await client.get(f"/v1/threads/{thread['id']}")).json()["metadata"] == {}


async def test_file_shapes_behind_the_api(client, data_folder):
    thread = (await client.post("/v1/threads", json={"title": "files"})).json()
    r = await client.post(f"/v1/threads/{thread['id']}/messages", json={
        "role": "user", "content": [{"type": "text", "text": "look"},
                                    {"type": "image_url", "image_url": {"url": "http://x/y.png"}}],
        "attachments": [{"file_id": "file-1", "tools": [{"type": "file_search"}]}]})
    assert r.status_code == 200, r.text
    api = r.json()
    folder = data_folder / "threads" / thread["id"]
    on_disk = json.loads((folder / "thread.json").read_text())
    assert on_disk["created"] // 1000 == thread["created_at"] and on_disk["title"] == "files"
    (line,), bad = read_lines(folder / "messages.jsonl")
    assert bad == [] and line["id"] == api["id"] and line["status"] == "ready"
    assert line["created"] // 1000 == api["created_at"]
    assert line["content"][0] == {"type": "text", "text": {"value": "look", "annotations": []}}
    assert api["content"][1] == {"type": "image_url", "image_url": {"url": "http://x/y.png"}}
    assert line["attachments"] == api["attachments"]


async def test_system_and_odd_messages_still_validate(openai_client, data_folder):
    thread = await openai_client.beta.threads.create()
    path = data_folder / "threads" / thread.id / "messages.jsonl"
    path.write_text(json.dumps({
        "id": "01HZSYS0000000000000000000", "thread_id": thread.id, "role": "system",
        "content": [{"type": "text", "text": {"value": "be nice", "annotations": ["x"]}},
                    {"type": "pdf", "text": {"value": "a.pdf", "annotations": []}}],
        "status": "pending", "created": 1717666240, "metadata": {"n": 3, "ok": True},
        "attachments": [{"file_id": "f", "tools": [{"type": "retrieval"}]}]}) + "\n")
    (msg,) = [m async for m in openai_client.beta.threads.messages.list(thread.id)]
    assert msg.role == "assistant" and msg.model_extra["jan_role"] == "system"
    assert msg.status == "in_progress" and msg.created_at == 1717666240
    assert msg.content[0].text.value == "be nice" and len(msg.content) == 1
    assert msg.metadata == {"n": "3", "ok": "true"}
    assert msg.attachments[0].tools[0].type == "file_search"
