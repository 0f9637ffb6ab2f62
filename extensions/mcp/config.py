"""``<data>/mcp_config.json`` in Claude Desktop's ``mcpServers`` format, and tool naming.

Values of ``env`` and ``headers`` may be ``env:NAME`` references, resolved from the server's own
environment when a server starts; they (and literal values) are never shown by the API or logs.
"""

from __future__ import annotations

import os
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from jan.sdk.storage import Folder

CONFIG_FILE = "mcp_config.json"
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


class ServerConfig(BaseModel):
    model_config = ConfigDict(extra="allow")
    command: str | None = None
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    url: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    disabled: bool = False

    def public(self) -> dict[str, Any]:
        """What listings show: no env or header values (they may be secrets)."""
        out: dict[str, Any] = {"command": self.command, "args": self.args, "url": self.url,
                               "env": sorted(self.env), "headers": sorted(self.headers),
                               "disabled": self.disabled}
        return {k: v for k, v in out.items() if v not in (None, [], False)}


def resolve(values: dict[str, str]) -> dict[str, str]:
    """``env:NAME`` references replaced by the environment variable (missing: empty)."""
    return {k: os.environ.get(v[4:], "") if v.startswith("env:") else v
            for k, v in values.items()}


def read_config(data: Folder) -> tuple[dict[str, ServerConfig], str | None]:
    """The configured servers, and an error message if the file is broken (then: none)."""
    if not data.exists(CONFIG_FILE):
        return {}, None
    try:
        raw = data.read_json(CONFIG_FILE)
        servers = raw.get("mcpServers", {}) if isinstance(raw, dict) else None
        if not isinstance(servers, dict):
            return {}, f"{CONFIG_FILE}: 'mcpServers' must be an object"
        return {str(k): ServerConfig.model_validate(v) for k, v in servers.items()}, None
    except (OSError, ValueError, ValidationError) as exc:
        return {}, f"{CONFIG_FILE}: {str(exc).splitlines()[0]}"


def write_servers(data: Folder, servers: dict[str, dict[str, Any]]) -> None:
    """Replace ``mcpServers``, keeping any other top-level keys of the file."""
    raw: dict[str, Any] = {}
    if data.exists(CONFIG_FILE):
        loaded = data.read_json(CONFIG_FILE)
        raw = loaded if isinstance(loaded, dict) else {}
    raw["mcpServers"] = servers
    data.write_json(CONFIG_FILE, value=raw)


def tool_name(server: str, tool: str) -> str:
    """``<server>__<tool>``, sanitised to what OpenAI accepts for function names (64 chars)."""
    return _UNSAFE.sub("_", f"{server}__{tool}")[:64]
