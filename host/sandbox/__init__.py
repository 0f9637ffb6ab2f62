"""Assistant custom code in sandboxed subprocesses: the host's ``sandbox`` service.

``create_service`` is what the host calls; the returned ``Supervisor`` implements
``jan.sdk.sandbox.SandboxService`` (``run``, ``start``, ``restart``, ``probe``, ``close``).
"""

from __future__ import annotations

import logging
from typing import Any

from .config import SandboxSettings
from .probe import IsolationReport, probe
from .supervisor import Supervisor

__all__ = ["create_service", "Supervisor", "SandboxSettings", "IsolationReport", "probe"]


def create_service(*, data: Any, settings: dict[str, Any] | None, events: Any, services: Any,
                   log: logging.Logger | None = None) -> Supervisor:
    """The sandbox service for the data folder ``data`` (a path or a ``jan.sdk.Folder``)."""
    return Supervisor(data=data, settings=settings, events=events, services=services, log=log)
