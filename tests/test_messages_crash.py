"""kill -9 at any moment loses no acknowledged message and leaves every file readable.

A real writer process appends messages through the file store (and now and then edits an
older message and retitles the thread, which rewrite files) and prints each id only after the
store returned. It is SIGKILLed at random moments, restarted, killed again; afterwards a fresh
store must serve every acknowledged message and edit, and every file must parse.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from threads_fixtures import ROOT, make_stores

from jan.sdk.storage import read_lines

WRITER = textwrap.dedent("""
    import asyncio, sys
    sys.path.insert(0, sys.argv[2])
    from pathlib import Path
    from threads_fixtures import make_stores
    from jan.sdk.models import Message

    async def main(folder: Path, run: int) -> None:
        threads, messages, _, _ = make_stores(folder)
        ids = []
        for i in range(100000):
            text = f"run {run} message {i} " + "z" * (i * 997 % 20000)
            msg = await messages.create(Message.of_text("thread_crash", "user", text))
            ids.append(msg.id)
            print("A", msg.id, flush=True)
            if i % 7 == 3:
                target = ids[i // 2]
                await messages.update("thread_crash", target, {"metadata": {"seen": str(i)}})
                print("U", target, i, flush=True)
            if i % 5 == 4:
                await threads.update("thread_crash", {"title": f"run {run} at {i}"})
                print("T", run, i, flush=True)

    asyncio.run(main(Path(sys.argv[1]), int(sys.argv[3])))
""")


def run_and_kill(folder: Path, run: int, delay: float) -> list[list[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(folder), str(ROOT / "tests"), str(run)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    # wait until it really writes, then let it run a random while and kill it mid-flight
    first = proc.stdout.readline()
    assert first.startswith(b"A "), proc.stderr.read().decode()
    time.sleep(delay)
    os.kill(proc.pid, signal.SIGKILL)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    return [first.decode().split()] + [line.split() for line in out.decode().splitlines()]


async def test_sigkill_loses_no_acknowledged_message(tmp_path):
    threads, _, _, _ = make_stores(tmp_path)
    from jan.sdk.models import Thread

    await threads.create(Thread(id="thread_crash", title="crash test"))
    rng = random.Random(4)
    acked: list[str] = []
    edits: dict[str, int] = {}
    for run in range(8):
        for record in run_and_kill(tmp_path, run, rng.uniform(0.05, 0.4)):
            if not record:
                continue
            if record[0] == "A":
                acked.append(record[1])
            elif record[0] == "U" and len(record) == 3:
                edits[record[1]] = max(edits.get(record[1], -1), int(record[2]))
    assert len(acked) > 40

    folder = tmp_path / "threads" / "thread_crash"
    thread_json = json.loads((folder / "thread.json").read_text())  # always whole
    assert thread_json["id"] == "thread_crash" and thread_json["title"].startswith("run ")
    records, bad = read_lines(folder / "messages.jsonl")
    ids = [r["id"] for r in records]
    assert set(acked) <= set(ids)
    assert len(ids) == len(set(ids))  # nothing duplicated by a rewrite
    # a torn line can only be an append nobody acknowledged, and stays skippable
    assert len(bad) <= 8
    leftovers = [p.name for p in folder.iterdir()
                 if p.name not in ("thread.json", "messages.jsonl")]
    assert all(n.endswith(".lock") or n.endswith(".tmp") for n in leftovers), leftovers

    _, messages, _, _ = make_stores(tmp_path)
    listed, after = [], None
    while True:
        page = await messages.list("thread_crash", limit=100, order="asc", after=after)
        listed += page.data
        if not page.has_more:
            break
        after = page.data[-1].id
    assert [m.id for m in listed] == ids
    by_id = {m.id: m for m in listed}
    for message_id, at_least in edits.items():
        assert int(by_id[message_id].metadata["seen"]) >= at_least
