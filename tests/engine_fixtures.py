"""Helpers for the engine tests: an EngineManager over the real SmolLM2 model."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from jan.host.engine import EngineManager, create_service
from jan.sdk.inference import ChatMessage, Delta, Done, GenerationRequest, LoadSpec

STORY = "Write a long story about a dragon who learns to paint."


class RecordingBus:
    """A real (minimal) event bus that remembers what was emitted."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, Any]] = []

    def on(self, pattern: str, handler: Any) -> Any:  # pragma: no cover - unused here
        raise NotImplementedError

    async def emit(self, topic: str, data: Any = None) -> None:
        self.seen.append((topic, data))

    async def request(self, topic: str, data: Any = None, *, timeout: float = 30.0) -> Any:
        return None  # pragma: no cover


def spec_for(path: Path, **kw: Any) -> LoadSpec:
    kw.setdefault("ctx_len", 1024)
    return LoadSpec(model_id=kw.pop("model_id", "smollm2"), path=str(path), **kw)


def chat(text: str, *, system: str | None = None, **kw: Any) -> GenerationRequest:
    msgs = [ChatMessage(role="system", content=system)] if system else []
    msgs.append(ChatMessage(role="user", content=text))
    kw.setdefault("temperature", 0.0)
    return GenerationRequest(messages=msgs, **kw)


async def collect(engine: EngineManager, spec: LoadSpec, req: GenerationRequest
                  ) -> tuple[str, Done]:
    parts: list[str] = []
    done: Done | None = None
    async for ev in engine.generate(spec, req):
        if isinstance(ev, Delta):
            parts.append(ev.text)
        else:
            done = ev
    assert done is not None
    return "".join(parts), done


@contextlib.asynccontextmanager
async def engine_for(settings: dict[str, Any] | None = None, events: Any = None
                     ) -> AsyncIterator[EngineManager]:
    engine = create_service(settings=settings or {}, events=events)
    try:
        yield engine
    finally:
        await engine.close()
