"""The ``tools`` service: every tool active extensions register, called with a timeout, an
output cap and cancellation. Tools are collected afresh on each listing, so an unloaded or
hot-reloaded extension's tools disappear or change immediately."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

from jan.sdk.errors import InvalidRequest
from jan.sdk.tools import (
    DEFAULT_MAX_OUTPUT,
    DEFAULT_TIMEOUT,
    ToolInfo,
    ToolProvider,
    ToolResult,
    ToolSpec,
    cap_output,
)

from .approvals import Approval, Approvals


class Tools:
    def __init__(self, collect: Callable[[str], list[Any]], log: logging.Logger,
                 approvals: Approvals, *, timeout: float = DEFAULT_TIMEOUT,
                 max_output: int = DEFAULT_MAX_OUTPUT) -> None:
        self._collect, self._log, self.approvals = collect, log, approvals
        self.timeout, self.max_output = timeout, max_output

    async def specs(self) -> dict[str, ToolSpec]:
        out: dict[str, ToolSpec] = {}
        for item in self._collect("register_tools"):
            if isinstance(item, ToolSpec):
                found = [item]
            elif isinstance(item, ToolProvider):
                try:
                    found = await item.tools()
                except Exception as exc:  # noqa: BLE001 - one broken provider hides only its own
                    self._log.warning("tool provider failed: %s", exc)
                    continue
            else:
                self._log.warning("ignored a registered tool of type %s", type(item).__name__)
                continue
            for spec in found:
                out.setdefault(spec.name, spec)  # first registration wins, as activation order
        return out

    async def list(self) -> list[ToolInfo]:
        return [ToolInfo(name=s.name, description=s.description, parameters=s.parameters,
                         source=s.source, server=s.server) for s in (await self.specs()).values()]

    async def call(self, name: str, arguments: dict[str, Any], *,
                   timeout: float | None = None, max_output: int | None = None) -> ToolResult:
        spec = (await self.specs()).get(name)
        if spec is None:
            return ToolResult(name=name, output=f"Error: no tool named {name!r}", is_error=True)
        limit = max_output or self.max_output
        seconds = timeout or self.timeout
        try:
            output = await asyncio.wait_for(spec.call(dict(arguments)), seconds)
        except TimeoutError:
            return ToolResult(name=name, is_error=True,
                              output=f"Error: tool {name!r} timed out after {seconds:g}s")
        except asyncio.CancelledError:
            raise  # the caller cancelled: the tool was cancelled with it
        except Exception as exc:  # noqa: BLE001 - the model sees the failure, the run goes on
            self._log.warning("tool %s failed: %s", name, exc)
            return ToolResult(name=name, is_error=True, output=f"Error: {exc}"[:2000])
        if not isinstance(output, str):
            output = json.dumps(output, default=str)
        text, truncated = cap_output(output, limit)
        return ToolResult(name=name, output=text, truncated=truncated)

    async def gate(self, name: str, arguments: dict[str, Any], *,
                   thread_id: str | None = None) -> Approval | None:
        """``None`` when policy lets the call run now; else a pending approval to answer."""
        spec = (await self.specs()).get(name)
        server = spec.server if spec else ""
        if self.approvals.allowed(name, server, thread_id):
            return None
        return self.approvals.request(name, server, arguments, thread_id)

    async def call_approved(self, approval_id: str, **kw: Any) -> ToolResult:
        """Run the call of a decided approval: only if it was approved (the arguments are the
        recorded ones, not the caller's). Denied or pending: an error result, nothing runs."""
        approval = self.approvals.get(approval_id)
        if approval.status == "pending":
            raise InvalidRequest(f"Approval '{approval_id}' has no decision yet")
        if approval.status != "approved":
            return ToolResult(name=approval.tool, is_error=True,
                              output="The user denied this tool call; it did not run.")
        return await self.call(approval.tool, approval.arguments, **kw)
