"""Inside the worker: failures told to the assistant's author, and the sandbox named as the cause.

Loaded by ``bootstrap.py`` from this file before the process is hardened (stdlib only). An
error becomes a JSON-RPC error whose message has the exception, a hint when the sandbox caused
it (a module not installed for this assistant, the blocked network) and the traceback's frames
in the assistant's own folder with paths relative to it; the full traceback goes to its log.
"""

from __future__ import annotations

import os
import traceback
from typing import Any

NETWORK_BLOCKED = "network access is blocked for assistant code"
WHERE: dict[str, str] = {}  # "assistant_id" and "folder", set once hardened


class NetworkBlocked(PermissionError):
    """Raised (with a clear message) by every way to reach the network inside the sandbox."""


def block_network(layers: dict[str, dict[str, Any]]) -> None:
    """Name the cause: without this, code sees EACCES from socket() or a DNS failure."""
    if not any(layers.get(k, {}).get("active") for k in ("seccomp", "netns")):
        return
    import errno
    import socket

    def refuse(*_: Any, **__: Any) -> Any:
        raise NetworkBlocked(errno.EACCES, NETWORK_BLOCKED)

    for name in ("getaddrinfo", "gethostbyname", "gethostbyname_ex", "gethostbyaddr",
                 "create_connection"):
        setattr(socket, name, refuse)
    original = socket.socket.__init__

    def init(self: Any, family: Any = -1, type: Any = -1, proto: Any = -1,
             fileno: Any = None) -> None:
        try:
            original(self, family, type, proto, fileno)
        except PermissionError:
            raise NetworkBlocked(errno.EACCES, NETWORK_BLOCKED) from None

    socket.socket.__init__ = init  # type: ignore[method-assign]


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    todo: list[Any] = [exc]
    while todo and len(seen) < 20:
        item = todo.pop()
        if isinstance(item, BaseException) and item not in seen:
            seen.append(item)
            todo += [item.__cause__, item.__context__, getattr(item, "reason", None)]
            todo += list(getattr(item, "args", ()))[:3]
    return seen


def _hint(exc: BaseException) -> str:
    """What the sandbox (not the author's code) has to do with this error, if anything."""
    chain = _chain(exc)
    missing = next((e for e in chain if isinstance(e, ModuleNotFoundError)), None)
    if missing is not None:
        aid = WHERE.get("assistant_id", "<id>")
        return (f" (module '{missing.name}' is not installed for this assistant: add it to "
                f"requirements.txt in its folder, then run `jan assistants install {aid}`)")
    if any(isinstance(e, NetworkBlocked) for e in chain) and NETWORK_BLOCKED not in str(exc):
        return f" ({NETWORK_BLOCKED})"
    return ""


def _user_frames(exc: BaseException) -> list[str]:
    """The traceback's frames in the assistant's own folder, paths relative to it."""
    folder = WHERE.get("folder", "")
    lines = []
    for frame in traceback.extract_tb(exc.__traceback__):
        if folder and frame.filename.startswith(folder + os.sep):
            rel = os.path.relpath(frame.filename, folder)
            lines.append(f'  File "{rel}", line {frame.lineno}, in {frame.name}')
            if frame.line:
                lines.append(f"    {frame.line.strip()}")
    return lines


def error_reply(exc: BaseException, limit: int = 4000) -> dict[str, Any]:
    text = "".join(traceback.format_exception_only(type(exc), exc)).strip() + _hint(exc)
    frames = _user_frames(exc)
    if frames:
        text += "\nTraceback (most recent call last):\n" + "\n".join(frames[-20:])
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return {"code": -32000, "message": text[-limit:],
            "data": {"traceback": (tb + _hint(exc))[-limit:]}}
