"""Sandbox latency: warm round trip (host → assistant handler → host) and cold worker start.

Peers measured in the same run, on the same machine:
- warm: the same newline-JSON round trip to an unsandboxed child over plain pipes (the floor
  any out-of-process design pays), and a handler that itself calls back into the host once;
- cold: ``python -I -c pass`` (the floor for starting any Python worker) and the probe.
Usage: python bench/bench_sandbox.py [warm_calls] [cold_starts]
"""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from jan.host.events import EventBus
from jan.host.sandbox import create_service

HANDLER = """
from jan.sdk.assistant import events

@events.on("assistant:bench")
def reply(event):
    return "ok"

@events.on("assistant:bench-callback")
def callback(event):
    events.emit("assistant:bench", {"n": 1})
    return "ok"
"""
ECHO_CHILD = "import sys\nfor line in sys.stdin: sys.stdout.write(line); sys.stdout.flush()\n"


class NoServices:
    def get(self, name: str, provider: str | None = None):  # noqa: ANN201
        raise LookupError(name)


def summary(samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    p = lambda q: ms[min(len(ms) - 1, int(q * len(ms)))]  # noqa: E731
    return f"median {statistics.median(ms):8.3f} ms   p90 {p(0.9):8.3f} ms   min {ms[0]:8.3f} ms"


async def warm(sup, n: int) -> tuple[list[float], list[float]]:
    await sup.start("bench")
    plain, callback = [], []
    for _ in range(n):
        t = time.perf_counter()
        await sup.run("bench", thread_id="t", run_id="r")
        plain.append(time.perf_counter() - t)
    worker = sup._workers["bench"]
    for _ in range(n):
        t = time.perf_counter()
        await worker.call("assistant:bench-callback", {}, {"kind": "event"}, 10)
        callback.append(time.perf_counter() - t)
    return plain, callback


async def cold(sup, n: int) -> list[float]:
    out = []
    for _ in range(n):
        await sup._workers.pop("bench").stop()
        t = time.perf_counter()
        await sup.start("bench")  # spawn, harden, import index.py, answer init
        out.append(time.perf_counter() - t)
    return out


def pipe_peer(n: int) -> list[float]:
    child = subprocess.Popen([sys.executable, "-I", "-c", ECHO_CHILD], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    out = []
    line = json.dumps({"jsonrpc": "2.0", "id": "h1", "method": "call",
                       "params": {"topic": "assistant:bench", "data": {}}}) + "\n"
    for _ in range(n):
        t = time.perf_counter()
        child.stdin.write(line)
        child.stdin.flush()
        json.loads(child.stdout.readline())
        out.append(time.perf_counter() - t)
    child.stdin.close()
    child.wait()
    return out


def python_start_peer(n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-I", "-c", "pass"], check=True)
        out.append(time.perf_counter() - t)
    return out


async def main(warm_calls: int, cold_starts: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "assistants" / "bench"
        folder.mkdir(parents=True)
        (folder / "index.py").write_text(HANDLER)
        sup = create_service(data=tmp, settings={"autostart": False}, events=EventBus(),
                             services=NoServices())
        t = time.perf_counter()
        report = sup.probe()
        probe_s = time.perf_counter() - t
        try:
            plain, callback = await warm(sup, warm_calls)
            starts = await cold(sup, cold_starts)
        finally:
            await sup.close()
    peer_rtt, peer_start = pipe_peer(warm_calls), python_start_peer(cold_starts)
    print(f"isolation level: {report.level} "
          f"({', '.join(k for k, v in report.layers.items() if v.active)})")
    print(f"warm round trip, host -> handler -> host ({warm_calls} calls)")
    print(f"  sandboxed run              {summary(plain)}")
    print(f"  handler + 1 host callback  {summary(callback)}")
    print(f"  peer: plain pipe echo      {summary(peer_rtt)}")
    ratio = statistics.median(plain) / statistics.median(peer_rtt)
    print(f"  ratio sandboxed/peer       {ratio:.1f}x")
    print(f"cold worker start to first ready ({cold_starts} starts)")
    print(f"  sandboxed worker           {summary(starts)}")
    print(f"  peer: python -I -c pass    {summary(peer_start)}")
    print(f"  ratio sandboxed/peer       "
          f"{statistics.median(starts) / statistics.median(peer_start):.1f}x")
    print(f"probe (first call, in the background since startup): {probe_s * 1000:.1f} ms")


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    asyncio.run(main(*(args + [500, 20][len(args):])))
