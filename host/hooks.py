"""What extensions register through hooks: routes and CLI commands, collected per extension."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pluggy


@dataclass
class RouteSpec:
    path: str
    endpoint: Callable[..., Any]
    methods: list[str]
    owner: str
    name: str | None = None
    # Optional pydantic models for /openapi.json (request body, 200 body, query string).
    request_model: Any = None
    response_model: Any = None
    query_model: Any = None


@dataclass
class CommandSpec:
    name: str
    help: str
    configure: Callable[[Any], Any] | None
    run: Callable[..., Any] | None
    owner: str


def collect_routes(pm: pluggy.PluginManager, ext_id: str) -> list[RouteSpec]:
    """Call one plugin's ``register_routes`` so every route is tagged with its owner."""
    routes: list[RouteSpec] = []

    def register(path: str, endpoint: Callable[..., Any], methods: list[str] | None = None,
                 name: str | None = None, *, request_model: Any = None,
                 response_model: Any = None, query_model: Any = None) -> None:
        routes.append(RouteSpec(path, endpoint, [m.upper() for m in methods or ["GET"]],
                                ext_id, name, request_model, response_model, query_model))

    for impl in pm.hook.register_routes.get_hookimpls():
        if impl.plugin_name == ext_id:
            impl.function(register=register)
    return routes


def collect_commands(ext_id: str, instance: Any) -> list[CommandSpec]:
    """Ask an (imported, not necessarily active) extension for its CLI commands."""
    commands: list[CommandSpec] = []

    def register(name: str, help: str = "", configure: Callable | None = None,
                 run: Callable | None = None) -> None:
        commands.append(CommandSpec(name, help, configure, run, ext_id))

    fn = getattr(instance, "register_commands", None)
    if fn is not None:
        fn(register=register)
    return commands


def collect_registered(pm: pluggy.PluginManager, hook: str, owners: list[str]) -> list[Any]:
    """Everything ``owners``' ``register_*`` implementations of ``hook`` register, in order."""
    caller = getattr(pm.hook, hook, None)
    if caller is None or not hook.startswith("register_"):
        raise ValueError(f"unknown hook {hook!r}")
    items: list[Any] = []
    impls = {impl.plugin_name: impl for impl in caller.get_hookimpls()}
    for owner in owners:
        if owner in impls:
            impls[owner].function(register=items.append)
    return items
