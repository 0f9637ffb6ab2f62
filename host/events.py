"""The host's event bus: asyncio pub/sub with wildcard topics.

Handlers run as their own tasks (async) or in worker threads (sync), so a slow or blocking
handler never holds up the emitter or the event loop, and an exception in one handler is
logged and isolated from the others.
"""

from __future__ import annotations

import asyncio
import fnmatch
import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from jan.sdk.extension import Disposable, Handler

log = logging.getLogger("jan.host.events")


@dataclass(eq=False)
class _Subscription:
    pattern: str
    handler: Handler
    owner: str


class EventBus:
    """Implements ``jan.sdk.EventBus``; ``owner`` tags come from each extension's context."""

    def __init__(self) -> None:
        self._subs: list[_Subscription] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self.before_emit: Callable[[str], Any] | None = None
        """Called with every topic before delivery (the registry's lazy ``onEvent:`` activation)."""

    def on(self, pattern: str, handler: Handler, *, owner: str = "host") -> Disposable:
        sub = _Subscription(pattern, handler, owner)
        self._subs.append(sub)
        return Disposable(lambda: self._subs.remove(sub) if sub in self._subs else None)

    def handlers(self, owner: str | None = None) -> list[str]:
        return [s.pattern for s in self._subs if owner is None or s.owner == owner]

    def _matching(self, topic: str) -> list[_Subscription]:
        return [s for s in list(self._subs) if fnmatch.fnmatchcase(topic, s.pattern)]

    async def _call(self, sub: _Subscription, topic: str, data: Any) -> Any:
        try:
            if inspect.iscoroutinefunction(sub.handler):
                return await sub.handler(topic, data)
            result = await asyncio.to_thread(sub.handler, topic, data)
            if inspect.isawaitable(result):
                result = await result
            return result
        except Exception:
            log.exception("event handler %r of %s failed on %s", sub.pattern, sub.owner, topic)
            return None

    async def _before(self, topic: str) -> None:
        if self.before_emit is not None:
            result = self.before_emit(topic)
            if inspect.isawaitable(result):
                await result

    async def emit(self, topic: str, data: Any = None) -> None:
        await self._before(topic)
        for sub in self._matching(topic):
            task = asyncio.create_task(self._call(sub, topic, data), name=f"event:{topic}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def request(self, topic: str, data: Any = None, *, timeout: float = 30.0) -> Any:
        await self._before(topic)
        pending = {asyncio.create_task(self._call(s, topic, data)) for s in self._matching(topic)}
        try:
            async with asyncio.timeout(timeout):
                while pending:
                    done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                    for task in done:
                        if task.result() is not None:
                            return task.result()
        finally:
            for task in pending:
                task.cancel()
        return None

    async def drain(self, timeout: float = 5.0) -> None:
        """Wait for delivered events' handlers (used at shutdown and by tests)."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)
