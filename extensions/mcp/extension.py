"""mcp: MCP servers from ``<data>/mcp_config.json`` as server-side tools (``<server>__<tool>``)."""

from __future__ import annotations

from typing import Any

from jan.sdk import Context, Extension, hookimpl
from jan.sdk.http import json_response

from . import cli
from .servers import Servers


class McpExtension(Extension):
    servers: Servers | None = None

    def activate(self, ctx: Context) -> Servers:
        self.ctx = ctx
        self.servers = Servers(ctx.data, ctx.log)
        self.servers.prime()
        ctx.spawn(self.servers.watch(), name="mcp-config")
        ctx.services.provide("mcp", self.servers)  # ``health()`` for /health
        return self.servers

    @hookimpl
    def register_tools(self, register: Any) -> None:
        if self.servers is not None:
            register(self.servers)

    @hookimpl
    def register_routes(self, register: Any) -> None:
        register("/v1/mcp/servers", self.list_servers, methods=["GET"])

    async def list_servers(self, request: Any) -> Any:
        assert self.servers is not None
        return json_response(self.servers.status())

    @hookimpl
    def register_commands(self, register: Any) -> None:
        register("mcp add", "Add an MCP server to mcp_config.json (stdio command or --url)",
                 configure=cli.configure_add, run=cli.run_add)
        register("mcp remove", "Remove an MCP server from mcp_config.json",
                 configure=cli.configure_remove, run=cli.run_remove)
        register("mcp list", "List the MCP servers in mcp_config.json (no secrets)",
                 configure=cli.configure_list, run=cli.run_list)
