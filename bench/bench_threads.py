"""File stores at scale: message create, newest page of a 100k-message thread, thread list
over 10k threads. Each figure is printed next to a naive peer measured in the same run (read
the whole file / every thread.json each time), with the ratio.

- message create: ``FileMessageStore.create`` (one fsynced append) and ``POST
  /v1/threads/{id}/messages`` through the in-process ASGI app;
- newest page: ``limit=20, order=desc`` of a 100,000-message thread, cold (fresh store: a tail
  read), through HTTP, and deep pages by cursor (offsets index, built once);
- thread list: first page of 10,000 threads: first call of a fresh process (index built from
  the folder), warm calls, after a restart (index snapshot), and through HTTP.

    python bench/bench_threads.py [--messages 100000] [--threads 10000] [--creates 200]
                                  [--dir PARENT]   # default: the system temp dir

Note: fsync costs what the file system makes it cost; on tmpfs it is free. Run with ``--dir``
on the disk that will hold the data folder for realistic create latencies.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import itertools
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

from ulid import ULID

from jan.sdk.models import Message, Thread
from jan.sdk.storage import Folder, read_lines

ROOT = Path(__file__).resolve().parent.parent
_n = itertools.count()


def load(extension: str, module: str) -> ModuleType:
    name = f"_jan_bench_{extension}_{next(_n)}"
    package = ModuleType(name)
    package.__path__ = [str(ROOT / "extensions" / extension)]
    sys.modules[name] = package
    return importlib.import_module(f"{name}.{module}")


def stores(folder: Path):
    data = Folder(folder)
    threads = load("threads", "store").FileThreadStore(
        data, index_snapshot=folder / "storage" / "threads" / "index.json")
    messages = load("messages", "store").FileMessageStore(data, threads=lambda: threads)
    return threads, messages


def ms(seconds: float) -> str:
    return f"{seconds * 1000:9.3f} ms"


def report(label: str, samples: list[float], peer: float | None = None) -> None:
    p50 = statistics.median(samples)
    p95 = sorted(samples)[max(0, int(len(samples) * 0.95) - 1)]
    ratio = f"   {peer / p50:8.0f}x faster than naive" if peer else ""
    print(f"{label:<52} p50 {ms(p50)}  p95 {ms(p95)}  n={len(samples):<4}{ratio}")


async def timed(fn, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        await fn()
        out.append(time.perf_counter() - t)
    return out


def fill_messages(path: Path, thread_id: str, count: int) -> list[str]:
    template = Message.of_text(thread_id, "user", "").to_file()
    base = 1_717_666_240_000
    ids = []
    with path.open("w") as f:
        for i in range(count):
            mid = str(ULID.from_timestamp((base + i) / 1000))
            role = "user" if i % 2 == 0 else "assistant"
            text = f"message {i}: " + "lorem ipsum dolor sit amet " * (3 + i % 12)
            record = {**template, "id": mid, "role": role, "created": base + i,
                      "updated": base + i,
                      "content": [{"type": "text", "text": {"value": text, "annotations": []}}]}
            f.write(json.dumps(record, separators=(",", ":")) + "\n")
            ids.append(mid)
    return ids


def fill_threads(root: Path, count: int) -> None:
    base = 1_717_000_000_000
    for i in range(count):
        tid = f"thread_{ULID.from_timestamp((base + i * 1000) / 1000)}"
        (root / tid).mkdir(parents=True)
        t = Thread(id=tid, title=f"thread {i}", created=base + i * 1000, updated=base + i * 1000)
        (root / tid / "thread.json").write_text(json.dumps(t.to_file(), indent=2))


def naive_newest(path: Path) -> list[dict]:
    records, _ = read_lines(path)
    return records[-20:][::-1]


def naive_threads(root: Path) -> list[dict]:
    threads = [json.loads((p / "thread.json").read_bytes()) for p in root.iterdir()]
    return sorted(threads, key=lambda t: (t["created"], t["id"]), reverse=True)[:20]


async def bench_messages(folder: Path, count: int, creates: int) -> None:
    threads, messages = stores(folder)
    await threads.create(Thread(id="thread_big"))
    await threads.create(Thread(id="thread_small"))
    samples = await timed(lambda: messages.create(
        Message.of_text("thread_small", "user", "hello there")), creates)
    report("message create (store, fsynced append)", samples)

    path = folder / "threads" / "thread_big" / "messages.jsonl"
    t = time.perf_counter()
    ids = fill_messages(path, "thread_big", count)
    print(f"(wrote {count} messages, {path.stat().st_size / 1e6:.1f} MB, "
          f"in {time.perf_counter() - t:.1f} s)")
    naive = await timed(lambda: asyncio.to_thread(naive_newest, path), 5)
    report(f"naive newest 20 of {count} (read whole file)", naive)
    peer = statistics.median(naive)
    cold = []
    for _ in range(30):  # a fresh store every time: no index, a tail read
        _, fresh = stores(folder)
        t = time.perf_counter()
        page = await fresh.list("thread_big", limit=20)
        cold.append(time.perf_counter() - t)
    assert [m.id for m in page.data] == ids[::-1][:20]
    report(f"newest 20 of {count} (fresh store: tail read)", cold, peer)
    t = time.perf_counter()
    await messages.list("thread_big", limit=20, after=ids[count // 2])
    label = "offsets index built once (first cursor request)"
    print(f"{label:<52}     {ms(time.perf_counter() - t)}")
    warm = await timed(lambda: messages.list("thread_big", limit=20), 100)
    report(f"newest 20 of {count} (indexed)", warm, peer)
    deep = await timed(lambda: messages.list("thread_big", limit=20, after=ids[count // 3]), 100)
    report(f"page by cursor deep in {count} (indexed)", deep, peer)
    samples = await timed(lambda: messages.create(
        Message.of_text("thread_big", "user", "one more")), 50)
    report(f"message create into the {count}-message thread", samples)


async def bench_http(folder: Path, creates: int, count: int) -> None:
    import httpx

    from jan.host.runtime import Jan

    jan = Jan(folder)
    await jan.start()
    try:
        transport = httpx.ASGITransport(app=jan.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            url = "/v1/threads/thread_small/messages"
            samples = await timed(lambda: http.post(url, json={"role": "user",
                                                               "content": "hi"}), creates)
            report("message create (HTTP POST, in-process ASGI)", samples)
            big = "/v1/threads/thread_big/messages"
            samples = await timed(lambda: http.get(big, params={"limit": 20}), 50)
            report(f"newest 20 of {count} (HTTP GET)", samples)
            samples = await timed(lambda: http.get("/v1/threads", params={"limit": 20}), 50)
            report("thread list first page (HTTP GET)", samples)
    finally:
        await jan.stop()


async def bench_threads(folder: Path, count: int) -> None:
    root = folder / "threads"
    t = time.perf_counter()
    fill_threads(root, count)
    print(f"(wrote {count} threads in {time.perf_counter() - t:.1f} s)")
    naive = await timed(lambda: asyncio.to_thread(naive_threads, root), 3)
    report(f"naive thread list of {count} (read every thread.json)", naive)
    peer = statistics.median(naive)
    threads, _ = stores(folder)
    t = time.perf_counter()
    first = await threads.list(limit=20)
    print(f"{'thread list, first call (index built from folder)':<52}     "
          f"{ms(time.perf_counter() - t)}")
    threads.close()
    assert len(first.data) == 20 and first.has_more
    warm = await timed(lambda: threads.list(limit=20), 100)
    report(f"thread list first page of {count} (warm)", warm, peer)
    restart = []
    for _ in range(10):
        fresh, _ = stores(folder)
        t = time.perf_counter()
        page = await fresh.list(limit=20)
        restart.append(time.perf_counter() - t)
    assert [x.id for x in page.data] == [x.id for x in first.data]
    report(f"thread list first page of {count} (after restart)", restart, peer)
    mid = (await threads.list(limit=100)).data[-1].id
    deep = await timed(lambda: threads.list(limit=20, after=mid), 100)
    report("thread list by cursor (warm)", deep, peer)
    await threads.create(Thread(id="thread_new"))
    after_create = await timed(lambda: threads.list(limit=20), 1)
    report("thread list right after a create (folder rescan)", after_create, peer)


def filesystem(path: Path) -> str:
    """The file system type holding ``path`` (from /proc/mounts; best effort)."""
    best, kind = "", "unknown"
    try:
        for line in Path("/proc/mounts").read_text().splitlines():
            _, mount, fstype, *_ = line.split()
            if str(path).startswith(mount) and len(mount) > len(best):
                best, kind = mount, fstype
    except OSError:
        pass
    return f"{kind} ({path})"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--threads", type=int, default=10_000)
    parser.add_argument("--creates", type=int, default=200)
    parser.add_argument("--dir", default=None, help="where to make the temporary data folder")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="jan-bench-threads-", dir=args.dir) as tmp:
        print(f"data folder on {filesystem(Path(tmp))}")
        folder = Path(tmp)
        await bench_messages(folder, args.messages, args.creates)
        await bench_threads(folder, args.threads)
        await bench_http(folder, args.creates // 2, args.messages)


if __name__ == "__main__":
    asyncio.run(main())
