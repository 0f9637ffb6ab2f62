"""The one mapping layer between Jan's file shapes and OpenAI's API shapes.

Files keep Jan's fields (milliseconds, ``created``/``updated``); the API speaks OpenAI
(seconds, ``created_at``). Nothing else in the code base knows both.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from .errors import InvalidRequest
from .models import (
    Assistant,
    ContentPart,
    Message,
    ModelFile,
    Page,
    TextValue,
    Thread,
)


def ms_to_s(ms: int | None) -> int:
    return int((ms or 0) // 1000)


def s_to_ms(s: int | None) -> int:
    return int((s or 0) * 1000)


def model_to_api(model: ModelFile, *, downloaded: bool | None = None) -> dict[str, Any]:
    """``/v1/models`` object: OpenAI's four fields first, Jan's useful extras after."""
    out: dict[str, Any] = {
        "id": model.id,
        "object": "model",
        "created": int(model.created or 0),
        "owned_by": model.owned_by or "you",
        "name": model.name or model.id,
        "engine": model.engine,
        "format": model.format,
        "description": model.description,
        "settings": model.settings.model_dump(exclude_none=True),
        "parameters": model.parameters.model_dump(exclude_none=True),
        "metadata": model.metadata,
    }
    if downloaded is not None:
        out["downloaded"] = downloaded
    return out


# --------------------------------------------------------------------------- shared helpers
def ts_to_s(value: int | float | None) -> int:
    """Jan wrote milliseconds (and sometimes seconds): anything past 1e11 is read as ms."""
    if not value:
        return 0
    return int(value // 1000) if value > 100_000_000_000 else int(value)


def metadata_to_api(metadata: dict[str, Any] | None) -> dict[str, str]:
    """OpenAI metadata is ``{str: str}``; files may hold other JSON values, sent as JSON text."""
    out: dict[str, str] = {}
    for key, value in (metadata or {}).items():
        out[str(key)] = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return out


def check_metadata(value: Any) -> dict[str, str] | None:
    """Validate request metadata like OpenAI: at most 16 keys, keys <= 64, string values <= 512."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ValueError("must be an object of string keys and string values")
    if len(value) > 16:
        raise ValueError("must have at most 16 keys")
    for key, item in value.items():
        if not isinstance(key, str) or len(key) > 64:
            raise ValueError("keys must be strings of at most 64 characters")
        if not isinstance(item, str) or len(item) > 512:
            raise ValueError(f"value of {key!r} must be a string of at most 512 characters")
    return value


def page_to_api(page: Page[Any], to_api: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
    """OpenAI's cursor page: ``{object:"list", data, first_id, last_id, has_more}``."""
    data = [to_api(item) for item in page.data]
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": page.has_more,
    }


def deleted_to_api(object_id: str, kind: str) -> dict[str, Any]:
    """``{id, object: "<kind>.deleted", deleted: true}`` (kind: thread, thread.message, ...)."""
    return {"id": object_id, "object": f"{kind}.deleted", "deleted": True}


def cursor_window(
    count: int, position: Callable[[str], int | None], *, limit: int, order: str,
    after: str | None = None, before: str | None = None,
) -> tuple[list[int], bool]:
    """The positions (in ascending storage order) of one page, in the requested order.

    ``position(id)`` maps a cursor id to its ascending position (``None``: unknown, a 400).
    ``after`` continues past the cursor in the listing order, ``before`` returns the page that
    ends right before it; ``has_more`` says whether more items lie further in that direction.
    """
    seq = range(count) if order == "asc" else range(count - 1, -1, -1)
    start, end = 0, count  # indexes into ``seq``
    for name, cursor in (("after", after), ("before", before)):
        if cursor is None:
            continue
        pos = position(cursor)
        if pos is None:
            raise InvalidRequest(f"Invalid '{name}': no object with id {cursor!r}", param=name)
        idx = pos if order == "asc" else count - 1 - pos
        if name == "after":
            start = max(start, idx + 1)
        else:
            end = min(end, idx)
    if end <= start:
        return [], False
    if before is not None and after is None:
        chosen = seq[max(start, end - limit):end]
        return list(chosen), end - start > limit
    return list(seq[start:min(end, start + limit)]), end - start > limit


# --------------------------------------------------------------------------- threads
_STATUS_TO_API = {
    "ready": "completed", "completed": "completed",
    "pending": "in_progress", "in_progress": "in_progress",
    "error": "incomplete", "stopped": "incomplete", "incomplete": "incomplete",
}
_INCOMPLETE_REASON = {"error": "run_failed", "stopped": "run_cancelled"}
_ATTACHMENT_TOOLS = {"code_interpreter": "code_interpreter", "file_search": "file_search",
                     "retrieval": "file_search"}


