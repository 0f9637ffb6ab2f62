"""Batched embeddings through the real SmolLM2 model: many inputs (and concurrent requests) per
decode give the vectors each input gets alone, in order, while generation keeps going."""

from __future__ import annotations

import asyncio

import pytest
from engine_fixtures import STORY, chat, collect, engine_for, spec_for

from jan.sdk.errors import InvalidRequest

pytestmark = pytest.mark.slow

WORDS = ["harbour", "lantern", "storm", "gull", "tide", "anchor", "compass", "reef"]


def inputs(n: int, tag: str) -> list[str]:
    return [f"{tag} {i}: the {WORDS[i % 8]} by the {WORDS[(i * 3) % 8]} " * (1 + i % 4)
            for i in range(n)]


async def test_batched_and_concurrent_embeddings_equal_one_at_a_time(smollm_path) -> None:
    a, b = inputs(40, "a"), inputs(24, "b")
    async with engine_for() as engine:
        spec = spec_for(smollm_path)
        gen = asyncio.create_task(collect(engine, spec, chat(STORY, max_tokens=24)))
        ea, eb = await asyncio.gather(engine.embed(spec, a), engine.embed(spec, b))
        text, done = await gen
        alone = [(await engine.embed(spec, [t])).vectors[0] for t in a[:6] + b[:6]]
        with pytest.raises(InvalidRequest) as err:
            await engine.embed(spec, ["fine", "word " * 5000])
    assert err.value.code == "context_length_exceeded"
    assert len(ea.vectors) == 40 and len(eb.vectors) == 24
    for got, want in zip(ea.vectors[:6] + eb.vectors[:6], alone, strict=True):
        # Same input, same vector up to float rounding (a batch sums in another order).
        assert sum(x * y for x, y in zip(got, want, strict=True)) > 0.9999
    assert ea.vectors[0] != ea.vectors[1]
    assert text and done.usage.completion_tokens == 24  # generation went on meanwhile


def test_hidden_state_vectors_equal_embedding_mode(smollm_path, monkeypatch) -> None:
    """Vectors read from the hidden states before the output layer (which is then skipped) are
    llama.cpp's embedding-mode vectors; a graph without that tensor falls back to the latter."""
    from collections import deque

    from jan.host.engine import hidden
    from jan.host.engine.embed import Embedder, EmbedJob, embed_tokens
    from jan.host.engine.native import Model, init_backend

    def vectors(embedder: Embedder) -> list[list[float]]:
        job = EmbedJob(1, embed_tokens(model, 512, inputs(20, "c")))
        jobs = deque([job])
        while jobs:
            embedder.step(jobs, 128)  # several decodes
        embedder.free()
        return job.vectors

    init_backend()
    model = Model(str(smollm_path))
    try:
        fast = Embedder(model, 512, 2)
        got = vectors(fast)
        monkeypatch.setattr(hidden, "HIDDEN_TENSOR", b"no-such-tensor")
        slow = Embedder(model, 512, 2)
        want = vectors(slow)
    finally:
        model.free()
    assert fast.hidden is not None and slow.hidden is None
    for g, w in zip(got, want, strict=True):
        assert sum(x * y for x, y in zip(g, w, strict=True)) > 0.99999
