"""EngineManager: the host's ``inference`` service (``jan.sdk.services.InferenceEngine``).

One runner subprocess per loaded model (keyed by ``LoadSpec.load_key()``). Per model: at most
``n_parallel`` requests are sent to the runner at once, the rest wait in a FIFO of at most
``queue_size`` (beyond that: ``Overloaded``, HTTP 503 with Retry-After). Models load on first use,
unload after ``keep_alive`` idle seconds, and the least recently used idle ones are unloaded when
a new one would not fit the memory budget. A runner that dies fails only its own in-flight
requests (``Unavailable`` raised from their iterators); the next request starts a new one.

Errors come out of the iterator: a request the runner refuses (e.g. ``context_length_exceeded``)
raises on the first ``__anext__``, before any ``Delta``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from jan.sdk.errors import Overloaded, Unavailable
from jan.sdk.events import MODEL_LOADED, MODEL_UNLOADED
from jan.sdk.inference import (
    Delta,
    Done,
    Embeddings,
    GenerationRequest,
    LoadedModel,
    LoadSpec,
    ToolCallDelta,
)

from .config import EngineSettings
from .embedcall import check_inputs, embed_all
from .process import Crashed, RunnerProcess
from .protocol import Cancel, Failed, Finished, Generate, TokenText, ToolCallPiece
from .slots import ModelSlot, api_error
from .stats import EngineStats


class EngineManager:
    def __init__(self, settings: EngineSettings, events: Any = None,
                 log: logging.Logger | None = None, kv_dir: Path | None = None) -> None:
        self.settings = settings
        # The on-disk KV state cache (<data>/cache/kv); None when there is no data folder.
        self.kv_dir = kv_dir if settings.kv_cache_mb > 0 else None
        self.stats = EngineStats(self.kv_dir)
        self.events = events
        self.log = log or logging.getLogger("jan.engine")
        self._models: dict[tuple, ModelSlot] = {}
        self._reaper: asyncio.Task | None = None
        self._tasks: set[asyncio.Task] = set()
        self._closed = False
        # Where specs of remote engines go (set by the runtime: the ``remote-inference``
        # service an extension such as engine-openai provides); None = no remote engine.
        self.remote: Callable[[], Any] | None = None

    def _remote(self, spec: LoadSpec) -> Any:
        engine = self.remote() if self.remote is not None else None
        if engine is None:
            raise Unavailable(f"model {spec.model_id!r} uses engine {spec.engine!r} and no "
                              "extension serves remote engines (enable engine-openai)")
        return engine

    # -- InferenceEngine ---------------------------------------------------------------------
    def generate(self, spec: LoadSpec, request: GenerationRequest
                 ) -> AsyncIterator[Delta | ToolCallDelta | Done]:
        if spec.remote:
            return self._remote(spec).generate(spec, request)
        return self._generate_local(spec, request)

    async def _generate_local(self, spec: LoadSpec, request: GenerationRequest
                              ) -> AsyncIterator[Delta | ToolCallDelta | Done]:
        slot = self._slot(spec)
        await self._enter(slot)
        rid = None
        runner: RunnerProcess | None = None
        released = False

        def release() -> None:
            nonlocal released
            if released:
                return
            released = True
            if runner is not None and rid is not None:
                runner.close_stream(rid)
            slot.active -= 1
            slot.last_used = time.monotonic()
            slot.gate.release()

        try:
            runner = await self._ensure(slot)
            rid, q = runner.open_stream()
            runner.send(Generate(id=rid, request=request))
            while True:
                ev = await q.get()
                if isinstance(ev, TokenText):
                    yield Delta(text=ev.text)
                elif isinstance(ev, ToolCallPiece):
                    yield ToolCallDelta(index=ev.index, id=ev.call_id, name=ev.name,
                                        arguments=ev.arguments)
                elif isinstance(ev, Finished):
                    rid_done, rid = rid, None  # finished: nothing to cancel any more
                    runner.close_stream(rid_done)
                    release()  # before the last yield: the caller may never resume us
                    u = ev.usage
                    self.stats.finished(spec.model_id, prompt=u.prompt_tokens,
                                        cached=u.cached_tokens, restored=ev.restored_tokens,
                                        shared=ev.shared_tokens,
                                        completion=u.completion_tokens)
                    yield Done(finish_reason=ev.finish_reason, usage=ev.usage)
                    return
                elif isinstance(ev, Failed):
                    runner.close_stream(rid)
                    rid = None
                    raise api_error(ev)
                elif isinstance(ev, Crashed):
                    rid = None
                    raise Unavailable(ev.message)
        finally:
            if rid is not None and runner is not None:
                runner.send(Cancel(id=rid))  # the runner frees the slot at its next step
            release()

    async def embed(self, spec: LoadSpec, inputs: list[str]) -> Embeddings:
        if spec.remote:
            return await self._remote(spec).embed(spec, inputs)
        check_inputs(inputs)
        slot = self._slot(spec)
        slot.active += 1  # no generation slot: the runner embeds between steps
        try:
            out, shared = await embed_all(await self._ensure(slot), inputs)
        finally:
            slot.active -= 1
            slot.last_used = time.monotonic()
        self.stats.embedded(spec.model_id, inputs=len(inputs), prompt=out.prompt_tokens,
                            shared=shared)
        return out

    async def load(self, spec: LoadSpec) -> LoadedModel:
        if spec.remote:
            return await self._remote(spec).load(spec)
        slot = self._slot(spec)
        slot.active += 1
        try:
            await self._ensure(slot)
        finally:
            slot.active -= 1
            slot.last_used = time.monotonic()
        return self._describe(slot)

    async def unload(self, model_id: str) -> bool:
        found = [s for s in self._models.values() if s.spec.model_id == model_id and s.live]
        for slot in found:
            await self._stop(slot, "unloaded")
        return bool(found)

    def metrics_text(self) -> str:
        """The local engine's counters in Prometheus' text format (for ``GET /metrics``)."""
        return self.stats.render()

    def loaded(self) -> list[LoadedModel]:
        return [self._describe(s) for s in self._models.values() if s.live]

    async def close(self) -> None:
        self._closed = True
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        await asyncio.gather(*(self._stop(s, "shutdown") for s in self._models.values()
                               if s.runner is not None))

    # -- internals ---------------------------------------------------------------------------
    def _slot(self, spec: LoadSpec) -> ModelSlot:
        if self._closed:
            raise Unavailable("the inference engine is shut down")
        key = spec.load_key()
        slot = self._models.get(key)
        if slot is None:
            slot = self._models[key] = ModelSlot(spec.model_copy(deep=True))
        return slot

    async def _enter(self, slot: ModelSlot) -> None:
        """Wait (FIFO) for one of the model's n_parallel places, or refuse if the queue is full."""
        if slot.gate.locked() and slot.waiting >= self.settings.queue_size:
            raise Overloaded(
                f"model {slot.spec.model_id!r} has {slot.waiting} requests waiting; retry later",
                retry_after=self.settings.retry_after)
        slot.waiting += 1
        slot.last_used = time.monotonic()
        try:
            await slot.gate.acquire()
        finally:
            slot.waiting -= 1
        slot.active += 1

    async def _ensure(self, slot: ModelSlot) -> RunnerProcess:
        if slot.live and slot.runner is not None:
            return slot.runner
        async with slot.start_lock:
            if slot.live and slot.runner is not None:
                return slot.runner
            if slot.runner is not None:  # it crashed: make sure it is gone before a new one
                await self._stop(slot, "crashed")
            await self._make_room(slot)
            runner = RunnerProcess(slot.spec, prompt_chunk=self.settings.prompt_chunk,
                                   log=self.log, on_crash=lambda r: self._on_crash(slot, r),
                                   options=self._load_options())
            t0 = time.monotonic()
            await runner.start(self.settings.load_timeout)
            slot.runner = runner
            slot.mem_estimate = max(slot.mem_estimate, runner.memory_bytes() or 0)
            self.log.info("loaded model %s (pid %s) in %.2fs", slot.spec.model_id, runner.pid,
                          time.monotonic() - t0)
            self._start_reaper()
            await self._emit(MODEL_LOADED, {"model_id": slot.spec.model_id, "pid": runner.pid,
                                            "n_parallel": runner.info.n_parallel if runner.info
                                            else slot.spec.n_parallel})
            return runner

    async def _make_room(self, slot: ModelSlot) -> None:
        """Unload least recently used idle models until ``slot`` fits the memory budget."""
        budget = self.settings.budget_bytes()
        others = [s for s in self._models.values() if s is not slot and s.live]
        used = sum(s.memory() for s in others)
        for victim in sorted((s for s in others if s.idle), key=lambda s: s.last_used):
            if used + slot.mem_estimate <= budget:
                return
            used -= victim.memory()
            await self._stop(victim, "evicted")
        if used + slot.mem_estimate > budget and any(not s.idle for s in others):
            raise Overloaded(
                f"not enough memory to load {slot.spec.model_id!r} while other models are busy",
                retry_after=self.settings.retry_after)
        if used + slot.mem_estimate > budget:
            self.log.warning("model %s may not fit the memory budget; loading anyway",
                             slot.spec.model_id)

    async def _stop(self, slot: ModelSlot, reason: str) -> None:
        runner, slot.runner = slot.runner, None
        if runner is None:
            return
        was_alive = runner.alive
        await runner.stop()
        if slot.idle and slot.runner is None:  # forget it: specs come and go with settings
            self._models.pop(slot.spec.load_key(), None)
        if was_alive or reason == "crashed":
            await self._emit(MODEL_UNLOADED, {"model_id": slot.spec.model_id, "reason": reason})

    def _on_crash(self, slot: ModelSlot, runner: RunnerProcess) -> None:
        """Tell listeners now; the next request starts a new runner."""
        if slot.runner is runner and not self._closed:
            task = asyncio.create_task(self._stop(slot, "crashed"))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _start_reaper(self) -> None:
        if self._reaper is None or self._reaper.done():
            self._reaper = asyncio.create_task(self._reap())

    async def _reap(self) -> None:
        """Unload models idle for longer than keep_alive (negative keep_alive: never)."""
        keep = self.settings.keep_alive
        if keep < 0:
            return
        while True:
            await asyncio.sleep(min(max(keep / 4, 0.1), 10.0))
            now = time.monotonic()
            for key, slot in list(self._models.items()):
                if slot.live and slot.idle and now - slot.last_used >= keep:
                    self.log.info("unloading idle model %s", slot.spec.model_id)
                    await self._stop(slot, "idle")
                elif slot.runner is None and slot.idle and not slot.start_lock.locked():
                    self._models.pop(key, None)  # a load that failed: nothing to keep

    def _load_options(self) -> dict[str, Any]:
        """``Load`` fields from the settings (the KV cache's only with a data folder)."""
        opts: dict[str, Any] = {"step_ms": self.settings.step_ms,
                                "share_min_tokens": self.settings.share_min_tokens}
        if self.kv_dir is not None:
            opts.update(kv_dir=str(self.kv_dir), kv_cap_bytes=self.settings.kv_cache_mb * 2**20,
                        kv_min_tokens=self.settings.kv_cache_min_tokens)
        return opts

    def _describe(self, slot: ModelSlot) -> LoadedModel:
        r = slot.runner
        info = r.info if r else None
        return LoadedModel(
            model_id=slot.spec.model_id, pid=r.pid if r else None,
            n_parallel=info.n_parallel if info else slot.spec.n_parallel,
            ctx_len=info.n_ctx_seq if info else slot.spec.ctx_len,
            busy=slot.active, queued=slot.waiting,
            last_used=time.time() - (time.monotonic() - slot.last_used),
        )

    async def _emit(self, topic: str, data: dict) -> None:
        if self.events is None:
            return
        try:
            await self.events.emit(topic, data)
        except Exception:  # an event handler's failure must not fail inference
            self.log.exception("emitting %s failed", topic)
