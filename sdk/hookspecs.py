"""The hooks an extension can implement, each a ``register_*(register)`` call.

Implement them as methods of your extension class decorated with ``@hookimpl``; the host calls
each one once, right after ``activate(ctx)``, and takes back everything registered when the
extension is deactivated or reloaded.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("jan")
hookimpl = pluggy.HookimplMarker("jan")


@hookspec
def register_routes(register: Callable[..., Any]) -> None:
    """Add HTTP routes: ``register(path, endpoint, methods=["GET"])``; endpoint is async.

    Optional keywords ``request_model=``, ``response_model=``, ``query_model=`` (pydantic
    models) describe the route in ``GET /openapi.json``."""


@hookspec
def register_commands(register: Callable[..., Any]) -> None:
    """Add CLI commands: ``register(name, help, configure=fn(parser), run=fn(args, ctx))``."""


@hookspec
def register_model_catalog(register: Callable[..., Any]) -> None:
    """Add downloadable models: ``register(model_json_dict)`` for each catalogue entry."""


@hookspec
def register_tools(register: Callable[..., Any]) -> None:
    """Add server-side tools: ``register(jan.sdk.tools.ToolSpec(...))`` for a fixed tool, or
    ``register(provider)`` with an object whose ``async tools() -> list[ToolSpec]`` gives a list
    that may change (MCP servers). The ``tools`` service asks again on every listing, so tools
    of an unloaded or reloaded extension are gone or replaced at once."""
