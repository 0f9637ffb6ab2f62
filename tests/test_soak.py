"""Soak: mixed traffic against a real ``jan serve`` for ``JAN_SOAK_SECONDS`` (default 240 in
CI, 60 elsewhere): chat streams (some dropped mid-stream), threads and messages, runs of a code
assistant that calls the model, and the model runner SIGKILLed now and then.

Measured: no 5xx except requests cut by a killed runner; host RSS after warm-up stays within
10%; no growth in child processes or open file descriptors. The figures are printed (run with
``-s``) and written to ``soak.json`` beside the data folder.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from pathlib import Path

import httpx
import pytest
from conftest import IN_CI

pytestmark = pytest.mark.slow
MODEL = "smollm2"
SECONDS = float(os.environ.get("JAN_SOAK_SECONDS") or (240 if IN_CI else 60))
KILL_EVERY = max(20.0, SECONDS / 6)
CODER = """
from jan.sdk.assistant import events, models, thread

@events.on("assistant:coder")
def reply(event):
    text = thread.messages()[-1]["content"]
    total = sum(int(c) for c in text if c.isdigit())
    answer = models[0].chat([{"role": "user", "content": text}], max_tokens=4)
    return f"sum={total} model={len(answer)}"
"""


def write_folder(data: Path, gguf: Path) -> None:
    folder = data / "models" / MODEL
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.json").write_text(json.dumps({
        "id": MODEL, "object": "model", "name": "SmolLM2 135M", "format": "gguf",
        "engine": "llama-cpp",
        "settings": {"llama_model_path": str(gguf), "ctx_len": 1024, "n_parallel": 2},
        "parameters": {"temperature": 0},
    }))
    coder = data / "assistants" / "coder"
    coder.mkdir(parents=True, exist_ok=True)
    (coder / "assistant.json").write_text(json.dumps({"id": "coder", "name": "coder",
                                                      "model": MODEL}))
    (coder / "index.py").write_text(CODER)
    (data / "settings.json").write_text(json.dumps({"default_model": MODEL}))


def children(pid: int) -> set[int]:
    """All descendants of ``pid`` (via /proc/*/stat parent links)."""
    parent: dict[int, int] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                fields = Path(f"/proc/{name}/stat").read_text().rsplit(")", 1)[1].split()
                parent[int(name)] = int(fields[1])
            except (OSError, IndexError, ValueError):
                continue
    out, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, pp in parent.items() if pp in frontier} - out
        out |= frontier
    return out


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def runner_pids(pid: int) -> list[int]:
    out = []
    for p in children(pid):
        try:
            if b"jan.host.engine.runner" in Path(f"/proc/{p}/cmdline").read_bytes():
                out.append(p)
        except OSError:
            continue
    return out


class Traffic:
    def __init__(self, c: httpx.AsyncClient) -> None:
        self.c = c
        self.counts: dict[str, int] = {}
        self.bad: list[str] = []
        self.killed_at: list[float] = []

    def record(self, kind: str, status: int, text: str) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1
        if status >= 500 and not self._runner_kill(text):
            self.bad.append(f"{kind}: {status} {text[:200]}")

    def _runner_kill(self, text: str) -> bool:
        # A killed runner fails what it was generating (503 "runner ...", or an assistant's
        # model call answered "Unavailable"); anything else is a finding.
        return bool(self.killed_at) and any(w in text for w in ("runner", "exited",
                                                                "Unavailable"))

    async def chat(self, i: int) -> None:
        drop = i % 4 == 3  # a client that leaves mid-stream
        async with self.c.stream("POST", "/v1/chat/completions", json={
                "model": MODEL, "stream": True, "max_tokens": 24,
                "messages": [{"role": "user", "content": f"Tell me about the number {i}."}]},
        ) as r:
            if r.status_code != 200:
                self.record("chat", r.status_code, (await r.aread()).decode())
                return
            async for line in r.aiter_lines():
                if '"error"' in line:
                    self.record("chat", 500, line)
                    return
                if drop and line.startswith("data: "):
                    break
        self.record("chat", 200, "")

    async def threads(self, i: int) -> None:
        r = await self.c.post("/v1/threads", json={"metadata": {"i": str(i)}})
        self.record("threads", r.status_code, r.text)
        if r.status_code != 200:
            return
        tid = r.json()["id"]
        for n in range(3):
            r = await self.c.post(f"/v1/threads/{tid}/messages",
                                  json={"role": "user", "content": f"note {n} of {i}"})
            self.record("messages", r.status_code, r.text)
        r = await self.c.get(f"/v1/threads/{tid}/messages", params={"limit": 10})
        self.record("messages", r.status_code, r.text)
        if i % 2 == 0:
            r = await self.c.delete(f"/v1/threads/{tid}")
            self.record("threads", r.status_code, r.text)

    async def run(self, i: int) -> None:
        r = await self.c.post("/v1/threads/runs", json={
            "assistant_id": "coder",
            "thread": {"messages": [{"role": "user", "content": f"add {i} and 12"}]}})
        self.record("runs", r.status_code, r.text)
        if r.status_code != 200:
            return
        run = r.json()
        deadline = time.monotonic() + 120
        while run["status"] in ("queued", "in_progress") and time.monotonic() < deadline:
            await asyncio.sleep(0.1)  # polling a run, as the SDKs do
            r = await self.c.get(f"/v1/threads/{run['thread_id']}/runs/{run['id']}")
            self.record("runs", r.status_code, r.text)
            if r.status_code != 200:
                return
            run = r.json()
        if run["status"] == "failed" and not self._runner_kill(json.dumps(run)):
            self.bad.append(f"run failed: {run.get('last_error')}")

    async def loop(self, kind: str, until: float) -> None:
        fn = getattr(self, kind)
        i = 0
        while time.monotonic() < until:
            try:
                await fn(i)
            except httpx.HTTPError as exc:
                self.bad.append(f"{kind}: transport error {exc!r}")
            i += 1


async def settle(t: Traffic) -> None:
    """Bring the steady state back (runner and worker up) before counting processes."""
    await t.chat(0)
    await t.run(0)


async def test_soak_mixed_traffic(jan_server, data_folder, smollm_path):
    write_folder(data_folder, smollm_path)
    server = jan_server()
    pid = server.proc.pid
    warm_s = max(15.0, SECONDS * 0.25)
    warm_until = time.monotonic() + warm_s
    samples: list[tuple[float, int]] = []
    async with httpx.AsyncClient(base_url=server.url, timeout=180) as c:
        t = Traffic(c)

        async def monitor(end: float) -> None:
            next_kill = time.monotonic() + min(KILL_EVERY, (end - time.monotonic()) / 3)
            while time.monotonic() < end:
                samples.append((time.monotonic(), rss_kb(pid)))
                if time.monotonic() >= next_kill:
                    for runner in runner_pids(pid):
                        t.killed_at.append(time.monotonic())
                        os.kill(runner, signal.SIGKILL)
                    next_kill += KILL_EVERY
                await asyncio.sleep(1)  # sampling period, not a wait for a condition

        warm = asyncio.gather(*(t.loop(k, warm_until) for k in ("chat", "threads", "run")))
        await warm
        await settle(t)
        base = {"rss_kb": rss_kb(pid), "fds": fds(pid), "procs": len(children(pid))}
        end = time.monotonic() + max(SECONDS - warm_s, 20.0)  # measured from the warm state
        await asyncio.gather(monitor(end), *(t.loop(k, end) for k in ("chat", "chat", "threads",
                                                                       "run")))
        await settle(t)
        final = {"rss_kb": rss_kb(pid), "fds": fds(pid), "procs": len(children(pid))}
    peak = max(kb for _, kb in samples) if samples else final["rss_kb"]
    figures = {"seconds": SECONDS, "requests": t.counts, "kills": len(t.killed_at),
               "baseline": base, "final": final, "peak_rss_kb": peak,
               "rss_ratio_final": round(final["rss_kb"] / base["rss_kb"], 3),
               "rss_ratio_peak": round(peak / base["rss_kb"], 3), "bad": t.bad[:20]}
    print("\nsoak figures:", json.dumps(figures))
    (data_folder.parent / "soak.json").write_text(json.dumps(figures, indent=2))
    assert not t.bad, t.bad[:20]
    assert sum(t.counts.values()) > 20
    assert final["rss_kb"] <= base["rss_kb"] * 1.10, figures
    assert final["procs"] <= base["procs"], figures
    assert final["fds"] <= base["fds"] + 2, figures  # a pooled connection may come or go