def thread_to_api(thread: Thread) -> dict[str, Any]:
    """OpenAI's thread, plus Jan's ``title``, ``assistants`` and ``updated_at`` as extra keys."""
    extra = thread.model_extra or {}
    return {
        "id": thread.id,
        "object": "thread",
        "created_at": ts_to_s(thread.created),
        "metadata": metadata_to_api(thread.metadata),
        "tool_resources": extra.get("tool_resources") if isinstance(
            extra.get("tool_resources"), dict) else None,
        "title": thread.title,
        "assistants": [a.model_dump(mode="json") for a in thread.assistants],
        "updated_at": ts_to_s(thread.updated),
    }


def _content_to_api(part: ContentPart) -> dict[str, Any] | None:
    if part.type == "text":
        text = part.text or TextValue()
        notes = [a for a in text.annotations if isinstance(a, dict)
                 and a.get("type") in ("file_citation", "file_path")]
        return {"type": "text", "text": {"value": text.value, "annotations": notes}}
    extra = part.model_extra or {}
    if part.type in ("image_url", "image_file") and isinstance(extra.get(part.type), dict):
        return {"type": part.type, part.type: extra[part.type]}
    return None  # a content kind OpenAI clients cannot parse: the file keeps it


def _attachments_to_api(value: Any) -> list[dict[str, Any]]:
    out = []
    for item in value if isinstance(value, list) else []:
        if not isinstance(item, dict):
            continue
        tools = [{"type": _ATTACHMENT_TOOLS[t["type"]]} for t in item.get("tools") or []
                 if isinstance(t, dict) and t.get("type") in _ATTACHMENT_TOOLS]
        file_id = item.get("file_id")
        out.append({"file_id": file_id if isinstance(file_id, str) else None, "tools": tools})
    return out


def message_to_api(message: Message) -> dict[str, Any]:
    """OpenAI's ``thread.message``; Jan's ``ready|pending|error|stopped`` map onto its statuses."""
    extra = message.model_extra or {}
    status = _STATUS_TO_API.get(message.status, "completed")
    done_at = ts_to_s(message.updated or message.created)
    details = extra.get("incomplete_details")
    if status == "incomplete" and not isinstance(details, dict):
        details = {"reason": _INCOMPLETE_REASON.get(message.status, "run_failed")}
    out: dict[str, Any] = {
        "id": message.id,
        "object": "thread.message",
        "created_at": ts_to_s(message.created),
        "thread_id": message.thread_id,
        "role": message.role if message.role in ("user", "assistant") else "assistant",
        "content": [c for c in map(_content_to_api, message.content) if c is not None],
        "assistant_id": message.assistant_id,
        "run_id": message.run_id,
        "attachments": _attachments_to_api(extra.get("attachments")),
        "metadata": metadata_to_api(message.metadata),
        "status": status,
        "completed_at": done_at if status == "completed" else None,
        "incomplete_at": done_at if status == "incomplete" else None,
        "incomplete_details": details if status == "incomplete" else None,
    }
    if message.role not in ("user", "assistant"):
        out["jan_role"] = message.role  # OpenAI has no system messages in threads
    return out


# --------------------------------------------------------------------------- assistants
def _tools_to_api(tools: list[Any]) -> list[dict[str, Any]]:
    """Keep the tools OpenAI clients understand (Jan's ``retrieval`` settings stay in the file)."""
    out = []
    for tool in tools:
        if not isinstance(tool, dict):
            continue
        if tool.get("type") in ("code_interpreter", "file_search"):
            out.append(tool)
        elif tool.get("type") == "function" and isinstance(tool.get("function"), dict) \
                and isinstance(tool["function"].get("name"), str):
            out.append(tool)
    return out


def assistant_to_api(assistant: Assistant, *, created_at: int | None = None) -> dict[str, Any]:
    """OpenAI's assistant; ``created_at`` falls back to the caller's (e.g. the file's mtime)."""
    extra = assistant.model_extra or {}
    out: dict[str, Any] = {
        "id": assistant.id,
        "object": "assistant",
        "created_at": ts_to_s(assistant.created_at) or int(created_at or 0),
        "name": assistant.name,
        "description": assistant.description,
        "model": assistant.model or "*",
        "instructions": assistant.instructions,
        "tools": _tools_to_api(assistant.tools),
        "metadata": metadata_to_api(assistant.metadata),
        "avatar": assistant.avatar,
    }
    for key in ("temperature", "top_p"):
        if isinstance(extra.get(key), int | float):
            out[key] = extra[key]
    for key in ("tool_resources", "response_format"):
        if isinstance(extra.get(key), dict) or extra.get(key) == "auto":
            out[key] = extra[key]
    # Server-side tools (MCP servers, extension tools; run by the server after approval) are
    # not OpenAI tool types: shown apart, and only when there are some, so clients can tell.
    server_tools = [t for t in assistant.tools
                    if isinstance(t, dict) and t.get("type") in ("mcp", "server")]
    if server_tools:
        out["jan_server_tools"] = server_tools
    return out
