"""Where a chat app feels the engine, against llama.cpp's ``llama-server`` in the same run.

1. First token under load: 8 and 16 concurrent streams (greedy, ``--tokens`` each): worst and
   median time to first token, aggregate tokens/s (engine and llama-server both with 16 slots),
   in ``--rounds`` alternating rounds, each figure the median over the rounds.
2. Embeddings: requests of 64 inputs, inputs/s (llama-server with ``--embeddings``), in
   ``--embed-requests`` alternating rounds, the median of each; once with inputs that open
   alike in threes (the engine decodes a shared opening once), once with distinct openings.
3. Resuming a ~3,000-token conversation after the model was unloaded: time to first token with
   the engine's on-disk KV cache, against the engine re-processing it (cache off) and against
   llama-server freshly started (it re-processes).

Ratios are measured in the same run (the machine is shared: absolute figures are noisy).
Usage: ``python bench/bench_engine.py --llama-server "$(python bench/build_llama_server.py)"``
(about 3 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from bench_inference import NAMES, default_model
from engine_http import HttpTarget, llama_server
from engine_stats import Run, Stream, timed

from jan.host.engine import create_service
from jan.sdk.inference import ChatMessage, GenerationRequest, LoadSpec

SLOTS = 16


def story(i: int, salt: str) -> str:
    return f"Write a long story about a dragon named {NAMES[i % len(NAMES)]} who lives {salt}."


def history(n_turns: int) -> list[dict[str, str]]:
    """A long conversation (about 3,000 tokens for 28 turns with SmolLM2's tokenizer)."""
    msgs = [{"role": "system", "content": "You are a helpful assistant for a ship's crew."}]
    for t in range(n_turns):
        msgs.append({"role": "user", "content": f"Day {t}: log the weather, the cargo and the "
                     f"crew's mood in detail, and mention {NAMES[t % len(NAMES)]}."})
        msgs.append({"role": "assistant", "content": (
            f"Day {t} log. The sky was grey at dawn and cleared by noon; a westerly wind of "
            f"force four carried us past the reefs. Cargo: {t + 3} crates of tea, {t * 2 + 5} "
            f"barrels of salted fish and a chest of maps. {NAMES[t % len(NAMES)]} sang at the "
            "helm while the others mended sails; spirits were high despite the rationing.")})
    return msgs


class EngineTarget:
    def __init__(self, spec: LoadSpec, data: str | None = None, **settings: Any) -> None:
        self.spec = spec
        self.engine = create_service(settings=settings, data=data)
        self.usage: Any = None

    async def stream(self, messages: list[dict[str, str]], max_tokens: int) -> Stream:
        req = GenerationRequest(messages=[ChatMessage(**m) for m in messages],
                                max_tokens=max_tokens, temperature=0.0)
        s, self.usage = await timed(self.engine.generate(self.spec, req))
        return s


class Server(HttpTarget):
    async def stream(self, messages: list[dict[str, str]], max_tokens: int) -> Stream:
        # HttpTarget sends one user message; for whole conversations send them as they are.
        body = {"model": self.model, "stream": True, "max_tokens": max_tokens,
                "temperature": 0.0, "messages": messages}
        s = Stream()
        async with self.client.stream("POST", "/v1/chat/completions", json=body) as resp:
            resp.raise_for_status()
            async for line in resp.aiter_lines():
                if line.startswith("data: ") and line != "data: [DONE]":
                    for choice in json.loads(line[6:]).get("choices") or []:
                        s.on_text((choice.get("delta") or {}).get("content") or "")
        return s.finish(None)


async def load_test(target: Any, n: int, tokens: int, salt: str) -> Run:
    msgs = [[{"role": "user", "content": story(i, salt)}] for i in range(n)]
    return Run(list(await asyncio.gather(*(target.stream(m, tokens) for m in msgs))))


def line(name: str, runs: list[Run]) -> tuple[str, float, float, float]:
    """Worst and median time to first token and tokens/s: each the median over the rounds."""
    worst = statistics.median(max(r.ttfts) for r in runs)
    median = statistics.median(statistics.median(r.ttfts) for r in runs)
    return name, worst, median, statistics.median(r.tps for r in runs)


async def concurrency(args: argparse.Namespace, threads: int) -> list[tuple]:
    """Both servers up at once, measured in alternating rounds (the one measured first
    alternates too), so drift in the machine's speed hits both alike."""
    spec = LoadSpec(model_id="bench", path=args.model, ctx_len=512, n_parallel=SLOTS,
                    cpu_threads=threads)
    eng = EngineTarget(spec)
    runs: dict[str, list[Run]] = {}
    try:
        await eng.engine.load(spec)
        with llama_server(args.llama_server, args.model, threads, 512, SLOTS) as base:
            srv = Server("llama-server", base, "bench")
            targets = {"engine": eng, "llama-server": srv}
            for target in targets.values():
                await load_test(target, 8, 4, "w")  # warm-up round, not measured
            for r in range(args.rounds):
                order = list(targets.items())[:: 1 if r % 2 == 0 else -1]
                for n in (8, 16):
                    for name, target in order:  # a new salt a round: nothing fully cached
                        run = await load_test(target, n, args.tokens, f"e{r}")
                        runs.setdefault(f"{name} {n} streams", []).append(run)
            await srv.close()
    finally:
        await eng.engine.close()
    return [line(name, runs[name]) for name in sorted(runs)]


def texts(n: int) -> list[str]:
    """Inputs that open alike in threes (one name each): like inputs that carry a common
    instruction, the engine decodes their shared opening once."""
    return [f"{NAMES[i % len(NAMES)]} keeps a lighthouse log number {i} about storms and ships."
            for i in range(n)]


def distinct_texts(n: int) -> list[str]:
    """The same words with the number first: hardly any input opens like another."""
    return [f"{i} {NAMES[i % len(NAMES)]} keeps a lighthouse log about storms and ships."
            for i in range(n)]


def counter(metrics: str, name: str) -> int:
    return sum(int(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
               if line.startswith(f"jan_engine_{name}_total{{"))


async def embeddings(args: argparse.Namespace, threads: int
                     ) -> list[tuple[str, float, float, float]]:
    """Per kind of input: (kind, engine inputs/s, llama-server inputs/s, share of the engine's
    input tokens decoded once for several inputs). Both servers up at once, one 64-input
    request each in ``--embed-requests`` alternating rounds, the median of each."""
    spec = LoadSpec(model_id="bench-embed", path=args.model, ctx_len=512, n_parallel=1,
                    cpu_threads=threads)
    eng = create_service(settings={})
    out = []
    try:
        with llama_server(args.llama_server, args.model, threads, 512, 8,
                          ("--embeddings", "--pooling", "mean")) as base:
            async with httpx.AsyncClient(base_url=base, timeout=300) as c:
                await eng.embed(spec, distinct_texts(4))
                (await c.post("/v1/embeddings", json={"input": texts(4)})).raise_for_status()
                for kind, make in (("openings shared in threes", texts),
                                   ("openings distinct", distinct_texts)):
                    before = eng.metrics_text()
                    ours: list[float] = []
                    theirs: list[float] = []
                    for _ in range(args.embed_requests):
                        t0 = time.perf_counter()
                        await eng.embed(spec, make(64))
                        ours.append(64 / (time.perf_counter() - t0))
                        t0 = time.perf_counter()
                        r = await c.post("/v1/embeddings", json={"input": make(64)})
                        r.raise_for_status()
                        assert len(r.json()["data"]) == 64
                        theirs.append(64 / (time.perf_counter() - t0))
                    after = eng.metrics_text()
                    tokens, shared = (counter(after, k) - counter(before, k)
                                      for k in ("embedding_tokens", "embedding_shared_tokens"))
                    out.append((kind, statistics.median(ours), statistics.median(theirs),
                                shared / tokens))
    finally:
        await eng.close()
    return out


async def resume(args: argparse.Namespace, threads: int) -> dict[str, float]:
    conv = history(args.turns)
    first = conv + [{"role": "user", "content": "Summarise day 3."}]
    later = first + [{"role": "assistant", "content": "Day 3 was calm."},
                     {"role": "user", "content": "And what about day 5?"}]
    spec = LoadSpec(model_id="bench-resume", path=args.model, ctx_len=4096, n_parallel=1,
                    cpu_threads=threads)
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as data:
        for name, settings in (("cache", {"data": data}), ("no cache", {"kv_cache_mb": 0})):
            eng = EngineTarget(spec, **settings)
            try:
                await eng.stream(first, 8)  # the conversation so far, processed once
                await eng.engine.unload(spec.model_id)  # keep-alive ran out (saved to disk)
                await eng.engine.load(spec)
                out[name] = (await eng.stream(later, 8)).ttft or float("nan")
                print(f"resume TTFT, engine {name}: {out[name] * 1000:.0f} ms", file=sys.stderr)
                out["prompt tokens"] = eng.usage.prompt_tokens
                out[f"{name} cached"] = eng.usage.cached_tokens
            finally:
                await eng.engine.close()
    with llama_server(args.llama_server, args.model, threads, 4096, 1) as base:
        srv = Server("llama-server", base, "bench")
        await srv.stream([{"role": "user", "content": "Hi"}], 2)  # warm, but a new process
        out["llama-server"] = (await srv.stream(later, 8)).ttft or float("nan")
        await srv.close()
    return out


async def bench(args: argparse.Namespace) -> None:
    threads = args.threads or os.cpu_count() or 1
    if "load" in args.parts:
        await load_part(args, threads)
    if "embed" in args.parts:
        await embed_part(args, threads)
    if "resume" in args.parts:
        await resume_part(args, threads)


async def load_part(args: argparse.Namespace, threads: int) -> None:
    rows = await concurrency(args, threads)
    print("| target | TTFT worst | TTFT median | tokens/s |\n|---|---|---|---|")
    for name, worst, med, tps in rows:
        print(f"| {name} | {worst * 1000:.0f} ms | {med * 1000:.0f} ms | {tps:.1f} |")
    by = {name: (worst, med, tps) for name, worst, med, tps in rows}
    for n in (8, 16):
        e, s = by[f"engine {n} streams"], by[f"llama-server {n} streams"]
        print(f"{n} streams, engine / llama-server: TTFT worst {e[0] / s[0]:.2f}x (target <= 1), "
              f"median {e[1] / s[1]:.2f}x, throughput {e[2] / s[2]:.2f}x (target >= 1)")


async def embed_part(args: argparse.Namespace, threads: int) -> None:
    print("\nembeddings, 64 inputs a request (target >= 1.2x llama-server)")
    for kind, ours, theirs, shared in await embeddings(args, threads):
        print(f"{kind} ({shared:.0%} of tokens shared): engine {ours:.1f} inputs/s, "
              f"llama-server {theirs:.1f} inputs/s: {ours / theirs:.2f}x")


async def resume_part(args: argparse.Namespace, threads: int) -> None:
    r = await resume(args, threads)
    print(f"\nresume a {args.turns}-turn conversation ({r['prompt tokens']:.0f} tokens, "
          f"{r['cache cached']:.0f} cached) after an unload, TTFT: cache "
          f"{r['cache'] * 1000:.0f} ms, re-processing {r['no cache'] * 1000:.0f} ms, "
          f"llama-server {r['llama-server'] * 1000:.0f} ms: {r['cache'] / r['no cache']:.2f}x "
          f"re-processing (target <= 0.2), {r['cache'] / r['llama-server']:.2f}x llama-server")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--llama-server", required=True, metavar="PATH",
                   help="llama.cpp's llama-server (python bench/build_llama_server.py)")
    p.add_argument("--model", default=None, help="GGUF file (default: SmolLM2-135M)")
    p.add_argument("--tokens", type=int, default=32, help="tokens per stream")
    p.add_argument("--turns", type=int, default=28, help="turns of the resumed conversation")
    p.add_argument("--embed-requests", type=int, default=5, help="alternating embedding rounds")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds of the load test")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--parts", default="load,embed,resume",
                   help="comma-separated subset of load,embed,resume")
    args = p.parse_args(argv)
    args.parts = set(args.parts.split(","))
    args.model = args.model or default_model()
    if not Path(args.llama_server).is_file():
        p.error(f"no llama-server at {args.llama_server}")
    asyncio.run(bench(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
