"""The file message store on its own: appends, tail reads, the offsets index, rewrites,
corrupt and torn lines, and writers racing each other and a thread deletion."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from threads_fixtures import ROOT, make_stores

from jan.sdk.errors import InvalidRequest, NotFound
from jan.sdk.models import Message, Thread
from jan.sdk.storage import read_lines


@pytest.fixture
async def env(tmp_path: Path):
    threads, messages, _, bus = make_stores(tmp_path)
    await threads.create(Thread(id="thread_m"))
    return threads, messages, bus, tmp_path / "threads" / "thread_m" / "messages.jsonl"


async def add(messages, n: int, thread_id: str = "thread_m", start: int = 0) -> list[str]:
    ids = []
    for i in range(start, start + n):
        ids.append((await messages.create(Message.of_text(thread_id, "user", f"m{i}"))).id)
    return ids


async def walk(messages, order: str, limit: int, thread_id: str = "thread_m") -> list[str]:
    ids, after = [], None
    while True:
        page = await messages.list(thread_id, limit=limit, order=order, after=after)
        ids += [m.id for m in page.data]
        if not page.has_more:
            return ids
        after = page.data[-1].id


async def test_create_appends_one_jan_line(env):
    _, messages, bus, path = env
    msg = await messages.create(Message.of_text("thread_m", "user", "hello"))
    records, bad = read_lines(path)
    assert bad == [] and records == [msg.to_file()]
    assert records[0]["content"] == [{"type": "text", "text": {"value": "hello",
                                                               "annotations": []}}]
    assert bus.seen[-1][0] == "message.created" and bus.seen[-1][1]["id"] == msg.id


async def test_create_refuses_missing_thread(tmp_path, env):
    _, messages, _, _ = env
    with pytest.raises(NotFound):
        await messages.create(Message.of_text("thread_nope", "user", "x"))
    assert not (tmp_path / "threads" / "thread_nope").exists()
    with pytest.raises(NotFound):
        await messages.list("thread_nope")


async def test_list_pages_both_orders_cold_and_indexed(env):
    _, messages, _, _ = env
    ids = await add(messages, 23)
    newest = await messages.list("thread_m", limit=5)  # tail read, no index yet
    assert [m.id for m in newest.data] == ids[::-1][:5] and newest.has_more
    oldest = await messages.list("thread_m", limit=5, order="asc")
    assert [m.id for m in oldest.data] == ids[:5]
    assert await walk(messages, "asc", 4) == ids
    assert await walk(messages, "desc", 7) == ids[::-1]
    more = await add(messages, 3, start=23)  # the cached index catches up with appends
    assert await walk(messages, "desc", 100) == (ids + more)[::-1]
    page = await messages.list("thread_m", limit=3, order="asc", before=ids[10])
    assert [m.id for m in page.data] == ids[7:10] and page.has_more
    with pytest.raises(InvalidRequest) as err:
        await messages.list("thread_m", after="nope")
    assert err.value.param == "after"


async def test_update_and_delete_rewrite_only_their_line(env):
    _, messages, bus, path = env
    ids = await add(messages, 5)
    with path.open("ab") as f:  # a corrupt line in the middle must survive rewrites
        f.write(b'{"id": "torn", "content": [\n')
    tail_ids = await add(messages, 2, start=5)
    before = path.read_bytes().split(b"\n")
    updated = await messages.update("thread_m", ids[2], {"metadata": {"k": "v"},
                                                          "id": "hijack"})
    assert updated.id == ids[2] and updated.metadata == {"k": "v"}
    after = path.read_bytes().split(b"\n")
    changed = [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b]
    assert changed == [2]
    await messages.delete("thread_m", ids[0])
    lines = path.read_bytes().split(b"\n")
    assert lines[:-1] == after[1:-1] and lines[-1] == b""
    assert b'{"id": "torn", "content": [' in lines
    assert (await messages.get("thread_m", ids[2])).metadata == {"k": "v"}
    assert await walk(messages, "asc", 100) == ids[1:] + tail_ids
    with pytest.raises(NotFound):
        await messages.get("thread_m", ids[0])
    with pytest.raises(NotFound):
        await messages.delete("thread_m", ids[0])
    topics = [t for t in bus.topics() if t.startswith("message.")]
    assert topics[-2:] == ["message.updated", "message.deleted"]


async def test_corrupt_lines_are_skipped_logged_and_flagged(env, caplog):
    threads, messages, _, path = env
    ids = await add(messages, 3)
    raw = path.read_bytes().split(b"\n")
    raw.insert(1, b"this is not json")
    raw.insert(3, b'["a list"]')
    path.write_bytes(b"\n".join(raw))
    page = await messages.list("thread_m")
    assert [m.id for m in page.data] == ids[::-1]
    assert "corrupt lines [2, 4]" in caplog.text
    thread = await threads.get("thread_m")
    assert thread.metadata["jan_corrupt_lines"] == "2,4"
    assert (await messages.get("thread_m", ids[1])).text == "m1"
    # repaired by hand: the flag goes away
    path.write_bytes(b"\n".join(r for r in raw if r.startswith(b"{")) + b"\n")
    await messages.list("thread_m", after=ids[0])
    assert "jan_corrupt_lines" not in (await threads.get("thread_m")).metadata


async def test_torn_tail_is_skipped_then_sealed_by_the_next_append(env):
    threads, messages, _, path = env
    ids = await add(messages, 2)
    with path.open("ab") as f:
        f.write(b'{"id":"01HZZZZZZZZZZZZZZZZZZZZZZZ","thread_id":"thread_m","con')
    assert [m.id for m in (await messages.list("thread_m")).data] == ids[::-1]
    assert [m.id for m in (await messages.list("thread_m", after=ids[1], order="asc")).data] \
        == []
    assert "jan_corrupt_lines" not in (await threads.get("thread_m")).metadata
    more = await add(messages, 1, start=2)
    records, bad = read_lines(path)
    assert [r["id"] for r in records] == ids + more and bad == [3]
    assert await walk(messages, "asc", 2) == ids + more
    assert (await threads.get("thread_m")).metadata["jan_corrupt_lines"] == "3"


async def test_index_catches_appends_from_another_process(env):
    _, messages, _, path = env
    ids = await add(messages, 3)
    assert await walk(messages, "asc", 2) == ids  # index built and cached
    script = textwrap.dedent(f"""
        import json
        from jan.sdk.storage import append_line
        from pathlib import Path
        for i in range(4):
            append_line(Path({str(path)!r}), {{"id": f"ext{{i}}", "thread_id": "thread_m",
                        "role": "user", "content": []}})
    """)
    subprocess.run([sys.executable, "-c", script], check=True)
    assert await walk(messages, "asc", 2) == ids + [f"ext{i}" for i in range(4)]
    assert (await messages.get("thread_m", "ext3")).id == "ext3"


async def test_fifty_concurrent_writers_make_fifty_intact_lines(env):
    _, messages, _, path = env
    made = await asyncio.gather(*(
        messages.create(Message.of_text("thread_m", "user", f"writer {i} " + "x" * 5000))
        for i in range(50)))
    records, bad = read_lines(path)
    assert bad == [] and len(records) == 50
    assert sorted(r["id"] for r in records) == sorted(m.id for m in made)
    assert len(await walk(messages, "desc", 100)) == 50


def test_fifty_writer_processes_make_fifty_intact_lines(tmp_path):
    (tmp_path / "threads" / "thread_p").mkdir(parents=True)
    (tmp_path / "threads" / "thread_p" / "thread.json").write_text('{"id": "thread_p"}')
    script = textwrap.dedent(f"""
        import asyncio, sys
        sys.path.insert(0, {str(ROOT / "tests")!r})
        from threads_fixtures import make_stores
        from jan.sdk.models import Message
        from pathlib import Path
        async def main(n):
            _, messages, _, _ = make_stores(Path({str(tmp_path)!r}))
            for i in range(5):
                await messages.create(Message.of_text("thread_p", "user", f"p{{n}}-{{i}}" * 900))
        asyncio.run(main(sys.argv[1]))
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script, str(n)]) for n in range(10)]
    assert all(p.wait(60) == 0 for p in procs)
    records, bad = read_lines(tmp_path / "threads" / "thread_p" / "messages.jsonl")
    assert bad == [] and len(records) == 50
    assert len({r["id"] for r in records}) == 50


