"""``ctx``: what the host hands one extension, and the disposables it owns."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from jan.sdk.extension import Disposable, Handler
from jan.sdk.storage import Folder

from .events import EventBus
from .models_api import ModelCalls
from .services import ScopedServices, ServiceRegistry

log = logging.getLogger("jan.host.context")


class ScopedEvents:
    """The bus as one extension sees it: its subscriptions are its disposables."""

    def __init__(self, bus: EventBus, owner: str, own: Callable[[Disposable], Disposable]):
        self._bus, self._owner, self._own = bus, owner, own

    def on(self, pattern: str, handler: Handler) -> Disposable:
        return self._own(self._bus.on(pattern, handler, owner=self._owner))

    async def emit(self, topic: str, data: Any = None) -> None:
        await self._bus.emit(topic, data)

    async def request(self, topic: str, data: Any = None, *, timeout: float = 30.0) -> Any:
        return await self._bus.request(topic, data, timeout=timeout)


class ExtensionContext:
    """Implements ``jan.sdk.Context`` for one extension generation."""

    def __init__(
        self, *, extension_id: str, settings: dict[str, Any], host_settings: dict[str, Any],
        data: Folder, bus: EventBus, services: ServiceRegistry,
        exports: Callable[[str], Any], collect: Callable[[str], list[Any]],
    ) -> None:
        self.id = extension_id
        self.settings = settings
        self.host_settings = host_settings
        self.log = logging.getLogger(f"jan.ext.{extension_id}")
        self.data = data
        self.storage = data.sub("storage", extension_id)
        self.events = ScopedEvents(bus, extension_id, self.add)
        self.services = ScopedServices(services, extension_id, self.add)
        self.models = ModelCalls(self.services)
        self._exports = exports
        self.collect = collect
        self._disposables: list[Disposable] = []
        self._tasks: set[asyncio.Task[Any]] = set()

    def exports(self, extension_id: str) -> Any:
        return self._exports(extension_id)

    def add(self, disposable: Disposable) -> Disposable:
        self._disposables.append(disposable)
        return disposable

    def on_dispose(self, fn: Callable[[], Any]) -> Disposable:
        return self.add(Disposable(fn))

    def spawn(self, coro: Coroutine[Any, Any, Any], *, name: str | None = None) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro, name=name or f"{self.id}:task")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    @property
    def owned(self) -> int:
        return len([d for d in self._disposables if not d.disposed]) + len(self._tasks)

    async def dispose_all(self) -> None:
        """Release everything, newest first; one failing disposable never stops the rest."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)
        while self._disposables:
            disposable = self._disposables.pop()
            try:
                disposable.dispose()
            except Exception:
                log.exception("disposing a resource of %s failed", self.id)
