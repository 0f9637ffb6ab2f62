"""One MCP server: connected (stdio subprocess or Streamable HTTP) and kept connected.

A supervisor task owns the connection (the SDK's context managers must be entered and left in
one task), pings it so a crashed or hung server is noticed, and reconnects with a backoff. The
last known tool list survives disconnects, so prompts (and their KV-cache prefix) stay stable.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator
from typing import Any

from jan.sdk.tools import ToolSpec

from .config import ServerConfig, resolve, tool_name

PING_EVERY = 2.0
CONNECT_TIMEOUT = 20.0
MAX_BACKOFF = 30.0


class McpServer:
    def __init__(self, name: str, config: ServerConfig, log: logging.Logger) -> None:
        self.name, self.config, self.log = name, config, log
        self.session: Any = None
        self.error: str | None = None
        self.tools: list[Any] = []  # mcp.types.Tool, last known
        self.attempted = asyncio.Event()  # the first connection attempt is over
        self._broken = asyncio.Event()
        self.restarts = 0
        self.failures = 0
        self.last_failure: dict[str, Any] | None = None
        """The last start failure or crash (error, unix time), kept after a reconnect."""

    # -- the supervisor ------------------------------------------------------------------
    async def supervise(self) -> None:
        backoff = 0.5
        while True:
            try:
                await self._serve_once()
                backoff = 0.5
            except asyncio.CancelledError:
                raise
            except BaseException as exc:  # noqa: BLE001 - any failure: report, back off, retry
                self.error = _message(exc)
                self.failures += 1
                self.last_failure = {"error": self.error, "at": int(time.time())}
                self.log.warning("MCP server %s: %s", self.name, self.error)
            self.session = None
            self.attempted.set()
            self.restarts += 1
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)

    async def _serve_once(self) -> None:
        from mcp import ClientSession

        async with self._transport() as (read, write), ClientSession(read, write) as session:
            await asyncio.wait_for(session.initialize(), CONNECT_TIMEOUT)
            listed = await asyncio.wait_for(session.list_tools(), CONNECT_TIMEOUT)
            self._keep_tools(list(listed.tools))
            self.session, self.error = session, None
            self._broken.clear()
            self.attempted.set()
            while not self._broken.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._broken.wait(), PING_EVERY)
                    break
                await asyncio.wait_for(session.send_ping(), PING_EVERY * 2)
            raise RuntimeError(self.error or "connection lost")

    @contextlib.asynccontextmanager
    async def _transport(self) -> AsyncIterator[tuple[Any, Any]]:
        cfg = self.config
        if cfg.url:
            import httpx
            from mcp.client.streamable_http import streamable_http_client

            async with httpx.AsyncClient(headers=resolve(cfg.headers), timeout=30) as http, \
                    streamable_http_client(cfg.url, http_client=http) as streams:
                yield streams[0], streams[1]
            return
        if not cfg.command:
            raise ValueError("needs 'command' (stdio) or 'url' (Streamable HTTP)")
        from mcp.client.stdio import StdioServerParameters, stdio_client

        env = {**os.environ, **resolve(cfg.env)}
        params = StdioServerParameters(command=cfg.command, args=cfg.args, env=env)
        with open(os.devnull, "w") as errlog:  # noqa: PTH123 - server stderr is not ours to show
            async with stdio_client(params, errlog=errlog) as (read, write):
                yield read, write

    def _keep_tools(self, tools: list[Any]) -> None:
        """Same tools as before: keep the old objects and order, so listings are identical."""
        old = {t.name: t for t in self.tools}
        if {t.name for t in tools} == set(old) and all(
                t.model_dump() == old[t.name].model_dump() for t in tools):
            return
        self.tools = tools

    # -- tools ---------------------------------------------------------------------------
    def specs(self) -> list[ToolSpec]:
        return [ToolSpec(name=tool_name(self.name, t.name), description=t.description or "",
                         parameters=dict(t.input_schema if hasattr(t, "input_schema")
                                         else t.inputSchema),
                         call=self._caller(t.name), source=f"mcp:{self.name}",
                         server=self.name) for t in self.tools]

    def _caller(self, tool: str) -> Any:
        async def call(arguments: dict[str, Any]) -> str:
            return await self.call(tool, arguments)
        return call

    async def call(self, tool: str, arguments: dict[str, Any]) -> str:
        session = self.session
        if session is None:
            raise RuntimeError(f"MCP server {self.name!r} is not connected: {self.error}")
        try:
            result = await session.call_tool(tool, arguments)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._broken.set()  # reconnect: the session may be in a bad state
            raise RuntimeError(f"MCP server {self.name!r}: {_message(exc)}") from None
        text = render(result)
        if getattr(result, "is_error", getattr(result, "isError", False)):
            raise RuntimeError(text or "the tool reported an error")
        return text

    def status(self) -> dict[str, Any]:
        return {"name": self.name, "connected": self.session is not None, "error": self.error,
                "tools": [tool_name(self.name, t.name) for t in self.tools],
                "restarts": self.restarts, "failures": self.failures,
                "last_failure": self.last_failure, **self.config.public()}

    def health(self) -> dict[str, Any]:
        """For ``/health``: in-memory state only, so it never waits on the server."""
        return {"name": self.name, "connected": self.session is not None, "error": self.error,
                "failures": self.failures, "last_failure": self.last_failure}


def render(result: Any) -> str:
    """A tool result as text: text parts joined, anything else as JSON."""
    parts = []
    for item in getattr(result, "content", None) or []:
        text = getattr(item, "text", None)
        parts.append(text if isinstance(text, str) else item.model_dump_json())
    if not parts and getattr(result, "structured_content", None) is not None:
        import json
        parts.append(json.dumps(result.structured_content))
    return "\n".join(parts)


def _message(exc: BaseException) -> str:
    """The innermost useful message of an exception group from anyio task groups."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:500]