async def test_create_racing_thread_delete_never_resurrects_it(tmp_path):
    for round_ in range(5):
        threads, messages, _, _ = make_stores(tmp_path)
        tid = f"thread_race{round_}"
        await threads.create(Thread(id=tid))

        async def writer(messages=messages, tid=tid) -> int:
            ok = 0
            for i in range(30):
                try:
                    await messages.create(Message.of_text(tid, "user", f"{i}"))
                    ok += 1
                except NotFound:
                    pass
            return ok

        task = asyncio.ensure_future(writer())
        await asyncio.sleep(0.01)
        await threads.delete(tid)
        await task
        assert not (tmp_path / "threads" / tid).exists()
        with pytest.raises(NotFound):
            await threads.get(tid)


async def test_jan_style_message_fields_round_trip(env):
    _, messages, _, path = env
    line = {"id": "01HZPE5NKV4XQVVB7NZNKDY8EJ", "thread_id": "thread_m", "type": "Thread",
            "role": "assistant", "content": [{"type": "text", "text": {
                "value": "boom", "annotations": []}}], "status": "error",
            "error_code": "unknown", "created": 1717666240123, "updated": 1717666240123,
            "object": "thread.message", "attachments": []}
    path.write_text(json.dumps(line) + "\n")
    got = await messages.get("thread_m", line["id"])
    assert {k: v for k, v in got.to_file().items() if k in line} == line
    updated = await messages.update("thread_m", line["id"], {"metadata": {"seen": "1"}})
    on_disk = read_lines(path)[0][0]
    assert on_disk["error_code"] == "unknown" and on_disk["type"] == "Thread"
    assert on_disk["metadata"] == {"seen": "1"} and updated.status == "error"


