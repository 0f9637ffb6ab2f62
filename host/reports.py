"""What services say about themselves: ``/health`` (``jan.sdk.services.ReportsHealth``) and
``/metrics`` (``ReportsMetrics``), from every running chosen provider that implements them."""

from __future__ import annotations

import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse

from jan.sdk.services import HealthReport, ReportsHealth, ReportsMetrics

from .services import ServiceRegistry

log = logging.getLogger("jan.host.reports")


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


def metrics_text(services: ServiceRegistry) -> str:
    """Every running provider's metrics, one block after another (a failing one is skipped
    and logged: the others still count)."""
    parts: list[str] = []
    for name in services.names():
        impl = services.chosen(name)
        if impl is None or not isinstance(impl, ReportsMetrics):
            continue
        try:
            text = impl.metrics_text()
        except Exception as exc:  # noqa: BLE001
            log.warning("metrics of service %s failed: %s", name, exc)
            continue
        if text:
            parts.append(text if text.endswith("\n") else text + "\n")
    return "".join(parts)


def metrics_endpoint(services: ServiceRegistry):  # noqa: ANN201 - a Starlette endpoint
    async def metrics(request: Request) -> PlainTextResponse:
        return PlainTextResponse(metrics_text(services), media_type="text/plain; version=0.0.4")
    return metrics
