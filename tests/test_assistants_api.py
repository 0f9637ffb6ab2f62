"""/v1/assistants over assistants/<id>/assistant.json: the official client, raw HTTP, files."""

from __future__ import annotations

import json
import os

import openai
import pytest

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

SEED_DEFAULT = {
    "name": "Jan",
    "description": "A global assistant that lets you chat with all downloaded models",
    "avatar": "https://jan.ai/img/logo.svg",
}


async def test_default_assistant_exists_and_cannot_be_deleted(openai_client, client,
                                                              data_folder):
    path = data_folder / "assistants" / "jan" / "assistant.json"
    assert json.loads(path.read_text()) == SEED_DEFAULT  # Jan's documented example, as is
    jan = await openai_client.beta.assistants.retrieve("jan")
    assert jan.id == "jan" and jan.name == "Jan" and jan.model == "*"
    assert jan.description == SEED_DEFAULT["description"] and jan.created_at > 0
    r = await client.delete("/v1/assistants/jan")
    assert r.status_code == 409
    assert "default assistant 'jan' cannot be deleted" in r.json()["error"]["message"]
    with pytest.raises(openai.ConflictError):
        await openai_client.beta.assistants.delete("jan")
    assert path.exists()


async def test_every_route_through_the_official_client(openai_client, host, data_folder):
    seen: list[tuple[str, dict]] = []

    async def record(topic, data):
        seen.append((topic, data))

    host.host.bus.on("assistant.*", record)
    a = openai_client.beta.assistants
    made = []
    for i in range(7):
        made.append(await a.create(
            model="*" if i % 2 else "smollm2", name=f"helper {i}", instructions="Be brief.",
            description="d", metadata={"i": str(i)}, temperature=0.5, top_p=0.9,
            tools=[{"type": "code_interpreter"},
                   {"type": "function", "function": {"name": "add", "parameters": {}}}]))
    first = made[0]
    assert first.id.startswith("asst_") and first.name == "helper 0" and first.model == "smollm2"
    assert first.temperature == 0.5 and first.top_p == 0.9 and len(first.tools) == 2
    on_disk = json.loads((data_folder / "assistants" / first.id / "assistant.json").read_text())
    assert on_disk["instructions"] == "Be brief." and on_disk["metadata"] == {"i": "0"}
    assert (await a.retrieve(first.id)) == first
    asc = [x.id async for x in a.list(order="asc", limit=2)]
    desc = [x.id async for x in a.list(order="desc", limit=3)]
    assert len(asc) == 8 and "jan" in asc and desc == asc[::-1]
    assert [i for i in asc if i != "jan"] == sorted(m.id for m in made)  # ties: by id
    updated = await a.update(first.id, name="renamed", metadata={"extra": "1"},
                             instructions="Be verbose.")
    assert updated.name == "renamed" and updated.metadata == {"i": "0", "extra": "1"}
    assert updated.created_at == first.created_at and updated.model == "smollm2"
    assert (await a.retrieve(first.id)).instructions == "Be verbose."
    gone = await a.delete(first.id)
    assert gone.deleted and gone.id == first.id and gone.object == "assistant.deleted"
    assert not (data_folder / "assistants" / first.id).exists()
    with pytest.raises(openai.NotFoundError):
        await a.retrieve(first.id)
    await host.host.bus.drain()
    topics = [t for t, _ in seen]
    assert topics.count("assistant.created") == 7
    assert ("assistant.updated", updated.model_dump(mode="json", exclude_unset=True)) in seen
    assert seen[-1] == ("assistant.deleted", gone.model_dump(mode="json"))


