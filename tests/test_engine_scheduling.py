"""Admission under load, through the real SmolLM2 model: shared prompt prefixes are processed
once and copied, and a short prompt is not stuck behind a long one. Greedy text must be exactly
what the engine produces without these.
"""

from __future__ import annotations

import asyncio

import pytest
from engine_fixtures import chat, collect, engine_for, spec_for

from jan.sdk.inference import Delta, GenerationRequest

pytestmark = pytest.mark.slow

SYSTEM = ("You are the ship's assistant. Answer in one short paragraph, politely, and mention "
          "the weather, the cargo and the crew when it helps. ") * 3
QUESTIONS = ("Where is the cargo?", "Who is at the helm?", "Will it rain?", "Name the ship.")


def question(q: str) -> GenerationRequest:
    return chat(q, system=SYSTEM, max_tokens=16)


async def test_a_shared_system_prompt_is_processed_once(smollm_path) -> None:
    spec = spec_for(smollm_path, n_parallel=4)
    async with engine_for({"share_min_tokens": 0}) as engine:  # one at a time, no sharing
        alone = [(await collect(engine, spec, question(q)))[0] for q in QUESTIONS]
    async with engine_for() as engine:
        await engine.load(spec)
        together = await asyncio.gather(*(collect(engine, spec, question(q)) for q in QUESTIONS))
        metrics = engine.metrics_text()
    # The same text as each request alone (without sharing, a prompt decoded beside others
    # can differ in the last bits of its KV values, and greedy output with them).
    assert [text for text, _ in together] == alone
    # Arriving together, the first request decodes the system prompt; the others copy it.
    cached = sorted(done.usage.cached_tokens for _, done in together)
    assert cached[0] == 0 and all(c >= 60 for c in cached[1:]), cached
    assert f'jan_engine_shared_tokens_total{{model="smollm2"}} {sum(cached)}' in metrics


async def test_a_short_prompt_is_not_stuck_behind_a_long_one(smollm_path) -> None:
    spec = spec_for(smollm_path, n_parallel=3)
    firsts: list[str] = []

    async def first_token(name: str, req: GenerationRequest) -> None:
        async for ev in engine.generate(spec, req):
            if isinstance(ev, Delta) and ev.text:
                firsts.append(name)
                return

    # A fixed small budget (no measured one), so the long prompt needs several steps.
    async with engine_for({"step_ms": 0, "prompt_chunk": 48}) as engine:
        await engine.load(spec)
        running = asyncio.create_task(collect(engine, spec, chat("Count to fifty.",
                                                                 max_tokens=120)))
        await first_token("warm", chat("Say hi.", max_tokens=2))
        long = chat("Summarise this log: " + "The crew mended the sails at noon. " * 40,
                    max_tokens=4)
        await asyncio.gather(first_token("long", long), first_token("short", chat("Hi!")))
        await running
    assert firsts == ["warm", "short", "long"]
