"""Service interfaces: the modules of Jan's architecture.

An extension *provides* one of these by name (``ctx.services.provide("threads", impl)``) and
others *require* it (``ctx.services.get("threads")``); ``settings.json`` ``modules`` picks the
provider when several exist. All methods raise ``jan.sdk.errors.ApiError`` subclasses for
anything a client should see (``NotFound`` for unknown ids, ``Unavailable`` when a backing
store is down). Stores speak file shapes (``jan.sdk.models``); routes convert with
``jan.sdk.openai_shapes``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel, Field

from .inference import (
    Delta,
    Done,
    Embeddings,
    GenerationRequest,
    LoadedModel,
    LoadSpec,
    ToolCallDelta,
    is_remote_engine,
)
from .models import Assistant, Message, ModelFile, Page, Thread

Order = Literal["asc", "desc"]
T = TypeVar("T")

THREADS = "threads"
MESSAGES = "messages"
ASSISTANTS = "assistants"
MODELS = "models"
INFERENCE = "inference"
SANDBOX = "sandbox"


async def every(list_page: Callable[..., Awaitable[Page[T]]], *args: Any,
                order: Order = "asc") -> AsyncIterator[T]:
    """Every item of a store listing, fetched page by page with ``after`` cursors.

    ``every(threads.list)``, ``every(messages.list, thread_id, order="desc")``.
    """
    after: str | None = None
    while True:
        page = await list_page(*args, limit=100, order=order, after=after)
        for item in page.data:
            yield item
        if not page.has_more or not page.data:
            return
        after = page.data[-1].id


@runtime_checkable
class ThreadStore(Protocol):
    async def create(self, thread: Thread) -> Thread: ...
    async def get(self, thread_id: str) -> Thread: ...
    async def list(
        self, *, limit: int = 20, order: Order = "desc",
        after: str | None = None, before: str | None = None,
    ) -> Page[Thread]:
        """Threads by ``created`` (ties by id); ``after``/``before`` are thread ids."""
    async def update(self, thread_id: str, changes: dict[str, Any]) -> Thread:
        """Shallow-merge ``changes`` (``metadata`` is merged key by key), bump ``updated``."""
    async def delete(self, thread_id: str) -> None:
        """Delete the thread and all of its messages."""


@runtime_checkable
class MessageStore(Protocol):
    async def create(self, message: Message) -> Message: ...
    async def get(self, thread_id: str, message_id: str) -> Message: ...
    async def list(
        self, thread_id: str, *, limit: int = 20, order: Order = "desc",
        after: str | None = None, before: str | None = None,
    ) -> Page[Message]:
        """Messages in creation order (``desc``: newest first); cursors are message ids."""
    async def update(self, thread_id: str, message_id: str, changes: dict[str, Any]) -> Message:
        ...
    async def delete(self, thread_id: str, message_id: str) -> None: ...


@runtime_checkable
class AssistantStore(Protocol):
    async def create(self, assistant: Assistant) -> Assistant: ...
    async def get(self, assistant_id: str) -> Assistant: ...
    async def list(
        self, *, limit: int = 20, order: Order = "desc",
        after: str | None = None, before: str | None = None,
    ) -> Page[Assistant]: ...
    async def update(self, assistant_id: str, changes: dict[str, Any]) -> Assistant: ...
    async def delete(self, assistant_id: str) -> None: ...
    def folder(self, assistant_id: str) -> Path:
        """The assistant's own folder (where ``index.py`` lives)."""


class ModelEntry(ModelFile):
    """A model as the registry knows it: its file, plus where its binary is (if downloaded)."""

    binary: str | None = None

    @property
    def downloaded(self) -> bool:
        """Ready to run: its GGUF is here, or it is served by a remote engine."""
        return self.binary is not None or is_remote_engine(self.engine)


@runtime_checkable
class ModelRegistry(Protocol):
    async def list(self) -> list[ModelEntry]: ...
    async def get(self, model_id: str) -> ModelEntry:
        """Raise ``NotFound`` with code ``model_not_found`` for an unknown id."""
    async def delete(self, model_id: str) -> None: ...
    def load_spec(self, entry: ModelEntry, overrides: dict[str, Any] | None = None) -> LoadSpec:
        """Merge engine defaults < model.json settings < ``overrides`` into a ``LoadSpec``."""
    async def default_model(self) -> str | None:
        """The model to use when an assistant says ``"*"``."""


@runtime_checkable
class ModelCatalog(Protocol):
    """A provider of models that have no ``model.json`` (a remote engine's discovered models):
    the ``models`` registry lists them after the folder's own, which win on an id clash."""

    def catalog(self) -> list[ModelEntry]: ...


@runtime_checkable
class InferenceEngine(Protocol):
    def generate(self, spec: LoadSpec, request: GenerationRequest
                 ) -> AsyncIterator[Delta | ToolCallDelta | Done]:
        """Stream a generation; closing the iterator cancels it."""
    async def embed(self, spec: LoadSpec, inputs: list[str]) -> Embeddings: ...
    async def load(self, spec: LoadSpec) -> LoadedModel: ...
    async def unload(self, model_id: str) -> bool: ...
    def loaded(self) -> list[LoadedModel]: ...


class HealthReport(BaseModel):
    """What a service tells ``/health`` about itself: ``details`` shown under the service's
    name, ``problems`` (one line each) that make the server report ``degraded``."""

    details: dict[str, Any] = Field(default_factory=dict)
    problems: list[str] = Field(default_factory=list)


@runtime_checkable
class ReportsHealth(Protocol):
    """Any service provider may implement this; ``/health`` asks every chosen provider that
    does. It is called on the event loop, so it must answer from memory, never block."""

    def health_report(self) -> HealthReport: ...


@runtime_checkable
class ReportsMetrics(Protocol):
    """Any service provider may implement this; ``GET /metrics`` concatenates what every chosen
    provider that does returns. Prometheus' text format (``# HELP``/``# TYPE`` lines, then
    samples); answered from memory, never blocking."""

    def metrics_text(self) -> str: ...
