"""Conversations outlive their slot: the on-disk KV state cache, through the real SmolLM2 model.

A conversation's KV state is saved when another conversation takes its slot, when the model is
unloaded and when the engine stops; resuming it restores the state instead of re-processing the
history. The text must be exactly what the engine produces without the cache.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from engine_fixtures import chat, collect, spec_for
from waiting import eventually

from jan.host.engine import EngineManager, create_service

pytestmark = pytest.mark.slow

FACTS = ("The lighthouse keeper of Varnholm kept a logbook of every ship that passed, "
         "noting its flag, its cargo and the weather. ")


def conversation(topic: str, **kw: Any):
    system = "You are a patient assistant who answers in one short paragraph. " * 4
    # The topic first: conversations differ early, as different chats do.
    return chat(f"About {topic}: " + FACTS * 6 + "What did he write?", system=system,
                max_tokens=24, **kw)


@contextlib.asynccontextmanager
async def cached_engine(data: Path, **settings: Any) -> AsyncIterator[EngineManager]:
    settings.setdefault("kv_cache_min_tokens", 64)
    engine = create_service(settings=settings, data=data)
    try:
        yield engine
    finally:
        await engine.close()


def kv_files(data: Path) -> list[Path]:
    return sorted((data / "cache" / "kv").glob("*.kv"))


async def test_conversation_evicted_from_its_slot_resumes_from_disk(smollm_path, tmp_path) -> None:
    spec = spec_for(smollm_path, n_parallel=1)
    a, b = conversation("ships"), conversation("storms")
    async with cached_engine(tmp_path) as engine:
        text_a, done_a = await collect(engine, spec, a)  # fresh: nothing cached
        assert done_a.usage.cached_tokens == 0
        await collect(engine, spec, b)  # takes the only slot: a goes to disk
        await eventually(lambda: kv_files(tmp_path), what="a saved KV entry")
        again, done = await collect(engine, spec, a)
        metrics = engine.metrics_text()
    assert again == text_a
    assert done.usage.cached_tokens >= 0.9 * done.usage.prompt_tokens
    assert f'jan_engine_restored_tokens_total{{model="smollm2"}} {done.usage.cached_tokens}' \
        in metrics


async def test_resumed_after_unload_and_after_restart(smollm_path, tmp_path) -> None:
    spec = spec_for(smollm_path)
    a = conversation("lamps")
    async with cached_engine(tmp_path) as engine:
        text, _ = await collect(engine, spec, a)
        assert await engine.unload("smollm2")  # saved on the way out
        assert kv_files(tmp_path)
        after_unload, done1 = await collect(engine, spec, a)
    async with cached_engine(tmp_path) as engine:  # a new engine: a restarted server
        after_restart, done2 = await collect(engine, spec, a)
    async with contextlib.AsyncExitStack() as stack:  # and without any cache at all
        plain = await stack.enter_async_context(cached_engine(tmp_path / "none", kv_cache_mb=0))
        reference, done3 = await collect(plain, spec, a)
    assert done3.usage.cached_tokens == 0
    assert after_unload == after_restart == text == reference
    for done in (done1, done2):
        assert done.usage.cached_tokens >= 0.9 * done.usage.prompt_tokens


async def test_corrupt_entry_is_ignored_and_removed(smollm_path, tmp_path) -> None:
    spec = spec_for(smollm_path)
    a = conversation("harbours")
    async with cached_engine(tmp_path) as engine:
        text, _ = await collect(engine, spec, a)
    (entry,) = kv_files(tmp_path)
    raw = bytearray(entry.read_bytes())
    raw[-100] ^= 0xFF  # one flipped byte in the state
    entry.write_bytes(bytes(raw))
    async with cached_engine(tmp_path) as engine:
        again, done = await collect(engine, spec, a)
        assert not entry.exists()
    assert again == text
    assert done.usage.cached_tokens == 0


async def test_cache_stays_under_its_cap(smollm_path, tmp_path) -> None:
    spec = spec_for(smollm_path, n_parallel=1)
    async with cached_engine(tmp_path, kv_cache_mb=16) as engine:  # room for about one entry
        for topic in ("ships", "storms", "gulls", "tides"):
            await collect(engine, spec, conversation(topic))
    files = kv_files(tmp_path)
    assert files  # the last one was saved on shutdown
    assert sum(f.stat().st_size for f in files) <= 16 * 2**20
