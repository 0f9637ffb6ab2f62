"""tools: the ``tools`` service over every tool extensions register (``register_tools``)."""

from __future__ import annotations

from typing import Any

from jan.sdk import Context, Extension, hookimpl

from . import cli
from .approvals import Approvals
from .routes import ToolRoutes
from .service import Tools


class ToolsExtension(Extension):
    def activate(self, ctx: Context) -> Tools:
        self.ctx = ctx
        self.service = Tools(ctx.collect, ctx.log, Approvals(ctx.storage),
                             timeout=float(ctx.settings.get("timeout", 60)),
                             max_output=int(ctx.settings.get("max_output", 65536)))
        ctx.services.provide("tools", self.service)
        return self.service

    @hookimpl
    def register_routes(self, register: Any) -> None:
        for path, endpoint, methods in ToolRoutes(self.service).table():
            register(path, endpoint, methods=methods)

    @hookimpl
    def register_commands(self, register: Any) -> None:
        register("tools list", "List server-side tools (extensions and MCP servers)",
                 configure=cli.configure_list, run=cli.run_list)
        register("tools call", "Call a server-side tool: jan tools call NAME '{\"arg\": 1}'",
                 configure=cli.configure_call, run=cli.run_call)
