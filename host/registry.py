"""The extension host's lifecycle: discover, activate lazily, deactivate, and take back.

Planning (providers, dependencies, order) is in ``host/planning.py``; the states and their
transitions are ``ExtState``/``Record`` in ``host/extstate.py``. Failures are contained: a
broken extension is reported and its dependents fail with a stated reason; everything else
keeps serving.
"""

from __future__ import annotations

import asyncio
import contextvars
import fnmatch
import inspect
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pluggy

from jan.sdk import hookspecs
from jan.sdk.events import EXTENSION_ACTIVATED, EXTENSION_DEACTIVATED
from jan.sdk.storage import Folder

from . import loader
from .config import Settings
from .context import ExtensionContext
from .discovery import Candidate, discover
from .events import EventBus
from .extstate import ExtState, Record, describe_exception
from .hooks import RouteSpec, collect_registered, collect_routes
from .planning import HOST_PROVIDER, HOST_SERVICES, Planner
from .services import ServiceRegistry

__all__ = ["HOST_PROVIDER", "HOST_SERVICES", "ExtState", "ExtensionHost", "Record"]
log = logging.getLogger("jan.host.registry")
_activating: contextvars.ContextVar[frozenset[str]] = contextvars.ContextVar(
    "jan_activating", default=frozenset())


