"""The request half of the mapping layer: OpenAI request bodies in, Jan file objects out.

``jan.sdk.openai_shapes`` maps file objects to API objects; this module validates what clients
send (unknown fields ignored, known ones checked, 400s naming the field) and builds the file
objects the stores keep.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from .models import (
    Assistant,
    ContentPart,
    Message,
    TextValue,
    Thread,
    ThreadAssistant,
    now_ms,
)
from .openai_shapes import check_metadata

Metadata = Annotated[dict[str, str] | None, BeforeValidator(check_metadata)]


class _Request(BaseModel):
    # Unknown fields are ignored (clients send extras such as Jan's), known ones are checked.
    model_config = ConfigDict(extra="ignore")


class ContentInput(_Request):
    type: Literal["text", "image_url", "image_file"] = "text"
    text: str | TextValue | None = None
    image_url: dict[str, Any] | None = None
    image_file: dict[str, Any] | None = None


class AttachmentInput(_Request):
    file_id: str | None = None
    tools: list[dict[str, Any]] = Field(default_factory=list)


class MessageCreateRequest(_Request):
    role: Literal["user", "assistant"]
    content: str | list[ContentInput]
    attachments: list[AttachmentInput] | None = None
    metadata: Metadata = None


class MessageModifyRequest(_Request):
    metadata: Metadata = None


class ThreadCreateRequest(_Request):
    messages: list[MessageCreateRequest] | None = Field(default=None, max_length=32)
    metadata: Metadata = None
    tool_resources: dict[str, Any] | None = None
    title: str | None = None
    assistants: list[ThreadAssistant] | None = None


class ThreadModifyRequest(_Request):
    metadata: Metadata = None
    tool_resources: dict[str, Any] | None = None
    title: str | None = None
    assistants: list[ThreadAssistant] | None = None


class ToolInput(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: Literal["code_interpreter", "file_search", "function", "retrieval"]


class AssistantModifyRequest(_Request):
    model: str | None = None
    name: str | None = Field(default=None, max_length=256)
    description: str | None = Field(default=None, max_length=512)
    instructions: str | None = Field(default=None, max_length=256_000)
    tools: list[ToolInput] | None = Field(default=None, max_length=128)
    metadata: Metadata = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    response_format: Any = None
    tool_resources: dict[str, Any] | None = None
    avatar: str | None = None


class AssistantCreateRequest(AssistantModifyRequest):
    id: str | None = None  # Jan: the assistant's folder name (default: a new ``asst_`` id)
    model: str = "*"


def _content_to_file(content: str | list[ContentInput]) -> list[ContentPart]:
    if isinstance(content, str):
        return [ContentPart(type="text", text=TextValue(value=content))]
    parts = []
    for item in content:
        if item.type == "text":
            text = item.text if isinstance(item.text, TextValue) else TextValue(
                value=item.text or "")
            parts.append(ContentPart(type="text", text=text))
        else:
            parts.append(ContentPart(type=item.type, **{item.type: getattr(item, item.type)}))
    return parts


def message_from_request(
    thread_id: str, request: MessageCreateRequest, **fields: Any,
) -> Message:
    """The ``messages.jsonl`` record for a created message (Jan's fields, ``status: ready``)."""
    attachments = [a.model_dump(mode="json") for a in request.attachments or []]
    return Message(
        thread_id=thread_id, role=request.role, content=_content_to_file(request.content),
        metadata=request.metadata or {}, attachments=attachments, **fields,
    )


def message_changes(request: MessageModifyRequest) -> dict[str, Any]:
    return {"metadata": request.metadata} if request.metadata is not None else {}


def thread_from_request(thread_id: str, request: ThreadCreateRequest | None) -> Thread:
    """The ``thread.json`` for a created thread (its ``messages`` are created separately)."""
    request = request or ThreadCreateRequest()
    extra = {"tool_resources": request.tool_resources} if request.tool_resources else {}
    return Thread(
        id=thread_id, title=request.title or "", assistants=request.assistants or [],
        metadata=request.metadata or {}, **extra,
    )


def thread_changes(request: ThreadModifyRequest) -> dict[str, Any]:
    changes = request.model_dump(mode="json", exclude_unset=True)
    return {k: v for k, v in changes.items() if v is not None or k == "tool_resources"}


def assistant_from_request(assistant_id: str, request: AssistantCreateRequest) -> Assistant:
    """The ``assistant.json`` for a created assistant (``created_at`` in seconds, like Jan)."""
    fields = request.model_dump(mode="json", exclude_none=True, exclude={"id"})
    fields.setdefault("name", None)
    return Assistant(id=assistant_id, created_at=now_ms() // 1000, **fields)


def assistant_changes(request: AssistantModifyRequest) -> dict[str, Any]:
    return request.model_dump(mode="json", exclude_unset=True)
