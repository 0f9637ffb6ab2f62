"""An extension's lifecycle state, and the record the host keeps per extension.

This module owns the state machine; everything else moves a record through these methods::

    inactive (discovered, waiting for an activation event)
      -> active -> inactive (deactivated) | reloading -> active | failed
      -> failed (import/activate error, bad version, missing dependency, cycle)
      -> disabled (settings.json); failed/disabled -> inactive when planned again
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from .context import ExtensionContext
from .discovery import Candidate
from .hooks import RouteSpec
from .manifest import Manifest

log = logging.getLogger("jan.host.registry")


class ExtState(StrEnum):
    """Compares equal to its string value, which is what /health and the CLI show."""

    INACTIVE = "inactive"
    ACTIVE = "active"
    FAILED = "failed"
    RELOADING = "reloading"
    DISABLED = "disabled"


_ALLOWED: dict[ExtState, set[ExtState]] = {
    ExtState.INACTIVE: {ExtState.ACTIVE, ExtState.FAILED, ExtState.DISABLED, ExtState.INACTIVE},
    ExtState.ACTIVE: {ExtState.INACTIVE, ExtState.RELOADING, ExtState.FAILED,
                      ExtState.DISABLED},
    ExtState.RELOADING: {ExtState.ACTIVE, ExtState.FAILED},
    ExtState.FAILED: {ExtState.INACTIVE, ExtState.FAILED, ExtState.DISABLED, ExtState.ACTIVE},
    ExtState.DISABLED: {ExtState.INACTIVE, ExtState.DISABLED, ExtState.FAILED},
}


class StateError(RuntimeError):
    """A transition the state machine does not have: a bug in the host, never user input."""


@dataclass(eq=False)
class Record:
    candidate: Candidate
    state: ExtState = ExtState.INACTIVE
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
    def manifest(self) -> Manifest:
        return self.candidate.manifest

    def _to(self, state: ExtState, reason: str | None) -> None:
        if state not in _ALLOWED[self.state]:
            raise StateError(f"extension {self.id}: {self.state} -> {state} is not a transition")
        self.state, self.reason = state, reason

    def fail(self, reason: str) -> None:
        self._to(ExtState.FAILED, reason)
        self.ready.set()
        log.error("extension %s failed: %s", self.id, reason, extra={"extension": self.id})

    def disable(self, reason: str) -> None:
        self._to(ExtState.DISABLED, reason)

    def reset(self, reason: str | None = None) -> None:
        """Back to inactive: deactivated, or failed/disabled about to be planned again."""
        self._to(ExtState.INACTIVE, reason)

    def activated(self, instance: Any, package: str, context: ExtensionContext,
                  exports: Any) -> None:
        self.instance, self.package, self.context, self.exports = (
            instance, package, context, exports)
        self._to(ExtState.ACTIVE, None)
        self.ready.set()

    def begin_reload(self) -> None:
        self._to(ExtState.RELOADING, self.reason)
        self.ready.clear()

    def end_reload(self) -> None:
        """After a reload: still ``reloading`` means neither version came back."""
        if self.state == ExtState.RELOADING:
            self._to(ExtState.FAILED, self.reason)
        self.ready.set()

    @property
    def usable(self) -> bool:
        """Not failed or disabled: may be activated."""
        return self.state not in (ExtState.FAILED, ExtState.DISABLED)

    def describe(self) -> dict[str, Any]:
        m = self.manifest
        return {"id": m.id, "version": m.version, "state": str(self.state),
                "reason": self.reason, "source": self.candidate.source, "provides": m.provides,
                "folder": str(self.candidate.folder)}


def describe_exception(exc: BaseException) -> str:
    """A one-line reason with the innermost frame, for logs, /health and the CLI."""
    tb = traceback.extract_tb(exc.__traceback__)
    where = f" ({Path(tb[-1].filename).name}:{tb[-1].lineno})" if tb else ""
    return f"{type(exc).__name__}: {exc}{where}"