class ExtensionHost:
    """Owns every extension's lifecycle, the event bus, the services and the hooks."""

    def __init__(self, data_folder: Path, settings: Settings, *, bundled: Path | None,
                 entry_points: bool = True, deactivate_timeout: float = 5.0) -> None:
        self.data_folder = data_folder
        self.data = Folder(data_folder)
        self.settings = settings
        self.bundled = bundled
        self.entry_points = entry_points
        self.deactivate_timeout = deactivate_timeout
        self.bus = EventBus()
        self.bus.before_emit = self._activate_for_event
        self.services = ServiceRegistry(lambda name: self.settings.modules.get(name))
        self.pm = pluggy.PluginManager("jan")
        self.pm.add_hookspecs(hookspecs)
        self.records: dict[str, Record] = {}
        self.manifest_errors: list[str] = []
        self.on_routes_changed: list[Callable[[], None]] = []

    # ------------------------------------------------------------------ discovery & order
    def folders(self) -> list[tuple[Path, str]]:
        out: list[tuple[Path, str]] = []
        if self.bundled is not None:
            out.append((self.bundled, "bundled"))
        out.append((self.data_folder / "extensions", "data"))
        return out

    def scan(self) -> dict[str, Candidate]:
        found = discover(self.folders(), entry_point_scan=self.entry_points)
        self.manifest_errors = [str(e) for e in found.errors]
        for cand in found.shadowed:
            log.info("%s %s in %s is shadowed by another copy with the same id",
                     cand.manifest.id, cand.manifest.version, cand.folder)
        return found.candidates

    def load_records(self) -> None:
        for cand in self.scan().values():
            self.records[cand.manifest.id] = Record(cand)
        self.plan()

    def planner(self) -> Planner:
        return Planner(self.records, self.settings, self.services)

    def provider_of(self, service: str) -> str | None:
        return self.planner().provider_of(service)

    def dependencies(self, rec: Record) -> list[str]:
        return self.planner().dependencies(rec)

    def plan(self) -> list[str]:
        """Check versions, dependencies and cycles; return ids in activation order."""
        return self.planner().plan()

    # ------------------------------------------------------------------ activation
    def wants_startup(self, rec: Record) -> bool:
        events = rec.manifest.activation_events
        chosen = rec.id in self.settings.modules.values()
        return chosen or "onStartup" in events or "*" in events

    async def start(self) -> None:
        for ext_id in self.plan():
            rec = self.records[ext_id]
            if rec.state == ExtState.INACTIVE and self.wants_startup(rec):
                await self.activate(ext_id)

    def _extension_settings(self, rec: Record) -> dict[str, Any]:
        return {**rec.manifest.contributes.settings, **self.settings.extensions.get(rec.id, {})}

    def new_context(self, rec: Record) -> ExtensionContext:
        return ExtensionContext(
            extension_id=rec.id, settings=self._extension_settings(rec),
            host_settings=self.settings.model_dump(mode="json"), data=self.data, bus=self.bus,
            services=self.services, exports=self.exports_of, collect=self.collect,
        )

    def collect(self, hook: str) -> list[Any]:
        active = [r.id for r in self.records.values() if r.state == ExtState.ACTIVE]
        return collect_registered(self.pm, hook, active)

    def exports_of(self, ext_id: str) -> Any:
        rec = self.records.get(ext_id)
        if rec is None or rec.state != ExtState.ACTIVE:
            raise LookupError(f"extension '{ext_id}' is not active")
        return rec.exports

    def instantiate(self, rec: Record) -> tuple[Any, str]:
        deps = rec.candidate.folder / ".deps"  # the extension's own installed requirements
        if deps.is_dir() and str(deps) not in sys.path:
            sys.path.append(str(deps))
        target, package = loader.import_extension(rec.candidate.folder, rec.id, rec.manifest.main)
        return (target() if inspect.isclass(target) else target), package

    async def activate(self, ext_id: str) -> bool:
        rec = self.records.get(ext_id)
        if rec is None or not rec.usable:
            return False
        if rec.state == ExtState.RELOADING:
            await rec.ready.wait()
        if rec.state == ExtState.ACTIVE:
            return True
        chain = _activating.get()
        if ext_id in chain:
            # Re-entered from this extension's own activate (an event it emitted woke a
            # dependent): it is being activated right now; waiting on its lock would deadlock.
            return True
        token = _activating.set(chain | {ext_id})
        try:
            return await self._activate(rec)
        finally:
            _activating.reset(token)

    async def _activate(self, rec: Record) -> bool:
        for dep in self.dependencies(rec):
            if await self.activate(dep):
                continue
            dep_rec = self.records.get(dep)
            why = dep_rec.reason if dep_rec else "not installed"
            if dep in rec.manifest.dependencies:
                rec.fail(f"dependency '{dep}' failed: {why}")
                return False
            # A failed service provider does not take its consumers down: they stay up and
            # answer 503 (Unavailable) for that service until the provider is fixed.
            log.warning("%s starts without its provider '%s': %s", rec.id, dep, why)
        async with rec.lock:
            if rec.state == ExtState.ACTIVE:
                return True
            try:
                instance, package = self.instantiate(rec)
            except BaseException as exc:  # noqa: BLE001 - any import failure is reported
                rec.fail(describe_exception(exc))
                return False
            return await self.start_instance(rec, instance, package)

    async def start_instance(self, rec: Record, instance: Any, package: str) -> bool:
        """Activate an imported instance, register its hooks and routes."""
        ctx = self.new_context(rec)
        try:
            exports = instance.activate(ctx) if hasattr(instance, "activate") else None
            if inspect.isawaitable(exports):
                exports = await exports
            self.pm.register(instance, name=rec.id)
            rec.routes = collect_routes(self.pm, rec.id)
        except BaseException as exc:  # noqa: BLE001
            await ctx.dispose_all()
            if self.pm.has_plugin(rec.id):
                self.pm.unregister(name=rec.id)
            loader.purge(package)
            rec.fail(describe_exception(exc))
            return False
        rec.activated(instance, package, ctx, exports)
        log.info("activated %s %s", rec.id, rec.manifest.version)
        self._routes_changed()
        await self.bus.emit(EXTENSION_ACTIVATED, {"id": rec.id})
        return True

    def dependents(self, ext_id: str) -> list[str]:
        return [r.id for r in self.records.values()
                if r.state == ExtState.ACTIVE and ext_id in self.dependencies(r)]

    async def deactivate(self, ext_id: str, *, reason: str | None = None) -> list[str]:
        """Deactivate ``ext_id`` and (first) everything active that depends on it."""
        rec = self.records.get(ext_id)
        if rec is None or rec.state != ExtState.ACTIVE:
            return []
        stopped: list[str] = []
        for dep in self.dependents(ext_id):
            stopped += await self.deactivate(dep, reason=f"dependency '{ext_id}' deactivated")
        async with rec.lock:
            await self.stop_instance(rec)
            rec.reset(reason)
        return stopped + [ext_id]

    async def stop_instance(self, rec: Record) -> None:
        instance, ctx = rec.instance, rec.context
        try:
            fn = getattr(instance, "deactivate", None)
            if fn is not None:
                if inspect.iscoroutinefunction(fn):
                    await asyncio.wait_for(fn(), self.deactivate_timeout)
                else:
                    await asyncio.wait_for(asyncio.to_thread(fn), self.deactivate_timeout)
        except TimeoutError:
            log.error("deactivate of %s timed out after %ss", rec.id, self.deactivate_timeout)
        except Exception:
            log.exception("deactivate of %s failed", rec.id)
        if ctx is not None:
            await ctx.dispose_all()
        if self.pm.has_plugin(rec.id):
            self.pm.unregister(name=rec.id)
        if rec.package:
            loader.purge(rec.package)
        rec.instance = rec.context = rec.exports = rec.package = None
        rec.routes = []
        self._routes_changed()
        await self.bus.emit(EXTENSION_DEACTIVATED, {"id": rec.id})

    async def stop(self) -> None:
        order = self.plan()
        for ext_id in reversed(order):
            await self.deactivate(ext_id)
        await self.bus.drain(timeout=2)

    # ------------------------------------------------------------------ lazy activation
    async def _activate_waiting(self, kind: str, value: str) -> bool:
        """Activate inactive extensions with an ``<kind>:<glob>`` event matching ``value``."""
        activated = False
        for rec in list(self.records.values()):
            if rec.state != ExtState.INACTIVE:
                continue
            globs = [e.partition(":")[2] for e in rec.manifest.activation_events
                     if e.startswith(kind + ":")]
            if any(fnmatch.fnmatchcase(value, g) for g in globs):
                activated = await self.activate(rec.id) or activated
        return activated

    async def activate_for_path(self, path: str) -> bool:
        return await self._activate_waiting("onRoute", path)

    async def activate_for_command(self, command: str) -> bool:
        """``onCommand:`` events name a command with its words joined by dots."""
        return await self._activate_waiting("onCommand", ".".join(command.split()))

    async def _activate_for_event(self, topic: str) -> None:
        await self._activate_waiting("onEvent", topic)

    # ------------------------------------------------------------------ views
    def routes(self) -> list[RouteSpec]:
        return [r for rec in self.records.values()
                if rec.state == ExtState.ACTIVE for r in rec.routes]

    def _routes_changed(self) -> None:
        for fn in self.on_routes_changed:
            fn()

    def describe(self) -> list[dict[str, Any]]:
        return [rec.describe() for rec in sorted(self.records.values(), key=lambda r: r.id)]
