"""tools: the ``tools`` service over every tool extensions register (``register_tools``)."""

from __future__ import annotations

from typing import Any

from jan.sdk import Context, Extension, hookimpl
from jan.sdk.http import json_response

from . import cli
from .service import Tools


class ToolsExtension(Extension):
    def activate(self, ctx: Context) -> Tools:
        self.ctx = ctx
        self.service = Tools(ctx.collect, ctx.log,
                             timeout=float(ctx.settings.get("timeout", 60)),
                             max_output=int(ctx.settings.get("max_output", 65536)))
        ctx.services.provide("tools", self.service)
        return self.service

    @hookimpl
    def register_routes(self, register: Any) -> None:
        register("/v1/tools", self.list_tools, methods=["GET"])

    async def list_tools(self, request: Any) -> Any:
        tools = await self.service.list()
        return json_response({"object": "list", "data": [t.model_dump() for t in tools]})

    @hookimpl
    def register_commands(self, register: Any) -> None:
        register("tools list", "List server-side tools (extensions and MCP servers)",
                 configure=cli.configure_list, run=cli.run_list)
        register("tools call", "Call a server-side tool: jan tools call NAME '{\"arg\": 1}'",
                 configure=cli.configure_call, run=cli.run_call)
