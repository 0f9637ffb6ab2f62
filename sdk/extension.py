"""What an extension is, and what the host gives it (``ctx``).

An extension is a folder with an ``extension.toml`` manifest whose ``main`` names a class
(``"module:Class"``). The host instantiates it, calls ``activate(ctx)`` when one of its
activation events fires, calls its ``register_*`` hooks, and later ``deactivate()``.
Everything registered through ``ctx`` is a ``Disposable`` owned by the extension and is
released on unload, so a reload never leaves stale routes, handlers, services or tasks.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar, overload, runtime_checkable

from .storage import Folder

if TYPE_CHECKING:  # the interfaces, for typed ``ctx.services.get("threads")`` and friends
    from .sandbox import SandboxService
    from .services import (
        AssistantStore,
        InferenceEngine,
        MessageStore,
        ModelRegistry,
        ThreadStore,
    )

T = TypeVar("T")
Handler = Callable[[str, Any], Any | Awaitable[Any]]


class Disposable:
    """Something that can be taken back exactly once."""

    def __init__(self, dispose: Callable[[], None]) -> None:
        self._dispose: Callable[[], None] | None = dispose

    def dispose(self) -> None:
        fn, self._dispose = self._dispose, None
        if fn is not None:
            fn()

    @property
    def disposed(self) -> bool:
        return self._dispose is None


@runtime_checkable
class EventBus(Protocol):
    def on(self, pattern: str, handler: Handler) -> Disposable:
        """Call ``handler(topic, data)`` for every event whose topic matches ``pattern``."""
    async def emit(self, topic: str, data: Any = None) -> None:
        """Deliver to every matching handler; returns once all were scheduled."""
    async def request(self, topic: str, data: Any = None, *, timeout: float = 30.0) -> Any:
        """Deliver and await the first handler result that is not ``None``."""


@runtime_checkable
class Services(Protocol):
    def provide(self, name: str, impl: Any) -> Disposable: ...
    # Each core service name gives its interface type (names: jan.sdk.services.THREADS...).
    @overload
    def get(self, name: Literal["threads"], *, provider: str | None = None) -> ThreadStore: ...
    @overload
    def get(self, name: Literal["messages"], *, provider: str | None = None
            ) -> MessageStore: ...
    @overload
    def get(self, name: Literal["assistants"], *, provider: str | None = None
            ) -> AssistantStore: ...
    @overload
    def get(self, name: Literal["models"], *, provider: str | None = None
            ) -> ModelRegistry: ...
    @overload
    def get(self, name: Literal["inference"], *, provider: str | None = None
            ) -> InferenceEngine: ...
    @overload
    def get(self, name: Literal["sandbox"], *, provider: str | None = None
            ) -> SandboxService: ...
    @overload
    def get(self, name: str, *, provider: str | None = None) -> Any: ...
    def get(self, name: str, *, provider: str | None = None) -> Any:
        """The chosen (or the named) provider's implementation; ``Unavailable`` if none."""
    def providers(self, name: str) -> list[str]: ...


@runtime_checkable
class Models(Protocol):
    async def chat(self, messages: Any, model: str | None = None, *, stream: bool = False,
                   **params: Any) -> Any:
        """Call a model in one line. ``messages`` is a prompt string or a list of
        ``{"role", "content"}`` dicts; ``model`` defaults to the default model; ``params`` are
        generation parameters (``max_tokens``, ``temperature``, ``stop``...) over the model's
        ``model.json`` defaults. Returns the reply's text, or with ``stream=True`` an async
        iterator of text pieces. Errors are ``jan.sdk`` ``ApiError``s (e.g. ``NotFound``)."""


@runtime_checkable
class Context(Protocol):
    """What ``activate(ctx)`` receives."""

    id: str
    settings: dict[str, Any]
    """This extension's settings: manifest defaults overlaid by ``settings.json``."""
    log: logging.Logger
    storage: Folder
    """A folder of the extension's own inside the data folder."""
    data: Folder
    """The whole data folder (confined: no path can escape it)."""
    events: EventBus
    services: Services
    models: Models
    """``await ctx.models.chat("Hi", model=...)``: a model reply without any HTTP."""
    host_settings: dict[str, Any]
    """The parsed ``settings.json`` (read-only view)."""

    def exports(self, extension_id: str) -> Any:
        """What another (active) extension's ``activate`` returned."""
    def collect(self, hook: str) -> list[Any]:
        """Call hook ``hook`` (e.g. ``"register_model_catalog"``) of every active extension and
        return everything they registered, in activation order."""
    def add(self, disposable: Disposable) -> Disposable:
        """Own ``disposable``: it is disposed when this extension is unloaded."""
    def on_dispose(self, fn: Callable[[], Any]) -> Disposable: ...
    def spawn(self, coro: Coroutine[Any, Any, T], *, name: str | None = None) -> Any:
        """Run a background task owned by this extension (cancelled on unload)."""


class Extension:
    """Base class for extensions. Override what you need; all methods are optional."""

    ctx: Context

    def activate(self, ctx: Context) -> Any:
        """Set up; return an exports object other extensions may use via ``ctx.exports``."""
        self.ctx = ctx
        return None

    def deactivate(self) -> Any:
        """Release anything not registered through ``ctx`` (may be async)."""
        return None
