"""Server-side tools: what extensions contribute (``register_tools``) and the ``tools`` service.

A tool is a name, a description, JSON-schema parameters and an async ``call(arguments) -> str``.
The ``tools`` service lists every contributed tool and calls one with a timeout, an output size
cap, and cancellation (cancelling the awaiting task cancels the tool). Failures never raise to
the caller of ``call``: they come back as a ``ToolResult`` with ``is_error`` set and a message a
model can read, so a broken tool cannot stop a run.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, Field

TOOLS = "tools"
DEFAULT_TIMEOUT = 60.0
DEFAULT_MAX_OUTPUT = 64 * 1024

ToolFn = Callable[[dict[str, Any]], Awaitable[str]]


@dataclass
class ToolSpec:
    """One tool as an extension registers it. ``source`` is e.g. ``"extension:weather"`` or
    ``"mcp:files"``; ``server`` groups tools for approval policies (the extension or MCP
    server id)."""

    name: str
    description: str
    call: ToolFn
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object",
                                                               "properties": {}})
    source: str = ""
    server: str = ""


@runtime_checkable
class ToolProvider(Protocol):
    async def tools(self) -> list[ToolSpec]:
        """The tools available now (may wait briefly for a first connection)."""


class ToolInfo(BaseModel):
    """A tool as listings show it (no callable)."""

    name: str
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=dict)
    source: str = ""
    server: str = ""


class ToolResult(BaseModel):
    name: str
    output: str
    is_error: bool = False
    truncated: bool = False


@runtime_checkable
class ToolService(Protocol):
    async def list(self) -> list[ToolInfo]: ...
    async def call(self, name: str, arguments: dict[str, Any], *,
                   timeout: float | None = None, max_output: int | None = None) -> ToolResult:
        """Run tool ``name``; unknown names, timeouts, crashes come back as ``is_error``."""


def cap_output(text: str, limit: int) -> tuple[str, bool]:
    """``text`` cut to at most ``limit`` UTF-8 bytes, with a note saying so."""
    raw = text.encode("utf-8")
    if len(raw) <= limit:
        return text, False
    cut = raw[:limit].decode("utf-8", errors="ignore")
    return f"{cut}\n[output truncated: {len(raw)} bytes, limit {limit}]", True


def short_name(tool: ToolInfo) -> str:
    """A tool's name on its own server (``<server>__<tool>`` loses its prefix)."""
    prefix = f"{tool.server}__"
    return tool.name[len(prefix):] if tool.server and tool.name.startswith(prefix) else tool.name


def of_server(tools: list[ToolInfo], server: str,
              allowed: list[str] | None = None) -> list[ToolInfo]:
    """The tools of one server, all or only the ``allowed`` ones (by either name)."""
    return [t for t in tools if t.server == server
            and (allowed is None or short_name(t) in allowed or t.name in allowed)]


@dataclass
class ToolBudget:
    """What the server-side tool loop of one run or response may spend: a number of calls
    (``max_tool_calls``) and wall-clock seconds from its start."""

    max_calls: int | None = None
    seconds: float | None = None
    used: int = 0
    started: float = field(default_factory=time.monotonic)

    def refusal(self, wanted: int = 1) -> tuple[str, str] | None:
        """``(reason, message)`` when ``wanted`` more calls may not run, else ``None``."""
        if self.max_calls is not None and self.used + wanted > self.max_calls:
            return "max_tool_calls", f"max_tool_calls ({self.max_calls}) was reached"
        if self.seconds is not None and time.monotonic() - self.started >= self.seconds:
            return "tool_time_budget", f"the tool time budget ({self.seconds:g}s) was spent"
        return None
