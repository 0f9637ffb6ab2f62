"""Conversation items: validated from requests, turned into chat turns, kept as thread messages.

Three shapes of the same thing:
- API items (OpenAI's ``message``, ``function_call``, ``function_call_output``), plain dicts;
- ``ChatMessage`` turns for the ``inference`` service;
- ``messages.jsonl`` records. A text message is an ordinary Jan message, so the thread shows it;
  any other item is a message with no content parts, ``metadata.jan_item_type`` naming it and the
  item itself in the extra field ``jan_item``. Jan's readers show text parts only, so they skip
  these safely, and both message stores keep extra fields as they are.
"""

from __future__ import annotations

from typing import Any

from jan.sdk.errors import InvalidRequest
from jan.sdk.inference import ChatMessage, ToolCall
from jan.sdk.models import ContentPart, Message, TextValue, new_id

ROLES = {"user": "user", "system": "system", "developer": "system", "assistant": "assistant"}
NOT_TEXT = ("input_image", "input_file", "input_audio", "image_url", "file")
ITEM_KEY = "jan_item"
MAX_TEXT = 1_000_000
# Output items a later response of the chain sees (the others, like file_search_call, are not
# part of what the model said).
KEPT = ("message", "function_call", "function_call_output", "mcp_call", "mcp_list_tools",
        "mcp_approval_request")
# Items the model (or the server for it) produced: kept in threads as assistant messages.
SAID = ("function_call", "mcp_call", "mcp_list_tools", "mcp_approval_request",
        "file_search_call")


def _bad(where: str, message: str) -> InvalidRequest:
    return InvalidRequest(f"Invalid '{where}': {message}", param=where)


def _text_of(content: Any, where: str, role: str) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise _bad(where, "expected a string or a list of content parts")
    texts = []
    for j, part in enumerate(content):
        here = f"{where}[{j}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in NOT_TEXT:
            raise InvalidRequest(
                f"Invalid '{here}': this model accepts text only; '{kind}' content is not "
                "supported", param=here, code="unsupported_content")
        if kind not in ("input_text", "output_text", "text", "refusal"):
            raise _bad(f"{here}.type", f"unknown content part type {kind!r}")
        value = part.get("refusal" if kind == "refusal" else "text")
        if not isinstance(value, str):
            raise _bad(f"{here}.text", "expected a string")
        texts.append(value)
    return "".join(texts)


def message_item(role: str, text: str, *, item_id: str | None = None) -> dict[str, Any]:
    """An API ``message`` item (assistant text is ``output_text``, everything else input)."""
    kind = "output_text" if role == "assistant" else "input_text"
    part: dict[str, Any] = {"type": kind, "text": text}
    if kind == "output_text":
        part.update(annotations=[], logprobs=[])
    return {"id": item_id or new_id("msg"), "type": "message", "role": role,
            "status": "completed", "content": [part]}


def _str_field(item: dict[str, Any], key: str, where: str) -> str:
    value = item.get(key)
    if not isinstance(value, str) or not value and key != "arguments":
        raise InvalidRequest(f"Missing or invalid '{where}.{key}': expected a string",
                             param=f"{where}.{key}")
    return value


def normalize(raw: Any, where: str = "input") -> list[dict[str, Any]]:
    """Request input (a string or a list of items) as API items with ids.

    Every item gets a new id: clients resend earlier items with the ids we gave them (the
    Agents SDK does), and a conversation must never hold two items with one id.
    """
    if isinstance(raw, str):
        return [message_item("user", raw)] if raw else []
    out = []
    for i, item in enumerate(raw):
        here = f"{where}[{i}]"
        if not isinstance(item, dict):
            raise _bad(here, "expected an object")
        kind = item.get("type", "message" if "role" in item else None)
        if kind == "message":
            role = item.get("role")
            if role not in ROLES:
                raise _bad(f"{here}.role", f"expected user, system, developer or assistant; "
                           f"got {role!r}")
            if "content" not in item:
                raise InvalidRequest(f"Missing required parameter: '{here}.content'",
                                     param=f"{here}.content")
            text = _text_of(item["content"], f"{here}.content", role)
            out.append(message_item(role, text))
        elif kind == "function_call":
            out.append({"id": new_id("fc"), "type": "function_call",
                        "call_id": _str_field(item, "call_id", here),
                        "name": _str_field(item, "name", here),
                        "arguments": _str_field(item, "arguments", here),
                        "status": "completed"})
        elif kind == "function_call_output":
            output = item.get("output")
            if isinstance(output, list):
                output = _text_of(output, f"{here}.output", "tool")
            if not isinstance(output, str):
                raise _bad(f"{here}.output", "expected a string")
            out.append({"id": new_id("fco"), "type": "function_call_output",
                        "call_id": _str_field(item, "call_id", here), "output": output,
                        "status": "completed"})
        elif kind == "mcp_approval_response":
            approve = item.get("approve")
            if not isinstance(approve, bool):
                raise _bad(f"{here}.approve", "expected true or false")
            reason = item.get("reason")
            out.append({"id": new_id("mcpa"), "type": "mcp_approval_response",
                        "approval_request_id": _str_field(item, "approval_request_id", here),
                        "approve": approve, "reason": reason if isinstance(reason, str) else None})
        elif kind == "item_reference":
            out.append({"type": "item_reference", "id": _str_field(item, "id", here)})
        else:
            raise InvalidRequest(f"Invalid '{here}.type': unsupported item type {kind!r}",
                                 param=f"{here}.type", code="unsupported_parameter")
    return out


