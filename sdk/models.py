"""Pydantic models for the files in the data folder, in Jan's open formats.

These are the *file* shapes (milliseconds, Jan's field names). Unknown fields are kept
(``extra="allow"``) so a data folder written by Jan, or edited by hand, round-trips unchanged.
API shapes live in ``jan.sdk.openai_shapes``, the one layer that knows both.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from typing import Any, Generic, Literal, TypeVar

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, model_validator
from ulid import ULID


def now_ms() -> int:
    return int(time.time() * 1000)


def new_id(prefix: str = "") -> str:
    """A new time-sortable id: a ULID, optionally prefixed (``thread_01J...``)."""
    value = str(ULID())
    return f"{prefix}_{value}" if prefix else value


def apply_changes(doc: dict[str, Any], changes: dict[str, Any], *, frozen: Collection[str],
                  bump: str | None = "updated") -> dict[str, Any]:
    """The update rule every store follows (files, PostgreSQL, anything else).

    A shallow merge of ``changes`` into ``doc``: ``metadata`` merges key by key and a ``None``
    value removes its key; ``frozen`` keys never change; ``bump`` (``updated``) becomes now.
    """
    out = dict(doc)
    for key, value in changes.items():
        if key in frozen:
            continue
        if key == "metadata":
            merged = {**(out.get("metadata") or {}), **(value or {})}
            out["metadata"] = {k: v for k, v in merged.items() if v is not None}
        else:
            out[key] = value
    if bump:
        out[bump] = now_ms()
    return out


class FileModel(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    def to_file(self) -> dict[str, Any]:
        """The JSON written to disk: Jan's field names, unknown fields kept."""
        return self.model_dump(mode="json", by_alias=False, exclude_none=False)


# --------------------------------------------------------------------------- models
class ModelSource(FileModel):
    filename: str | None = None
    url: str | None = None
    sha256: str | None = None
    size: int | None = None


class ModelSettings(FileModel):
    """Load-time settings (Jan's ``settings``, seed alias ``engine_parameters``)."""

    ctx_len: int | None = None
    ngl: int | None = None
    n_parallel: int | None = None
    cpu_threads: int | None = None
    embedding: bool | None = None
    prompt_template: str | None = None
    llama_model_path: str | None = None


class ModelParameters(FileModel):
    """Per-request defaults (Jan's ``parameters``, seed alias ``model_parameters``)."""

    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    min_p: float | None = None
    max_tokens: int | None = None
    stop: list[str] | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    stream: bool | None = None


class ModelFile(FileModel):
    """``models/<id>/model.json``."""

    id: str
    object: str = "model"
    name: str | None = None
    version: str = "1"
    format: str = "gguf"
    engine: str = "llama-cpp"
    owned_by: str = "you"
    created: int | None = None
    description: str | None = None
    sources: list[ModelSource] = Field(default_factory=list)
    settings: ModelSettings = Field(
        default_factory=ModelSettings,
        validation_alias=AliasChoices("settings", "engine_parameters"),
    )
    parameters: ModelParameters = Field(
        default_factory=ModelParameters,
        validation_alias=AliasChoices("parameters", "model_parameters"),
    )
    metadata: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _legacy_source_url(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("source_url") and not data.get("sources"):
            url = data["source_url"]
            data = {**data, "sources": [{"url": url, "filename": url.rsplit("/", 1)[-1]}]}
        if isinstance(data, dict) and isinstance(data.get("version"), int):
            data = {**data, "version": str(data["version"])}
        return data


# --------------------------------------------------------------------------- threads
class TextValue(FileModel):
    value: str = ""
    annotations: list[Any] = Field(default_factory=list)


class ContentPart(FileModel):
    type: str = "text"
    text: TextValue | None = None


class ThreadModelRef(FileModel):
    id: str = "*"
    settings: dict[str, Any] = Field(default_factory=dict)
    parameters: dict[str, Any] = Field(default_factory=dict)
    engine: str | None = None


class ThreadAssistant(FileModel):
    assistant_id: str
    assistant_name: str | None = None
    model: ThreadModelRef = Field(default_factory=ThreadModelRef)
    instructions: str | None = None


class Thread(FileModel):
    """``threads/<id>/thread.json``."""

    id: str
    object: Literal["thread"] = "thread"
    title: str = ""
    assistants: list[ThreadAssistant] = Field(default_factory=list)
    created: int = Field(default_factory=now_ms)
    updated: int = Field(default_factory=now_ms)
    metadata: dict[str, Any] = Field(default_factory=dict)


class Message(FileModel):
    """One line of ``threads/<id>/messages.jsonl``."""

    id: str = Field(default_factory=new_id)
    object: Literal["thread.message"] = "thread.message"
    thread_id: str
    assistant_id: str | None = None
    run_id: str | None = None
    role: Literal["user", "assistant", "system"] = "user"
    content: list[ContentPart] = Field(default_factory=list)
    status: str = "ready"
    created: int = Field(default_factory=now_ms)
    updated: int = Field(default_factory=now_ms)
    metadata: dict[str, Any] = Field(default_factory=dict)

    @property
    def text(self) -> str:
        """All text parts joined: what a model sees of this message."""
        return "".join(p.text.value for p in self.content if p.type == "text" and p.text)

    @classmethod
    def of_text(cls, thread_id: str, role: str, text: str, **kw: Any) -> Message:
        part = ContentPart(type="text", text=TextValue(value=text))
        return cls(thread_id=thread_id, role=role, content=[part], **kw)


# --------------------------------------------------------------------------- assistants
class Assistant(FileModel):
    """``assistants/<id>/assistant.json``: no field is required; the store fills id and name."""

    id: str = ""
    object: Literal["assistant"] = "assistant"
    version: int | str = 1
    created_at: int | None = None
    name: str | None = None
    description: str | None = None
    avatar: str | None = None
    model: str = "*"
    models: list[Any] = Field(default_factory=list)
    instructions: str | None = None
    events: list[str] | str = "*"
    tools: list[Any] = Field(default_factory=list)
    file_ids: list[str] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a cursor-paginated listing."""

    data: list[T]
    has_more: bool = False

    @property
    def first_id(self) -> str | None:
        return getattr(self.data[0], "id", None) if self.data else None

    @property
    def last_id(self) -> str | None:
        return getattr(self.data[-1], "id", None) if self.data else None
