"""Every configured MCP server, started, stopped and restarted as ``mcp_config.json`` changes
(polled, like ``settings.json``: edits apply live). Also the ``register_tools`` provider."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from jan.sdk.services import HealthReport
from jan.sdk.storage import Folder
from jan.sdk.tools import ToolSpec

from .config import CONFIG_FILE, ServerConfig, read_config
from .server import McpServer

POLL_EVERY = 0.5
FIRST_ATTEMPT_WAIT = 15.0


class Servers:
    def __init__(self, data: Folder, log: logging.Logger) -> None:
        self.data, self.log = data, log
        self.servers: dict[str, McpServer] = {}
        self.tasks: dict[str, asyncio.Task[Any]] = {}
        self.config_error: str | None = None
        self._stamp: tuple[float, int] | None = None

    def _file_stamp(self) -> tuple[float, int] | None:
        try:
            st = self.data.path(CONFIG_FILE).stat()
        except OSError:
            return None
        return st.st_mtime, st.st_size

    def prime(self) -> None:
        """Apply the config at once (a CLI command lists tools right after activation)."""
        self._stamp = self._file_stamp()
        self.apply()

    async def watch(self) -> None:
        """Apply the config now and on every change, until cancelled (then stop all)."""
        try:
            while True:
                stamp = self._file_stamp()
                if stamp != self._stamp or not self.tasks and self.servers:
                    self._stamp = stamp
                    self.apply()
                await asyncio.sleep(POLL_EVERY)
        finally:
            await self.stop_all()

    def apply(self) -> None:
        configs, self.config_error = read_config(self.data)
        if self.config_error:
            self.log.warning("%s (servers kept as they were)", self.config_error)
            return
        wanted = {n: c for n, c in configs.items() if not c.disabled}
        for name in list(self.servers):
            if name not in wanted or wanted[name] != self.servers[name].config:
                self._stop(name)
        for name, cfg in wanted.items():
            if name not in self.servers:
                self._start(name, cfg)

    def _start(self, name: str, cfg: ServerConfig) -> None:
        server = McpServer(name, cfg, self.log)
        self.servers[name] = server
        self.tasks[name] = asyncio.get_running_loop().create_task(
            server.supervise(), name=f"mcp:{name}")

    def _stop(self, name: str) -> None:
        self.servers.pop(name, None)
        task = self.tasks.pop(name, None)
        if task is not None:
            task.cancel()

    async def stop_all(self) -> None:
        tasks = list(self.tasks.values())
        for name in list(self.servers):
            self._stop(name)
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task

    async def tools(self) -> list[ToolSpec]:
        """The ``register_tools`` provider: waits (bounded) for first connection attempts."""
        pending = [s.attempted.wait() for s in self.servers.values() if not s.attempted.is_set()]
        if pending:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*pending), FIRST_ATTEMPT_WAIT)
        return [spec for s in list(self.servers.values()) for spec in s.specs()]

    def health(self) -> dict[str, Any]:
        """The ``mcp`` service's report for ``/health`` (never blocks: no I/O)."""
        servers = [s.health() for s in list(self.servers.values())]
        return {"config_error": self.config_error, "servers": servers,
                "failing": [s["name"] for s in servers if s["error"]]}

    def health_report(self) -> HealthReport:
        """``jan.sdk.services.ReportsHealth``: a server that is down (failed to start, crashed
        and not back) or a config file that could not be read degrades the server."""
        details = self.health()
        problems = [f"MCP server '{s['name']}' is down: {s['error']}"
                    for s in details["servers"] if s["error"]]
        if self.config_error:
            problems.append(f"mcp_config.json: {self.config_error}")
        return HealthReport(details=details, problems=problems)

    def status(self) -> dict[str, Any]:
        return {"config_error": self.config_error,
                "servers": [s.status() for s in self.servers.values()]}