def resolve(items: list[dict[str, Any]], known: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Replace ``item_reference`` items by the items they name (from the history)."""
    out = []
    for i, item in enumerate(items):
        if item["type"] == "item_reference":
            found = known.get(item["id"])
            if found is None:
                raise InvalidRequest(f"Invalid 'input[{i}].id': no item with id "
                                     f"{item['id']!r} in this response's history",
                                     param=f"input[{i}].id")
            item = found
        out.append(item)
    return out


def item_text(item: dict[str, Any]) -> str:
    return "".join(p.get("text") or p.get("refusal") or "" for p in item.get("content") or []
                   if isinstance(p, dict))


def to_chat(items: list[dict[str, Any]], instructions: str | None) -> list[ChatMessage]:
    """Items as chat turns; consecutive function calls become one assistant turn."""
    out = [ChatMessage(role="system", content=instructions)] if instructions else []
    for item in items:
        kind = item.get("type")
        if kind == "message":
            out.append(ChatMessage(role=ROLES.get(item.get("role"), "user"),
                                   content=item_text(item)))
        elif kind == "function_call":
            call = ToolCall(id=item["call_id"], name=item["name"], arguments=item["arguments"])
            last = out[-1] if out else None
            if last is not None and last.role == "assistant" and last.tool_calls:
                last.tool_calls.append(call)
            else:
                out.append(ChatMessage(role="assistant", content=None, tool_calls=[call]))
        elif kind == "function_call_output":
            out.append(ChatMessage(role="tool", content=item["output"],
                                   tool_call_id=item["call_id"]))
        elif kind == "mcp_call":  # the call the server ran, and what the model got back
            call = ToolCall(id=item["id"], name=f"{item['server_label']}__{item['name']}",
                            arguments=item.get("arguments") or "{}")
            out.append(ChatMessage(role="assistant", content=None, tool_calls=[call]))
            out.append(ChatMessage(role="tool", content=call_output(item), tool_call_id=item["id"]))
    return out


def call_output(item: dict[str, Any]) -> str:
    """What the model is shown for an ``mcp_call``: its output, or its error as text."""
    if item.get("output") is not None:
        return str(item["output"])
    error = item.get("error")
    content = error.get("content") if isinstance(error, dict) else error
    return f"Error: {content}" if content else "Error: the tool call failed"


# --------------------------------------------------------------------------- thread records
def to_message(thread_id: str, item: dict[str, Any], **fields: Any) -> Message:
    """The ``messages.jsonl`` record that keeps ``item`` in thread ``thread_id``."""
    if item["type"] == "message":
        role = ROLES[item["role"]]
        part = ContentPart(type="text", text=TextValue(value=item_text(item)))
        meta = {"jan_role": item["role"]} if item["role"] != role else {}
        return Message(id=item["id"], thread_id=thread_id, role=role, content=[part],
                       metadata=meta, **fields)
    role = "assistant" if item["type"] in SAID else "user"
    return Message(id=item["id"], thread_id=thread_id, role=role, content=[],
                   metadata={"jan_item_type": item["type"]}, **{ITEM_KEY: item}, **fields)


def from_message(message: Message) -> dict[str, Any]:
    """A thread message as a conversation item (Jan's own messages become message items)."""
    stored = (message.model_extra or {}).get(ITEM_KEY)
    if isinstance(stored, dict) and stored.get("type"):
        return {**stored, "id": message.id}
    role = message.metadata.get("jan_role") or message.role
    item = message_item(role if role in ROLES else "user", message.text, item_id=message.id)
    if message.status not in ("ready", "completed"):
        item["status"] = "incomplete" if message.status in ("error", "stopped") else "in_progress"
    return item
