"""Greedy assistant code (issue 12, point 4): each attack contained, with the host measured.

Every test runs a hostile ``index.py`` through the official client and checks both the outcome
the user sees (a failed run with a clear message, or an attempt refused) and what the host paid
for it: its peak memory, its server log, the disk, the worker's CPU time after the run.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time

import pytest
from sandbox_fixtures import FAST, asgi_client, client_for, run_text, write_assistant

from jan.host.sandbox.quota import usage

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
MB = 1024 * 1024


def rss() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


class PeakRSS:
    """The host's (this process's) peak resident memory while the block runs."""

    def __init__(self) -> None:
        self.before = self.peak = 0

    async def _sample(self) -> None:
        while True:
            self.peak = max(self.peak, rss())
            await asyncio.sleep(0.02)

    async def __aenter__(self) -> PeakRSS:
        self.before = self.peak = rss()
        self._task = asyncio.create_task(self._sample())
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._task.cancel()

    @property
    def growth(self) -> int:
        return self.peak - self.before


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


async def wait_for(condition, timeout: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        return state(pid) == "Z"
    except OSError:
        return True


# A worker that floods requests for a big reply and never reads a single answer: the reader
# thread is parked on a pipe nobody writes while the real one stays open (so the host's writes
# block instead of failing).
FLOOD_UNREAD = """
import json, os, threading
from jan.sdk import assistant as sdk
from jan.sdk.assistant import assistant, events

@events.on(f"assistant:{assistant.id}")
def attack(event):
    t = sdk._transport
    keep = os.dup(t.rfd)
    r, w = os.pipe()
    os.dup2(r, t.rfd)
    (assistant.workspace / "deaf").write_text("1")
    for i in range(1000, 1000 + N):
        os.write(t.wfd, (json.dumps({"jsonrpc": "2.0", "id": i, "method": "thread.messages",
                                     "params": {"limit": 100}}) + "\\n").encode())
    threading.Event().wait()
"""
BIG = "x" * (256 * 1024)


async def test_unread_rpc_flood_keeps_host_memory_flat_and_the_worker_is_killed(
        make_host, data_folder):
    write_assistant(data_folder, "flood", FLOOD_UNREAD.replace("N)", "600)"))
    settings = {"sandbox": {**FAST["sandbox"], "timeout": 30, "write_stall_seconds": 1}}
    async with make_host(settings=settings) as jan, asgi_client(jan) as http:
        client = client_for(http)
        thread = await client.beta.threads.create(messages=[{"role": "user", "content": BIG}])
        async with PeakRSS() as mem:
            run, _ = await run_text(client, "flood", "go", thread_id=thread.id)
        print(f"host RSS before {mem.before / MB:.0f} MB, peak {mem.peak / MB:.0f} MB "
              f"(+{mem.growth / MB:.1f} MB for 600 unread replies of 256 KB)")
        assert run.status == "failed"
        assert "stopped reading its pipe" in run.last_error.message
        assert mem.growth < 64 * MB, f"host memory grew by {mem.growth / MB:.0f} MB"
        assert "flood" not in jan.core["sandbox"]._workers


async def test_server_shutdown_ends_a_worker_that_stopped_reading(make_host, data_folder):
    folder = write_assistant(data_folder, "deaf", FLOOD_UNREAD.replace("N)", "300)"))
    settings = {"sandbox": {**FAST["sandbox"], "timeout": 60, "write_stall_seconds": 60}}
    async with make_host(settings=settings) as jan, asgi_client(jan) as http:
        client = client_for(http)
        thread = await client.beta.threads.create(messages=[{"role": "user", "content": BIG}])
        sup = jan.core["sandbox"]
        task = asyncio.create_task(run_text(client, "deaf", "go", thread_id=thread.id))
        await wait_for(lambda: (folder / "workspace" / "deaf").exists(), what="the attack")
        pid = sup._workers["deaf"].pid
        await asyncio.sleep(0.5)  # let the host fill the pipe the worker no longer reads
        await asyncio.wait_for(sup.close(), 10)
        assert gone(pid)
        run, _ = await asyncio.wait_for(task, 15)
        assert run.status == "failed"


FAILING_REQUESTS = """
from jan.sdk.assistant import HostError, assistant, events, models

@events.on(f"assistant:{assistant.id}")
def attack(event):
    failed = 0
    for _ in range(1500):
        try:
            models.chat("hi", model="no-such-model")
        except (HostError, PermissionError):
            failed += 1
    return f"{failed} failed"
