"""The file thread store on its own: files in Jan's format, the order index, recovery."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from threads_fixtures import load_module, make_stores

from jan.sdk.errors import Conflict, NotFound
from jan.sdk.models import Thread, new_id


@pytest.fixture
def stores(tmp_path: Path):
    return make_stores(tmp_path)


def make(i: int, created: int | None = None) -> Thread:
    return Thread(id=new_id("thread"), title=f"t{i}", **({"created": created} if created else {}))


async def collect(store, order: str, limit: int = 3) -> list[str]:
    ids, after = [], None
    while True:
        page = await store.list(limit=limit, order=order, after=after)
        ids += [t.id for t in page.data]
        if not page.has_more:
            return ids
        after = page.data[-1].id


def test_stores_implement_the_sdk_interfaces(stores):
    from jan.sdk.services import AssistantStore, MessageStore, ThreadStore

    threads, messages, assistants, _ = stores
    assert isinstance(threads, ThreadStore) and isinstance(messages, MessageStore)
    assert isinstance(assistants, AssistantStore)


async def test_create_writes_jan_thread_json(tmp_path, stores):
    threads, _, _, bus = stores
    thread = await threads.create(Thread(id="thread_abc", title="Hello", metadata={"k": "v"}))
    on_disk = json.loads((tmp_path / "threads" / "thread_abc" / "thread.json").read_text())
    assert on_disk["id"] == "thread_abc" and on_disk["object"] == "thread"
    assert on_disk["title"] == "Hello" and on_disk["metadata"] == {"k": "v"}
    assert on_disk["created"] == thread.created and on_disk["created"] > 1_600_000_000_000
    assert (await threads.get("thread_abc")).to_file() == on_disk
    assert bus.topics() == ["thread.created"]
    assert bus.seen[0][1]["created_at"] == thread.created // 1000
    with pytest.raises(Conflict):
        await threads.create(Thread(id="thread_abc"))


async def test_update_merges_metadata_and_keeps_identity(stores):
    threads, _, _, bus = stores
    t = await threads.create(Thread(id="thread_u", metadata={"a": "1", "b": "2"}))
    u = await threads.update("thread_u", {"metadata": {"b": None, "c": "3"}, "title": "T",
                                          "id": "other", "created": 5})
    assert u.id == "thread_u" and u.created == t.created and u.updated >= t.updated
    assert u.metadata == {"a": "1", "c": "3"} and u.title == "T"
    assert (await threads.get("thread_u")) == u
    assert bus.topics() == ["thread.created", "thread.updated"]


async def test_delete_removes_folder(tmp_path, stores):
    threads, messages, _, bus = stores
    await threads.create(Thread(id="thread_d"))
    (tmp_path / "threads" / "thread_d" / "messages.jsonl").write_text('{"id":"x"}\n')
    await threads.delete("thread_d")
    assert not (tmp_path / "threads" / "thread_d").exists()
    assert [p.name for p in (tmp_path / "threads").iterdir()] == []
    with pytest.raises(NotFound):
        await threads.get("thread_d")
    with pytest.raises(NotFound):
        await threads.delete("thread_d")
    assert bus.seen[-1] == ("thread.deleted",
                            {"id": "thread_d", "object": "thread.deleted", "deleted": True})


@pytest.mark.parametrize("bad", ["../etc", "..", "a/b", ".hidden", "x" * 300, ""])
async def test_unsafe_ids_are_not_found(stores, bad):
    threads = stores[0]
    with pytest.raises(NotFound):
        await threads.get(bad)
    with pytest.raises(NotFound):
        await threads.update(bad, {"title": "x"})


async def test_list_orders_by_created_with_pagination(stores):
    threads = stores[0]
    base = 1_700_000_000_000
    # created out of id order, with a tie broken by id
    made = [await threads.create(make(i, base + (i * 7919) % 10)) for i in range(10)]
    expected = [t.id for t in sorted(made, key=lambda t: (t.created, t.id))]
    assert await collect(threads, "asc") == expected
    assert await collect(threads, "desc") == expected[::-1]
    page = await threads.list(limit=2, order="desc", before=expected[-5])
    assert [t.id for t in page.data] == [expected[-3], expected[-4]] and page.has_more


async def test_index_follows_folders_changed_behind_its_back(tmp_path, stores):
    threads = stores[0]
    a = await threads.create(make(1, 1_700_000_000_000))
    assert [t.id for t in (await threads.list()).data] == [a.id]
    # a Jan thread copied in by hand, and one removed by hand
    folder = tmp_path / "threads" / "jan_1717666232"
    folder.mkdir()
    (folder / "thread.json").write_text(json.dumps(
        {"id": "jan_1717666232", "object": "thread", "title": "hand", "assistants": [],
         "created": 1_717_666_232_000, "updated": 1_717_666_232_000, "metadata": {}}))
    assert [t.id for t in (await threads.list()).data] == ["jan_1717666232", a.id]
    shutil.rmtree(tmp_path / "threads" / a.id)
    assert [t.id for t in (await threads.list()).data] == ["jan_1717666232"]
    # a folder whose thread.json is not written yet is not listed until it is
    late = tmp_path / "threads" / "jan_1717666999"
    late.mkdir()
    assert [t.id for t in (await threads.list()).data] == ["jan_1717666232"]
    (late / "thread.json").write_text(json.dumps({"id": "jan_1717666999", "title": "late",
                                                  "created": 1_717_666_999_000}))
    assert [t.id for t in (await threads.list()).data] == ["jan_1717666999", "jan_1717666232"]


async def test_snapshot_makes_restart_cheap_and_stale_snapshot_is_repaired(tmp_path):
    threads = make_stores(tmp_path)[0]
    made = [await threads.create(make(i)) for i in range(120)]
    threads.close()
    snapshot = tmp_path / "storage" / "threads" / "index.json"
    assert len(json.loads(snapshot.read_text())["entries"]) == 120
    # the snapshot is used: a thread.json never read again
    index_mod = load_module("threads", "index")
    reads: list[str] = []
    data = json.loads(snapshot.read_text())
    idx = index_mod.ThreadIndex(tmp_path / "threads", snapshot,
                                lambda i: reads.append(i) or 0, threads.log)
    ids, more = idx.window(limit=5, order="desc", after=None, before=None)
    assert reads == [] and more and ids == [i for _, i in data["entries"]][::-1][:5]
    # stale snapshot: one thread gone, one unknown → only the unknown one is read
    shutil.rmtree(tmp_path / "threads" / made[0].id)
    extra = make_stores(tmp_path)[0]
    new = await extra.create(make(999))
    idx = index_mod.ThreadIndex(tmp_path / "threads", snapshot,
                                lambda i: reads.append(i) or 10**13, threads.log)
    ids, _ = idx.window(limit=100, order="desc", after=None, before=None)
    assert reads == [new.id] and ids[0] == new.id and made[0].id not in ids
    # a corrupt snapshot costs a rebuild, nothing else
    snapshot.write_text("{garbage")
    fresh = make_stores(tmp_path)[0]
    assert len(await collect(fresh, "asc", limit=100)) == 120


async def test_corrupt_thread_json_is_recovered_flagged_and_kept(tmp_path, stores, caplog):
    threads, messages, _, _ = stores
    await threads.create(Thread(id="jan_1717666232", title="x"))
    folder = tmp_path / "threads" / "jan_1717666232"
    (folder / "messages.jsonl").write_text(
        '{"id":"01HZ0000000000000000000000","thread_id":"jan_1717666232","role":"user",'
        '"content":[{"type":"text","text":{"value":"kept","annotations":[]}}]}\n')
    (folder / "thread.json").write_text('{"id": "jan_1717666232", "title": "bro')
    thread = await threads.get("jan_1717666232")
    assert thread.metadata == {"jan_corrupt_thread_json": "unreadable"}
    assert thread.created == 1_717_666_232_000  # from Jan's id
    assert "unreadable" in caplog.text
    listed = await threads.list()
    assert [t.id for t in listed.data] == ["jan_1717666232"]
    page = await messages.list("jan_1717666232")
    assert [m.text for m in page.data] == ["kept"]
    # the next write keeps the broken file aside and writes a good one
    fixed = await threads.update("jan_1717666232", {"title": "repaired"})
    assert fixed.title == "repaired" and "jan_corrupt_thread_json" not in fixed.metadata
    backups = [p for p in os.listdir(folder) if p.startswith("thread.json.corrupt-")]
    assert len(backups) == 1
    assert (folder / backups[0]).read_text().endswith('"bro')
    assert json.loads((folder / "thread.json").read_text())["title"] == "repaired"


async def test_missing_thread_json_with_messages_is_still_a_thread(tmp_path, stores):
    threads = stores[0]
    folder = tmp_path / "threads" / "jan_1700000000"
    folder.mkdir(parents=True)
    (folder / "messages.jsonl").write_text("")
    thread = await threads.get("jan_1700000000")
    assert thread.metadata == {"jan_corrupt_thread_json": "missing"}
    empty = tmp_path / "threads" / "jan_1700000001"
    empty.mkdir()
    with pytest.raises(NotFound):
        await threads.get("jan_1700000001")