async def test_json_lines_that_are_not_messages_are_skipped_but_deletable(env, caplog):
    _, messages, _, path = env
    ids = await add(messages, 2)
    with path.open("a") as f:
        f.write(json.dumps({"id": "weird", "role": "wizard", "content": "nope"}) + "\n")
    more = await add(messages, 1, start=2)
    assert [m.id for m in (await messages.list("thread_m")).data] == (ids + more)[::-1]
    assert "not a valid message" in caplog.text
    with pytest.raises(NotFound):
        await messages.get("thread_m", "weird")
    with pytest.raises(InvalidRequest):
        await messages.update("thread_m", "weird", {"metadata": {"a": "b"}})
    await messages.delete("thread_m", "weird")
    assert [r["id"] for r in read_lines(path)[0]] == ids + more


@pytest.mark.parametrize("block", [3, 17, 64, 1 << 16])
def test_tail_head_and_index_agree_with_a_full_read(tmp_path, block):
    import random

    from threads_fixtures import load_module

    jsonl = load_module("messages", "jsonl")
    jsonl.BLOCK = block  # tiny blocks: every line straddles a block boundary somewhere
    rng = random.Random(block)
    path = tmp_path / "m.jsonl"
    lines = []
    for i in range(60):
        kind = rng.random()
        if kind < 0.1:
            lines.append(b"{broken")
        elif kind < 0.15:
            lines.append(b"")
        else:
            lines.append(json.dumps({"id": f"id{i}", "t": "x" * rng.randint(0, 40)}).encode())
    path.write_bytes(b"\n".join(lines) + b'\n{"id": "tail-torn", "t')
    expected = [json.loads(x)["id"] for x in lines if x.startswith(b'{"id"')]
    for n in (1, 5, 100):
        got, bad = jsonl.tail(path, n)
        assert [r["id"] for r in got] == expected[::-1][:n] and bad
        got, _ = jsonl.head(path, n)
        assert [r["id"] for r in got] == expected[:n]
    index = jsonl.MessageIndex(path)
    assert index.refresh() is True
    assert index.ids == expected
    assert [r["id"] for r in index.read(list(range(len(expected))))] == expected
    assert index.bad_lines() == [i + 1 for i, x in enumerate(lines) if x == b"{broken"]
    with path.open("ab") as f:  # the torn tail is sealed by the next writer
        f.write(b'\n{"id": "later"}\n')
    assert index.refresh() is False
    assert index.ids == expected + ["later"] and len(index.bad_lines()) == lines.count(
        b"{broken") + 1


async def test_listing_an_empty_thread_after_a_lookup_is_empty_not_an_error(tmp_path):
    """Regression: a cached (empty) index must not open a messages.jsonl that doesn't exist."""
    from conftest import asgi_client

    from jan.host.runtime import Jan

    jan = Jan(tmp_path / "data", core_services=False)
    await jan.start()
    try:
        async with asgi_client(jan) as c:
            thread = (await c.post("/v1/threads", json={})).json()["id"]
            r = await c.get(f"/v1/threads/{thread}/messages/nope")
            assert r.status_code == 404
            r = await c.get(f"/v1/threads/{thread}/messages")
            assert r.status_code == 200 and r.json()["data"] == []
    finally:
        await jan.stop()