"""


async def test_failing_requests_do_not_flood_the_server_log(make_host, data_folder, caplog):
    write_assistant(data_folder, "noisy", FAILING_REQUESTS)
    settings = {"sandbox": {**FAST["sandbox"], "timeout": 60}}
    caplog.set_level(logging.INFO)
    async with make_host(settings=settings) as jan, asgi_client(jan) as http:
        run, text = await run_text(client_for(http), "noisy", "go")
    logged = sum(len(r.getMessage()) + len(r.exc_text or "") for r in caplog.records)
    print(f"server log: {logged} bytes for 1500 failing requests")
    assert run.status == "completed" and text == "1500 failed", run.last_error
    assert logged < 64 * 1024


SPIN_AFTER_RETURN = """
import threading
from jan.sdk.assistant import assistant, events

def spin():
    while True:
        pass

@events.on(f"assistant:{assistant.id}")
def reply(event):
    threading.Thread(target=spin, daemon=True).start()
    return "spinning in the background"
"""


async def test_no_cpu_is_used_after_the_run_returned(make_host, data_folder):
    write_assistant(data_folder, "spinner", SPIN_AFTER_RETURN)
    async with make_host(settings=FAST) as jan, asgi_client(jan) as http:
        run, text = await run_text(client_for(http), "spinner", "go")
        assert run.status == "completed" and text == "spinning in the background"
        pid = jan.core["sandbox"]._workers["spinner"].pid
        before = cpu_seconds(pid)
        await asyncio.sleep(1.0)  # the measurement window
        used = cpu_seconds(pid) - before
        print(f"worker CPU in the 1 s after the run returned: {used:.2f} s")
        assert used < 0.1
        assert state(pid) == "T"  # frozen until its next call
        # ...and still a working assistant: the next run thaws it.
        again, text2 = await run_text(client_for(http), "spinner", "again")
        assert again.status == "completed" and text2 == "spinning in the background"


async def test_deleting_an_assistant_ends_its_worker(make_host, data_folder):
    write_assistant(data_folder, "doomed", SPIN_AFTER_RETURN.replace(
        "threading.Thread(target=spin, daemon=True).start()\n", ""))
    async with make_host(settings=FAST) as jan, asgi_client(jan) as http:
        run, _ = await run_text(client_for(http), "doomed", "go")
        assert run.status == "completed"
        pid = jan.core["sandbox"]._workers["doomed"].pid
        assert (await http.delete("/v1/assistants/doomed")).status_code == 200
        await wait_for(lambda: gone(pid), what="the worker to end")


FILL_DISK = """
import time
from jan.sdk.assistant import assistant, events

@events.on(f"assistant:{assistant.id}")
def attack(event):
    chunk = b"x" * (1024 * 1024)
    for i in range(150):
        (assistant.workspace / f"fill{i}.bin").write_bytes(chunk)
        time.sleep(0.01)
    return "wrote 150 MB"
"""


async def test_workspace_quota_stops_a_disk_filler(make_host, data_folder):
    folder = write_assistant(data_folder, "filler", FILL_DISK)
    settings = {"sandbox": {**FAST["sandbox"], "timeout": 30, "workspace_mb": 4}}
    async with make_host(settings=settings) as jan, asgi_client(jan) as http:
        client = client_for(http)
        run, _ = await run_text(client, "filler", "go")
        size, _ = usage(folder / "workspace")
        print(f"workspace after the attack: {size / MB:.1f} MB (quota 4 MB, attack: 150 MB)")
        assert run.status == "failed", "the disk filler finished"
        assert "quota" in run.last_error.message
        assert size < 32 * MB
        # Over quota, the next call is refused with what to do about it.
        again, _ = await run_text(client, "filler", "again")
        assert again.status == "failed" and "delete files in" in again.last_error.message


CHATTY = """
from jan.sdk.assistant import assistant, events

@events.on(f"assistant:{assistant.id}")
def reply(event):
    for i in range(800):
        print(f"line {i} " + "y" * 100)
    return "printed"
"""


async def test_the_assistant_log_file_stays_bounded(make_host, data_folder):
    write_assistant(data_folder, "chatty", CHATTY)
    settings = {"sandbox": {**FAST["sandbox"], "log_file_bytes": 64 * 1024}}
    log = data_folder / "logs" / "assistants" / "chatty.log"
    async with make_host(settings=settings) as jan, asgi_client(jan) as http:
        client = client_for(http)
        for _ in range(3):  # ~90 KB of output per run
            run, text = await run_text(client, "chatty", "go")
            assert run.status == "completed" and text == "printed"
        await wait_for(lambda: "line 799" in log.read_text(), what="the last line")
    rotated = log.with_name("chatty.log.1")
    print(f"log {log.stat().st_size} bytes + {rotated.stat().st_size} bytes rotated "
          "for ~270 KB printed")
    assert log.stat().st_size <= 64 * 1024 and rotated.stat().st_size <= 64 * 1024


# ------------------------------------------------------------------ with the real model
BACKGROUND_MODEL = """
import threading
import time
from jan.sdk.assistant import assistant, events, models

