"""The API an assistant's ``index.py`` uses, inside its sandbox.

```python
from jan.sdk.assistant import assistant, events, models, thread

@events.on("assistant:asst_abc123")          # runs of this assistant arrive on its own topic
def reply(event):
    messages = thread.messages()             # the run's thread, oldest first
    if assistant.instructions:               # "instructions" from assistant.json
        messages = [{"role": "system", "content": assistant.instructions}, *messages]
    return models.chat(messages)             # becomes the run's assistant message
```

Publishing is opt-in: ``events.emit("assistant:asst_abc123", data)`` tells whoever listens, and
another assistant hears it only if its own ``assistant.json`` lists that topic in ``events``.
``print()`` and ``logging`` go to ``<data>/logs/assistants/<id>.log`` (``jan assistants logs``).

Everything here talks to the host over the sandbox's RPC pipes; nothing touches the network or
other assistants' files. Handlers may be plain or ``async`` functions; a returned ``str`` (or a
dict with ``content`` and optional ``metadata``) becomes the run's reply. Imported outside a
sandbox, registering handlers works but calls into the host raise ``RuntimeError``.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

__all__ = ["events", "models", "thread", "assistant", "Event", "Model", "HostError"]


class HostError(RuntimeError):
    """The host refused or failed a call (``PermissionError`` for permission denials)."""


class Transport(Protocol):
    def request(self, method: str, params: dict[str, Any]) -> Any: ...
    def stream(self, method: str, params: dict[str, Any]) -> Iterator[Any]: ...


_transport: Transport | None = None
_info: dict[str, Any] = {}
_context: dict[str, Any] = {}
_handlers: list[tuple[str, re.Pattern[str], Callable[..., Any]]] = []
_loop: asyncio.AbstractEventLoop | None = None
_live = False  # after index.py loaded: new subscriptions go to the host at once


def _host() -> Transport:
    if _transport is None:
        raise RuntimeError("jan.sdk.assistant calls only work inside an assistant sandbox")
    return _transport


def _pattern(topic: str) -> re.Pattern[str]:
    return re.compile("^" + ".*".join(re.escape(p) for p in topic.split("*")) + "$")


class Event:
    """What a handler receives: the topic, its data, and where it came from."""

    def __init__(self, topic: str, data: Any, context: dict[str, Any]) -> None:
        self.topic = topic
        self.data = data
        self.source: str = context.get("source", "host")
        self.kind: str = context.get("kind", "event")
        self.thread_id: str | None = context.get("thread_id")
        self.run_id: str | None = context.get("run_id")

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default) if isinstance(self.data, dict) else default

    def __repr__(self) -> str:
        return f"Event(topic={self.topic!r}, kind={self.kind!r}, source={self.source!r})"


class _Events:
    def on(self, topic: str, handler: Callable[..., Any] | None = None) -> Any:
        """Call ``handler(event)`` for every event on ``topic`` (``*`` is a wildcard).

        Use as ``events.on(topic, handler)`` or as a decorator ``@events.on(topic)``.
        """

        def register(fn: Callable[..., Any]) -> Callable[..., Any]:
            _handlers.append((topic, _pattern(topic), fn))
            if _live and _transport is not None and topic != own_topic():
                _transport.request("events.subscribe", {"topic": topic})
            return fn

        return register(handler) if handler is not None else register

    def emit(self, topic: str, data: Any = None) -> None:
        """Publish ``data`` on ``topic`` (your own ``assistant:<id>`` or one you are allowed)."""
        _host().request("events.emit", {"topic": topic, "data": data})


class Reply(str):
    """A chat reply: the text, plus ``tool_calls`` when the model called tools (each
    ``{"id", "type": "function", "function": {"name", "arguments"}}``, arguments as JSON
    text). Answer a call with ``{"role": "tool", "tool_call_id": id, "content": ...}``."""

    tool_calls: list[dict[str, Any]]
    finish_reason: str

    def message(self) -> dict[str, Any]:
        """This reply as an assistant message, to send back with the tool results."""
        return {"role": "assistant", "content": str(self) or None,
                "tool_calls": self.tool_calls or None}


def _as_messages(messages: Any) -> list[dict[str, Any]]:
    if isinstance(messages, str):
        return [{"role": "user", "content": messages}]
    out = []
    for m in messages:
        if isinstance(m, str):
            out.append({"role": "user", "content": m})
        elif isinstance(m, dict):
            msg = {"role": str(m.get("role", "user")), "content": m.get("content")}
            if msg["content"] is not None:
                msg["content"] = str(msg["content"])
            elif msg["role"] != "assistant":
                msg["content"] = ""
            for key in ("tool_calls", "tool_call_id"):
                if m.get(key):
                    msg[key] = _calls(m[key]) if key == "tool_calls" else m[key]
            out.append(msg)
        else:
            out.append({"role": str(m.role), "content": str(m.content)})
    return out


def _calls(calls: list[Any]) -> list[dict[str, Any]]:
    """OpenAI's call shape (``function.name``) or the contract's flat one (``name``)."""
    out = []
    for c in calls:
        fn = c.get("function", c)
        out.append({"id": c["id"], "name": fn["name"], "arguments": fn.get("arguments", "")})
    return out


def _chat(model: str | None, messages: Any, stream: bool, params: dict[str, Any]) -> Any:
    payload = {"model": model, "messages": _as_messages(messages), "stream": stream, **params}
    if not stream:
        result = _host().request("models.chat", payload)
        reply = Reply(result["text"])
        reply.tool_calls = result.get("tool_calls") or []
        reply.finish_reason = result.get("finish_reason") or "stop"
        return reply
    return (chunk for chunk in _host().stream("models.chat", payload))


class Model:
    """One model the host can run: ``model.chat(messages)`` or ``model.stream(messages)``."""

    def __init__(self, model_id: str | None, name: str | None = None) -> None:
        self.id, self.name = model_id, name or model_id

    def chat(self, messages: Any, *, stream: bool = False, **params: Any) -> Any:
        """The reply text (a ``Reply``: with ``tools=[...]`` its ``tool_calls`` are the calls
        the model made); with ``stream=True`` an iterator of text pieces."""
        return _chat(self.id, messages, stream, params)

    def stream(self, messages: Any, **params: Any) -> Iterator[str]:
        return _chat(self.id, messages, True, params)

    process = chat  # the seed's ``models[0].process(event)`` spelling

    def __repr__(self) -> str:
        return f"Model({self.id!r})"


class _Models:
    """The models this assistant may use; index 0 is the run's (or assistant's) model."""

    def list(self) -> list[Model]:
        return [Model(m["id"], m.get("name")) for m in _host().request("models.list", {})]

    def __getitem__(self, key: int | str) -> Model:
        if isinstance(key, str):
            return Model(key)
        return self.list()[key]

    def __iter__(self) -> Iterator[Model]:
        return iter(self.list())

    def __len__(self) -> int:
        return len(self.list())

    def chat(self, messages: Any, *, model: str | None = None, stream: bool = False,
             **params: Any) -> Any:
        return _chat(model, messages, stream, params)

    def stream(self, messages: Any, *, model: str | None = None, **params: Any) -> Iterator[str]:
        return _chat(model, messages, True, params)


class _Thread:
    """The thread of the run being handled (only that one)."""

    @property
    def id(self) -> str | None:
        return _context.get("thread_id")

    def messages(self, limit: int = 100) -> list[dict[str, Any]]:
        """Oldest first, as ``{"id", "role", "content", "created_at"}`` dicts."""
        return _host().request("thread.messages", {"limit": limit})


class _Assistant:
    @property
    def id(self) -> str:
        return _info.get("assistant_id", "")

    def config(self) -> dict[str, Any]:
        """This assistant's ``assistant.json`` as it is now (``{}`` if missing or broken)."""
        try:
            data = json.loads((self.folder / "assistant.json").read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    @property
    def instructions(self) -> str | None:
        """``instructions`` from ``assistant.json``: edit them there, not in the code."""
        value = self.config().get("instructions")
        return value if isinstance(value, str) and value else None

    @property
    def folder(self) -> Path:
        return Path(_info.get("folder", "."))

    @property
    def workspace(self) -> Path:
        """The only place (with the temp dir) this assistant may write."""
        return Path(_info.get("workspace", "."))


def own_topic() -> str:
    return f"assistant:{_info.get('assistant_id', '')}"


events, models, thread, assistant = _Events(), _Models(), _Thread(), _Assistant()


# ------------------------------------------------------------------ used by the bootstrap only
def _bind(transport: Transport, info: dict[str, Any]) -> None:
    global _transport
    _transport = transport
    _info.clear()
    _info.update(info)


def _subscriptions() -> list[str]:
    return sorted({topic for topic, _, _ in _handlers if topic != own_topic()})


def _dispatch(topic: str, data: Any, context: dict[str, Any]) -> Any:
    """Run every handler matching ``topic``; the first non-None result is the answer."""
    global _loop
    _context.clear()
    _context.update(context)
    event = Event(topic, data, context)
    result = None
    matched = False
    for _, pattern, fn in list(_handlers):
        if not pattern.match(topic):
            continue
        matched = True
        value = fn(event)
        if inspect.isawaitable(value):
            _loop = _loop or asyncio.new_event_loop()
            value = _loop.run_until_complete(value)
        if result is None and value is not None:
            result = value
    if not matched and context.get("kind") == "run":
        raise LookupError(f"index.py has no handler for {topic!r}")
    return result
