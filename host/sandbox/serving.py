"""Answering one worker request: validate its params, run the relay, map failures to JSON-RPC.

Every failure the worker may learn about becomes a message for the assistant's author; anything
unexpected is re-raised for the worker to log (rate-limited) and answer as a bare host error.
"""

from __future__ import annotations

import signal
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel, ValidationError

from jan.sdk.errors import ApiError
from jan.sdk.sandbox import SandboxError

from .rpc import PARAMS, WorkerRequest

Chunk = Callable[[str], Awaitable[None]]
Handler = Callable[[Any, str, BaseModel, Chunk], Awaitable[Any]]


class RelayError(Exception):
    """A worker request the host refuses (sent back as a JSON-RPC error)."""

    def __init__(self, message: str, code: int = -32000) -> None:
        super().__init__(message)
        self.code = code


async def answer(handler: Handler, worker: Any, req: WorkerRequest,
                 chunk: Chunk) -> dict[str, Any]:
    """``{"result": ...}`` or ``{"error": {...}}`` for ``req``."""
    try:
        params = PARAMS[req.method].model_validate(req.params)
        return {"result": await handler(worker, req.method, params, chunk)}
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err.get("loc", ()))
        return {"error": {"code": -32602, "message": f"invalid params: {where}: {err['msg']}"}}
    except RelayError as exc:
        return {"error": {"code": exc.code, "message": str(exc)}}
    except SandboxError as exc:
        return {"error": {"code": -32000, "message": exc.message}}
    except ApiError as exc:  # e.g. an unknown model: the message is for the author
        return {"error": {"code": -32000, "message": exc.message}}


def describe_exit(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        sig = signal.Signals(-code)
        hint = {signal.SIGXCPU: " (CPU time limit)", signal.SIGSYS: " (forbidden syscall)",
                signal.SIGSEGV: " (crashed)", signal.SIGKILL: " (killed)"}.get(sig, "")
        return f"terminated by {sig.name}{hint}"
    return f"exited with status {code}"