seen = []
started = []

def hammer():
    while len(seen) < 50:
        try:
            models.chat("Write a very long story about the sea.", max_tokens=400)
            seen.append("ok")
        except Exception as exc:
            seen.append(str(exc))

@events.on(f"assistant:{assistant.id}")
def reply(event):
    if started:  # the second run: report how the background calls ended
        # The refusal of the call cut off when the first run returned arrives with this run's
        # call (the worker was stopped in between): wait for the thread to record it.
        deadline = time.monotonic() + 20
        while not seen and time.monotonic() < deadline:
            time.sleep(0.02)
        return " | ".join(s for s in seen if s != "ok")[:500] or "nothing refused"
    started.append(True)
    threading.Thread(target=hammer, daemon=True).start()
    return "started"
"""


async def chat_seconds(client) -> float:
    start = time.monotonic()
    done = await client.chat.completions.create(
        model="smollm2", max_tokens=2, messages=[{"role": "user", "content": "Hi"}])
    assert done.choices[0].message.content is not None
    return time.monotonic() - start


@pytest.mark.slow
async def test_model_calls_from_a_background_thread_end_with_the_run(
        make_host, data_folder, smollm_path):
    from sandbox_fixtures import write_model

    write_model(data_folder, smollm_path)
    write_assistant(data_folder, "hog", BACKGROUND_MODEL, model="smollm2")
    settings = {"sandbox": {**FAST["sandbox"], "timeout": 30}}
    async with make_host(settings=settings) as jan, asgi_client(jan) as http:
        client = client_for(http)
        await chat_seconds(client)  # load the model
        before = await chat_seconds(client)
        run, text = await run_text(client, "hog", "go")
        assert run.status == "completed" and text == "started"
        worker = jan.core["sandbox"]._workers["hog"]
        after = await chat_seconds(client)
        print(f"a user's 2-token chat: {before:.2f} s before, {after:.2f} s after the run "
              "returned with a background thread still calling the model")
        assert state(worker.pid) == "T" and worker.model_calls == 0 and not worker._serving
        _, report = await run_text(client, "hog", "report")
    assert "has ended" in report or "may only call the host" in report, report


BUDGET = """
import threading
from jan.sdk.assistant import assistant, events, models

@events.on(f"assistant:{assistant.id}")
def reply(event):
    results = []
    def one():
        try:
            models.chat("Count from one to one hundred.", max_tokens=15)
            results.append("ok")
        except PermissionError as exc:
            results.append(str(exc))
    threads = [threading.Thread(target=one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    refused = [r for r in results if "in flight" in r]
    for _ in range(20):
        try:
            models.chat("Count from one to one hundred.", max_tokens=15)
        except PermissionError as exc:
            return f"{len(refused)} refused in flight; then: {exc}"
    return f"{len(refused)} refused in flight; no budget"
"""


@pytest.mark.slow
async def test_model_requests_in_flight_and_tokens_per_run_are_capped(
        make_host, data_folder, smollm_path):
    from sandbox_fixtures import write_model

    write_model(data_folder, smollm_path)
    write_assistant(data_folder, "greedy", BUDGET, model="smollm2")
    settings = {"sandbox": {**FAST["sandbox"], "timeout": 120, "model_requests": 2,
                            "tokens_per_run": 30}}
    async with make_host(settings=settings) as jan, asgi_client(jan) as http:
        run, text = await run_text(client_for(http), "greedy", "go")
    assert run.status == "completed", run.last_error
    refused, _, then = text.partition(" refused in flight; then: ")
    assert int(refused) >= 1, text
    assert "budget of 30 generated tokens" in then, text


# A non-daemon thread keeps the interpreter alive after the host's pipe closes.
IMMORTAL = """
import threading
from jan.sdk.assistant import assistant, events

threading.Thread(target=threading.Event().wait).start()

@events.on(f"assistant:{assistant.id}")
def reply(event):
    return "never dies"
"""


@pytest.mark.slow
async def test_workers_end_with_the_server_even_when_it_is_killed(jan_server, data_folder):
    from conftest import write_settings
    from test_soak import children

    write_assistant(data_folder, "orphan", IMMORTAL)
    write_settings(data_folder, {"sandbox": {"autostart": True}})
    server = jan_server()
    workers: list[int] = []

    def started() -> bool:
        workers[:] = [pid for pid, cmd in children(server.proc.pid) if "bootstrap.py" in cmd]
        return bool(workers)

    await wait_for(started, timeout=60, what="the assistant's worker to start")
    server.proc.kill()  # SIGKILL: no shutdown code runs in the server
    server.proc.wait(10)
    await wait_for(lambda: all(gone(pid) for pid in workers), what="the worker to end")
