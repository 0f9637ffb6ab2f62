"""One rule for generation settings, and one way to read a generation to its end.

Settings come in layers, lowest first: the model's ``model.json`` ``parameters`` < the
assistant's < the thread's (its entry for that assistant) < the request. For each sampling
setting the last layer that sets it wins; ``stop`` is the exception: every layer's stop strings
are kept (``merge_stops``), so a model's own end-of-turn markers are never lost. Chat
completions, assistant runs and assistant code (the sandbox relay) all go through
``generation_request``, so the same settings give the same request everywhere.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from .inference import (
    ChatMessage,
    Delta,
    Done,
    GenerationRequest,
    ToolCall,
    ToolCallDelta,
    Usage,
    merge_stops,
)
from .models import Assistant, Thread

SETTINGS_KEYS = (
    "max_tokens", "temperature", "top_p", "top_k", "min_p", "frequency_penalty",
    "presence_penalty", "repeat_penalty", "seed",
)
"""The sampling settings a layer may set (``stop`` is merged, not replaced)."""


def settings_of(values: Any) -> dict[str, Any]:
    """A layer's settings (a pydantic model or a mapping): the set, non-None ones only."""
    if values is None:
        return {}
    if hasattr(values, "model_dump"):
        values = values.model_dump(exclude_none=True)
    if not isinstance(values, dict):
        return {}
    return {k: v for k, v in values.items() if v is not None and (k in SETTINGS_KEYS or
                                                                   k == "stop")}


def assistant_settings(assistant: Assistant) -> dict[str, Any]:
    """Settings from ``assistant.json``: top-level keys, then its ``models[0].parameters``."""
    extra = dict(assistant.model_extra or {})
    layer = settings_of({k: extra[k] for k in (*SETTINGS_KEYS, "stop") if k in extra})
    for m in assistant.models:  # the seed's "models": [{...model_0}] with its parameters
        if isinstance(m, dict):
            layer.update(settings_of(m.get("parameters")))
            break
    return layer


def thread_settings(thread: Thread | None, assistant_id: str | None) -> dict[str, Any]:
    """The thread's ``assistants[]`` entry for ``assistant_id``: its ``model.parameters``."""
    if thread is None or assistant_id is None:
        return {}
    entry = next((a for a in thread.assistants if a.assistant_id == assistant_id), None)
    return settings_of(entry.model.parameters) if entry is not None else {}


def resolve_settings(*layers: Any) -> dict[str, Any]:
    """The one precedence rule: later layers win key by key; stop strings accumulate."""
    parsed = [settings_of(layer) for layer in layers]
    fields: dict[str, Any] = {}
    for layer in parsed:
        fields.update({k: v for k, v in layer.items() if k != "stop"})
    fields["stop"] = merge_stops(*(layer.get("stop") for layer in parsed))
    return fields


def generation_request(*layers: Any, **content: Any) -> GenerationRequest:
    """``GenerationRequest`` from settings layers (lowest first) plus ``messages``/``prompt``
    and other non-setting fields (``json_schema``, ``tools``...). Raises pydantic's
    ``ValidationError`` if a layer holds a bad value; callers say which layer."""
    return GenerationRequest.model_validate({**resolve_settings(*layers), **content})


@dataclass
class Drained:
    """A whole generation: its text, tool calls and the engine's ``Done`` (None if cut off)."""

    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    done: Done | None = None

    @property
    def usage(self) -> Usage:
        return self.done.usage if self.done is not None else Usage()

    @property
    def finish_reason(self) -> str:
        return self.done.finish_reason if self.done is not None else "stop"


async def drain(stream: AsyncIterator[Any],
                on_text: Callable[[str], Awaitable[None] | None] | None = None) -> Drained:
    """Read ``stream`` (``Delta``/``ToolCallDelta``/``Done``) to its end and close it.

    ``on_text`` sees each text piece as it comes (to stream it on); tool-call pieces are
    joined per index into whole ``ToolCall``s."""
    parts: list[str] = []
    calls: dict[int, dict[str, str]] = {}
    out = Drained()
    try:
        async for item in stream:
            if isinstance(item, Delta):
                parts.append(item.text)
                if on_text is not None:
                    result = on_text(item.text)
                    if inspect.isawaitable(result):
                        await result
            elif isinstance(item, ToolCallDelta):
                call = calls.setdefault(item.index, {"id": "", "name": "", "arguments": ""})
                call["id"] = item.id or call["id"]
                call["name"] = item.name or call["name"]
                call["arguments"] += item.arguments
            elif isinstance(item, Done):
                out.done = item
    finally:
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:
            await aclose()
    out.text = "".join(parts)
    out.tool_calls = [ToolCall(**calls[i]) for i in sorted(calls)]
    return out


__all__ = ["SETTINGS_KEYS", "ChatMessage", "Drained", "assistant_settings", "drain",
           "generation_request", "resolve_settings", "settings_of", "thread_settings"]
