"""The extension registry: discover, order, activate lazily, deactivate, and take back.

States: ``inactive`` (known, waiting for an activation event), ``active``, ``failed`` (with a
reason), ``disabled`` (by settings). Failures are contained: a broken extension is reported
and its dependents are disabled with a stated reason; everything else keeps serving.
"""

from __future__ import annotations

import asyncio
import contextvars
import fnmatch
import graphlib
import inspect
import logging
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pluggy

from jan.sdk import hookspecs
from jan.sdk.events import EXTENSION_ACTIVATED, EXTENSION_DEACTIVATED
from jan.sdk.services import INFERENCE, SANDBOX
from jan.sdk.storage import Folder

from . import HOST_API_VERSION, loader
from .config import Settings
from .context import ExtensionContext
from .discovery import Candidate, discover
from .events import EventBus
from .hooks import (
    RouteSpec,
    collect_registered,
    collect_routes,
)
from .manifest import satisfies
from .services import ServiceRegistry

log = logging.getLogger("jan.host.registry")
_activating: contextvars.ContextVar[frozenset[str]] = contextvars.ContextVar(
    "jan_activating", default=frozenset())
HOST_PROVIDER = "host"
HOST_SERVICES = frozenset({INFERENCE, SANDBOX})
"""Provided by the host itself; planned as present even when not started (CLI, tests)."""