async def test_dropped_folders_appear_without_restart(client, data_folder):
    root = data_folder / "assistants"
    (root / "shakespeare").mkdir()
    (root / "shakespeare" / "assistant.json").write_text(
        json.dumps({"instructions": "Speak like the Bard."}))
    (root / "bare").mkdir()  # no assistant.json at all: still an assistant
    (root / "math").mkdir()
    (root / "math" / "assistant.json").write_text(json.dumps({"id": "asst_abc123",
                                                              "name": "Math Tutor"}))
    r = await client.get("/v1/assistants", params={"limit": 100})
    ids = {x["id"] for x in r.json()["data"]}
    assert {"jan", "shakespeare", "bare", "asst_abc123"} <= ids
    s = (await client.get("/v1/assistants/shakespeare")).json()
    assert s["name"] == "shakespeare" and s["instructions"] == "Speak like the Bard."
    assert s["model"] == "*" and s["tools"] == [] and s["metadata"] == {}
    assert (await client.get("/v1/assistants/bare")).json()["name"] == "bare"
    assert (await client.get("/v1/assistants/asst_abc123")).json()["name"] == "Math Tutor"
    # a hand edit shows at once
    (root / "shakespeare" / "assistant.json").write_text(
        json.dumps({"name": "Will", "instructions": "Speak like the Bard."}))
    assert (await client.get("/v1/assistants/shakespeare")).json()["name"] == "Will"
    # removed by hand: gone
    (root / "bare").rmdir()
    assert (await client.get("/v1/assistants/bare")).status_code == 404


async def test_data_changed_drops_the_parse_cache(client, host, data_folder):
    path = data_folder / "assistants" / "twin" / "assistant.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"name": "AAAA"}))
    assert (await client.get("/v1/assistants/twin")).json()["name"] == "AAAA"
    st = path.stat()
    path.write_text(json.dumps({"name": "BBBB"}))  # same size, and the same mtime restored
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (await client.get("/v1/assistants/twin")).json()["name"] == "AAAA"  # cached
    await host.host.bus.emit("data.changed", {"area": "assistants", "paths": [str(path)]})
    await host.host.bus.drain()
    assert (await client.get("/v1/assistants/twin")).json()["name"] == "BBBB"


async def test_jan_files_validate_and_corrupt_files_are_reported(openai_client, data_folder,
                                                                caplog):
    root = data_folder / "assistants"
    (root / "legacy").mkdir()
    (root / "legacy" / "assistant.json").write_text(json.dumps({
        "avatar": "", "id": "legacy", "object": "assistant", "created_at": 1715132389207,
        "name": "Legacy", "model": "*", "instructions": "",
        "tools": [{"type": "retrieval", "enabled": False, "settings": {"top_k": 2}}],
        "file_ids": [], "metadata": {"n": 1}}))
    (root / "broken").mkdir()
    (root / "broken" / "assistant.json").write_text('{"name": "half')
    legacy = await openai_client.beta.assistants.retrieve("legacy")
    assert legacy.created_at == 1715132389 and legacy.tools == [] and legacy.metadata == {
        "n": "1"}
    broken = await openai_client.beta.assistants.retrieve("broken")
    assert broken.name == "broken" and broken.metadata == {
        "jan_corrupt_assistant_json": "unreadable"}
    assert "unreadable" in caplog.text
    listed = [x.id async for x in openai_client.beta.assistants.list()]
    assert {"legacy", "broken", "jan"} <= set(listed)


async def test_assistant_errors(client):
    r = await client.get("/v1/assistants/nobody")
    assert r.status_code == 404 and r.json()["error"]["param"] == "assistant_id"
    for body, param in [({"temperature": 3}, "temperature"), ({"top_p": -1}, "top_p"),
                        ({"metadata": {"k": 1}}, "metadata"), ({"name": "x" * 300}, "name"),
                        ({"tools": [{"type": "teleport"}]}, "tools"),
                        ({"id": "../escape"}, "id")]:
        r = await client.post("/v1/assistants", json={"model": "*", **body})
        assert r.status_code == 400, (body, r.text)
        assert r.json()["error"]["param"].startswith(param), r.json()
    r = await client.post("/v1/assistants", json={"id": "dup"})
    assert r.status_code == 200 and r.json()["id"] == "dup" and r.json()["name"] == "dup"
    r = await client.post("/v1/assistants", json={"id": "dup"})
    assert r.status_code == 409
    r = await client.post("/v1/assistants/nobody", json={"name": "x"})
    assert r.status_code == 404


async def test_deleting_a_copied_folder_deletes_that_folder(client, data_folder):
    """Two folders whose assistant.json carry the same id: DELETE removes the one named."""
    import shutil

    r = await client.post("/v1/assistants", json={"name": "helper", "id": "helper"})
    assert r.status_code == 200, r.text
    shutil.copytree(data_folder / "assistants" / "helper", data_folder / "assistants" / "copy")
    r = await client.delete("/v1/assistants/copy")
    assert r.status_code == 200
    assert (data_folder / "assistants" / "helper").is_dir()
    assert not (data_folder / "assistants" / "copy").exists()
