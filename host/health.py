"""What services say about themselves in ``/health`` (``jan.sdk.services.ReportsHealth``)."""

from __future__ import annotations

import logging
from typing import Any

from jan.sdk.services import HealthReport, ReportsHealth

from .services import ServiceRegistry

log = logging.getLogger("jan.host.health")


def service_reports(services: ServiceRegistry) -> tuple[dict[str, Any], list[str]]:
    """Details per service name and the problems they report, from every running chosen
    provider that implements ``health_report``. A report that raises is itself a problem:
    a broken provider must not break ``/health``."""
    details: dict[str, Any] = {}
    problems: list[str] = []
    for name in services.names():
        impl = services.chosen(name)
        if impl is None or not isinstance(impl, ReportsHealth):
            continue
        try:
            report = HealthReport.model_validate(impl.health_report())
        except Exception as exc:  # noqa: BLE001
            log.warning("health report of service %s failed: %s", name, exc)
            details[name] = {"error": f"{type(exc).__name__}: {exc}"}
            problems.append(f"service '{name}' could not report its health")
            continue
        details[name] = report.details
        problems += [f"{name}: {p}" for p in report.problems]
    return details, problems