@dataclass(eq=False)
class Record:
    candidate: Candidate
    state: str = "inactive"
    reason: str | None = None
    instance: Any = None
    package: str | None = None
    context: ExtensionContext | None = None
    exports: Any = None
    routes: list[RouteSpec] = field(default_factory=list)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    inflight: int = 0

    @property
    def id(self) -> str:
        return self.candidate.manifest.id

    @property
    def manifest(self):  # noqa: ANN201 - Manifest
        return self.candidate.manifest

    def describe(self) -> dict[str, Any]:
        m = self.manifest
        return {"id": m.id, "version": m.version, "state": self.state, "reason": self.reason,
                "source": self.candidate.source, "provides": m.provides, "folder":
                str(self.candidate.folder)}


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

    def provider_of(self, service: str) -> str | None:
        if service in HOST_SERVICES or HOST_PROVIDER in self.services.providers(service):
            return None
        chosen = self.settings.modules.get(service)
        if chosen:
            return chosen
        for rec in self.records.values():
            if service in rec.manifest.provides and rec.state != "disabled":
                return rec.id
        return None

    def dependencies(self, rec: Record) -> list[str]:
        deps = list(rec.manifest.dependencies)
        for service in rec.manifest.requires:
            provider = self.provider_of(service)
            if provider and provider != rec.id and provider not in deps:
                deps.append(provider)
        return deps

    def _fail(self, rec: Record, reason: str) -> None:
        rec.state, rec.reason = "failed", reason
        rec.ready.set()
        log.error("extension %s failed: %s", rec.id, reason, extra={"extension": rec.id})

    def plan(self) -> list[str]:
        """Check versions, dependencies and cycles; return ids in activation order."""
        for rec in self.records.values():
            if rec.state in ("failed", "disabled") and rec.instance is None:
                rec.state, rec.reason = "inactive", None  # re-evaluated below
            if rec.id in self.settings.disabled_extensions:
                rec.state, rec.reason = "disabled", "disabled in settings.json"
            elif not satisfies(HOST_API_VERSION, rec.manifest.engines.jan):
                self._fail(rec, f"needs jan {rec.manifest.engines.jan}, host is {HOST_API_VERSION}")
        graph = {rec.id: self.dependencies(rec) for rec in self.records.values()}
        sorter = graphlib.TopologicalSorter(graph)
        try:
            order = list(sorter.static_order())
        except graphlib.CycleError as exc:
            cycle = exc.args[1]
            for ext_id in set(cycle):
                if ext_id in self.records:
                    self._fail(self.records[ext_id], "dependency cycle: " + " -> ".join(cycle))
            graph = {k: [d for d in v if d not in cycle]
                     for k, v in graph.items() if k not in cycle}
            order = list(graphlib.TopologicalSorter(graph).static_order())
        for rec in self.records.values():
            for service in rec.manifest.requires:
                if rec.state == "inactive" and service not in HOST_SERVICES and \
                        not self.services.providers(service) and self.provider_of(service) is None:
                    self._fail(rec, f"requires service '{service}' which nothing provides")
        for ext_id in order:
            rec = self.records.get(ext_id)
            if rec is None or rec.state != "inactive":
                continue
            for dep in rec.manifest.dependencies:  # providers of services are soft, below
                dep_rec = self.records.get(dep)
                if dep_rec is None:
                    self._fail(rec, f"dependency '{dep}' is not installed")
                elif dep_rec.state in ("failed", "disabled"):
                    self._fail(rec, f"dependency '{dep}' is {dep_rec.state}: {dep_rec.reason}")
        return [i for i in order if i in self.records]

    # ------------------------------------------------------------------ activation
    def wants_startup(self, rec: Record) -> bool:
        events = rec.manifest.activation_events
        chosen = rec.id in self.settings.modules.values()
        return chosen or "onStartup" in events or "*" in events

    async def start(self) -> None:
        for ext_id in self.plan():
            rec = self.records[ext_id]
            if rec.state == "inactive" and self.wants_startup(rec):
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
        active = [r.id for r in self.records.values() if r.state == "active"]
        return collect_registered(self.pm, hook, active)

    def exports_of(self, ext_id: str) -> Any:
        rec = self.records.get(ext_id)
        if rec is None or rec.state != "active":
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
        if rec is None or rec.state in ("failed", "disabled"):
            return False
        if rec.state == "reloading":
            await rec.ready.wait()
        if rec.state == "active":
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
                self._fail(rec, f"dependency '{dep}' failed: {why}")
                return False
            # A failed service provider does not take its consumers down: they stay up and
            # answer 503 (Unavailable) for that service until the provider is fixed.
            log.warning("%s starts without its provider '%s': %s", rec.id, dep, why)
        async with rec.lock:
            if rec.state == "active":
                return True
            try:
                instance, package = self.instantiate(rec)
            except BaseException as exc:  # noqa: BLE001 - any import failure is reported
                self._fail(rec, _describe(exc))
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
            self._fail(rec, _describe(exc))
            return False
        rec.instance, rec.package, rec.context, rec.exports = instance, package, ctx, exports
        rec.state, rec.reason = "active", None
        rec.ready.set()
        log.info("activated %s %s", rec.id, rec.manifest.version)
        self._routes_changed()
        await self.bus.emit(EXTENSION_ACTIVATED, {"id": rec.id})
        return True

    def dependents(self, ext_id: str) -> list[str]:
        return [r.id for r in self.records.values()
                if r.state == "active" and ext_id in self.dependencies(r)]

    async def deactivate(self, ext_id: str, *, reason: str | None = None) -> list[str]:
        """Deactivate ``ext_id`` and (first) everything active that depends on it."""
        rec = self.records.get(ext_id)
        if rec is None or rec.state != "active":
            return []
        stopped: list[str] = []
        for dep in self.dependents(ext_id):
            stopped += await self.deactivate(dep, reason=f"dependency '{ext_id}' deactivated")
        async with rec.lock:
            await self.stop_instance(rec)
            rec.state, rec.reason = "inactive", reason
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
    async def activate_for_path(self, path: str) -> bool:
        activated = False
        for rec in list(self.records.values()):
            if rec.state != "inactive":
                continue
            globs = [e.partition(":")[2] for e in rec.manifest.activation_events
                     if e.startswith("onRoute:")]
            if any(fnmatch.fnmatchcase(path, g) for g in globs):
                activated = await self.activate(rec.id) or activated
        return activated

    async def _activate_for_event(self, topic: str) -> None:
        for rec in list(self.records.values()):
            if rec.state != "inactive":
                continue
            patterns = [e.partition(":")[2] for e in rec.manifest.activation_events
                        if e.startswith("onEvent:")]
            if any(fnmatch.fnmatchcase(topic, p) for p in patterns):
                await self.activate(rec.id)

    # ------------------------------------------------------------------ views
    def routes(self) -> list[RouteSpec]:
        return [r for rec in self.records.values() if rec.state == "active" for r in rec.routes]

    def _routes_changed(self) -> None:
        for fn in self.on_routes_changed:
            fn()

    def describe(self) -> list[dict[str, Any]]:
        return [rec.describe() for rec in sorted(self.records.values(), key=lambda r: r.id)]


def _describe(exc: BaseException) -> str:
    """A one-line reason with the innermost frame, for logs, /health and the CLI."""
    tb = traceback.extract_tb(exc.__traceback__)
    where = f" ({Path(tb[-1].filename).name}:{tb[-1].lineno})" if tb else ""
    return f"{type(exc).__name__}: {exc}{where}"
