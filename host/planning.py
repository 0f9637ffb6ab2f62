"""Planning: which extension provides what, what each depends on, and in which order they
start; versions, missing dependencies and cycles are found here, before anything runs.

Pure over the records, the settings and the service registry; the lifecycle (activate,
deactivate) lives in ``host/registry.py``.
"""

from __future__ import annotations

import graphlib

from jan.sdk.services import INFERENCE, SANDBOX

from . import HOST_API_VERSION
from .config import Settings
from .extstate import ExtState, Record
from .manifest import satisfies
from .services import ServiceRegistry

HOST_PROVIDER = "host"
HOST_SERVICES = frozenset({INFERENCE, SANDBOX})
"""Provided by the host itself; planned as present even when not started (CLI, tests)."""


class Planner:
    def __init__(self, records: dict[str, Record], settings: Settings,
                 services: ServiceRegistry) -> None:
        self.records, self.settings, self.services = records, settings, services

    def provider_of(self, service: str) -> str | None:
        """The extension id that provides ``service`` (None: the host, or nobody)."""
        if service in HOST_SERVICES or HOST_PROVIDER in self.services.providers(service):
            return None
        chosen = self.settings.modules.get(service)
        if chosen:
            return chosen
        for rec in self.records.values():
            if service in rec.manifest.provides and rec.state != ExtState.DISABLED:
                return rec.id
        return None

    def dependencies(self, rec: Record) -> list[str]:
        """Hard ``dependencies`` first, then the providers of the services it ``requires``."""
        deps = list(rec.manifest.dependencies)
        for service in rec.manifest.requires:
            provider = self.provider_of(service)
            if provider and provider != rec.id and provider not in deps:
                deps.append(provider)
        return deps

    def plan(self) -> list[str]:
        """Check versions, dependencies and cycles; return ids in activation order."""
        for rec in self.records.values():
            if not rec.usable and rec.instance is None:
                rec.reset()  # re-evaluated below
            if rec.id in self.settings.disabled_extensions:
                rec.disable("disabled in settings.json")
            elif not satisfies(HOST_API_VERSION, rec.manifest.engines.jan):
                rec.fail(f"needs jan {rec.manifest.engines.jan}, host is {HOST_API_VERSION}")
        order = self._order({rec.id: self.dependencies(rec) for rec in self.records.values()})
        for rec in self.records.values():
            for service in rec.manifest.requires:
                if rec.state == ExtState.INACTIVE and service not in HOST_SERVICES and \
                        not self.services.providers(service) and self.provider_of(service) is None:
                    rec.fail(f"requires service '{service}' which nothing provides")
        for ext_id in order:
            rec = self.records.get(ext_id)
            if rec is None or rec.state != ExtState.INACTIVE:
                continue
            for dep in rec.manifest.dependencies:  # providers of services are soft
                dep_rec = self.records.get(dep)
                if dep_rec is None:
                    rec.fail(f"dependency '{dep}' is not installed")
                elif not dep_rec.usable:
                    rec.fail(f"dependency '{dep}' is {dep_rec.state}: {dep_rec.reason}")
        return [i for i in order if i in self.records]

    def _order(self, graph: dict[str, list[str]]) -> list[str]:
        try:
            return list(graphlib.TopologicalSorter(graph).static_order())
        except graphlib.CycleError as exc:
            cycle = exc.args[1]
            for ext_id in set(cycle):
                if ext_id in self.records:
                    self.records[ext_id].fail("dependency cycle: " + " -> ".join(cycle))
            graph = {k: [d for d in v if d not in cycle]
                     for k, v in graph.items() if k not in cycle}
            return list(graphlib.TopologicalSorter(graph).static_order())
