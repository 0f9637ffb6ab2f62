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
        fast.causal = False  # the same batch layout as embedding mode's (no shared openings)
        got = vectors(fast)
        monkeypatch.setattr(hidden, "HIDDEN_TENSOR", b"no-such-tensor")
        slow = Embedder(model, 512, 2)
        want = vectors(slow)
    finally:
        model.free()
    assert fast.hidden is not None and slow.hidden is None
    for g, w in zip(got, want, strict=True):
        assert sum(x * y for x, y in zip(g, w, strict=True)) > 0.99999


async def test_inputs_that_open_alike_share_those_tokens_and_get_their_own_vectors(
        smollm_path) -> None:
    """An instruction every query carries is decoded once per batch (a causal model's hidden
    state at a token depends on the tokens before it only): the vectors are those each input gets
    alone, and /metrics counts the tokens shared."""
    from jan.host.engine.native import Model, init_backend

    instruction = "Instruct: Given a question about the sea, retrieve passages that answer it\n"
    queries = [f"{instruction}Query: where does the {w} go at night?" for w in WORDS]
    queries += [instruction + "Query: where does the", queries[0]]  # a prefix, a duplicate
    async with engine_for() as engine:
        spec = spec_for(smollm_path)
        batch = await engine.embed(spec, queries)
        alone = [(await engine.embed(spec, [q])).vectors[0] for q in queries]
        metrics = engine.metrics_text()
    for got, want in zip(batch.vectors, alone, strict=True):
        # As any batch: the same vector up to float rounding.
        assert sum(x * y for x, y in zip(got, want, strict=True)) > 0.9999
    assert batch.vectors[0] != batch.vectors[1]

    init_backend()
    model = Model(str(smollm_path))
    try:
        tokens = [model.tokenize(q, add_special=True, parse_special=False) for q in queries]
    finally:
        model.free()
    distinct = {tuple(t[:k]) for t in tokens for k in range(1, len(t) + 1)}
    counted = dict(line.rsplit(" ", 1) for line in metrics.splitlines() if "embedding" in line
                   and not line.startswith("#"))
    label = f'{{model="{spec.model_id}"}}'
    assert int(counted["jan_engine_embedding_inputs_total" + label]) == 2 * len(queries)
    assert int(counted["jan_engine_embedding_tokens_total" + label]) == 2 * batch.prompt_tokens
    # One decode for the batch (alone, nothing is shared): each distinct opening decoded once.
    assert int(counted["jan_engine_embedding_shared_tokens_total" + label]) == \
        batch.prompt_tokens - len(distinct)
