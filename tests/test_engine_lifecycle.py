"""Engine lifecycle with the real model: queue limits, crashes, idle unload, memory budget."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest
from engine_fixtures import STORY, RecordingBus, chat, collect, engine_for, spec_for
from waiting import eventually

from jan.host.engine.slots import estimate_bytes
from jan.sdk.errors import Overloaded, Unavailable
from jan.sdk.events import MODEL_LOADED, MODEL_UNLOADED
from jan.sdk.inference import Delta

pytestmark = pytest.mark.slow


async def test_full_queue_is_overloaded_with_retry_after(smollm_path) -> None:
    async with engine_for({"queue_size": 1, "retry_after": 3}) as engine:
        spec = spec_for(smollm_path, n_parallel=1)
        running = engine.generate(spec, chat(STORY, max_tokens=900))
        assert isinstance(await running.__anext__(), Delta)
        waiting = asyncio.create_task(collect(engine, spec, chat("Hi", max_tokens=4)))
        await eventually(lambda: engine.loaded()[0].queued == 1, what="the first to queue")
        with pytest.raises(Overloaded) as err:
            await collect(engine, spec, chat("Hi", max_tokens=4))
        assert err.value.status == 503 and err.value.headers["Retry-After"] == "3"
        await running.aclose()
        text, _ = await asyncio.wait_for(waiting, 30)  # the queued one still completes
        assert text


async def test_killed_runner_fails_its_streams_then_restarts(smollm_path) -> None:
    bus = RecordingBus()
    async with engine_for(events=bus) as engine:
        spec = spec_for(smollm_path, n_parallel=2)
        first = engine.generate(spec, chat(STORY, max_tokens=900))
        other = engine.generate(spec, chat("Count to one hundred.", max_tokens=900))
        assert isinstance(await first.__anext__(), Delta)
        assert isinstance(await other.__anext__(), Delta)
        pid = engine.loaded()[0].pid
        assert pid
        os.kill(pid, signal.SIGKILL)
        for gen in (first, other):
            with pytest.raises(Unavailable):
                async for _ in gen:
                    pass
        text, done = await collect(engine, spec, chat("Say hi.", max_tokens=6))
        assert text and done.usage.completion_tokens > 0
        new_pid = engine.loaded()[0].pid
        assert new_pid and new_pid != pid
    topics = [t for t, _ in bus.seen]
    assert topics.count(MODEL_LOADED) == 2
    assert (MODEL_UNLOADED, {"model_id": "smollm2", "reason": "crashed"}) in bus.seen


async def test_idle_model_is_unloaded_after_keep_alive(smollm_path) -> None:
    bus = RecordingBus()
    async with engine_for({"keep_alive": 0.5}, events=bus) as engine:
        spec = spec_for(smollm_path)
        await collect(engine, spec, chat("Hi", max_tokens=2))
        pid = engine.loaded()[0].pid
        # loaded() empties when the unload starts; the event follows once the runner has exited
        unloaded = (MODEL_UNLOADED, {"model_id": "smollm2", "reason": "idle"})
        await eventually(lambda: unloaded in bus.seen, what="the idle unload event")
        assert engine.loaded() == []
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # the process really is gone (memory returned)
        text, _ = await collect(engine, spec, chat("Hi", max_tokens=2))  # auto-load again
        assert text


async def test_memory_budget_evicts_the_least_recently_used(smollm_path) -> None:
    one = estimate_bytes(spec_for(smollm_path))
    budget_mb = int(one * 1.5) // 2**20  # room for one model, not two
    async with engine_for({"memory_budget_mb": budget_mb}) as engine:
        a = spec_for(smollm_path, model_id="a")
        b = spec_for(smollm_path, model_id="b", ctx_len=512)
        await engine.load(a)
        assert [m.model_id for m in engine.loaded()] == ["a"]
        await collect(engine, b, chat("Hi", max_tokens=2))
        assert [m.model_id for m in engine.loaded()] == ["b"]
        assert await engine.unload("b") is True
        assert await engine.unload("b") is False
        assert engine.loaded() == []


async def test_unknown_model_file_fails_to_load_cleanly(tmp_path) -> None:
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + b"\0" * 64)
    async with engine_for() as engine:
        with pytest.raises(Unavailable) as err:
            await collect(engine, spec_for(bad, model_id="broken"), chat("Hi"))
        assert err.value.code == "model_load_failed"
        assert engine.loaded() == []
