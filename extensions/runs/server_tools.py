"""Server-side tools in runs: tools the ``tools`` service runs (extensions, MCP servers).

An assistant lists them in ``assistant.json`` ``tools``: ``{"type": "mcp", "server_label": S,
"allowed_tools": [...]}`` (all or some tools of MCP server S), or ``{"type": "server", "name":
N}`` / ``{"type": "server", "server": S}``. Calls the approval policy does not allow pause the
run in ``requires_action`` (the calls and full arguments under ``jan_tool_approvals``) until
each is decided through ``POST /v1/tools/approvals/{id}``; only approved calls run.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from jan.sdk.inference import Tool, ToolCall

POLL = 0.1


def _wanted(entry: Any, name: str, server: str) -> bool:
    if not isinstance(entry, dict):
        return False
    if entry.get("type") == "mcp" and entry.get("server_label") == server:
        allowed = entry.get("allowed_tools")
        prefix = f"{server}__"
        return allowed is None or name.removeprefix(prefix) in allowed or name in allowed
    if entry.get("type") == "server":
        return entry.get("name") == name or (entry.get("server") == server
                                             and "name" not in entry)
    return False


async def offered(services: Any, assistant_tools: list[Any]) -> list[Tool]:
    """The assistant's server tools as function tools for the model (none: no service)."""
    if not any(isinstance(t, dict) and t.get("type") in ("mcp", "server")
               for t in assistant_tools or []):
        return []
    try:
        service = services.get("tools")
    except Exception:  # noqa: BLE001 - no tools extension: the run goes on without them
        return []
    return [Tool.model_validate({"type": "function", "function": {
        "name": t.name, "description": t.description, "parameters": t.parameters}})
        for t in await service.list()
        if any(_wanted(e, t.name, t.server) for e in assistant_tools)]


def _arguments(call: ToolCall) -> dict[str, Any] | None:
    try:
        value = json.loads(call.arguments or "{}")
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


async def run_calls(service: Any, calls: list[ToolCall], thread_id: str,
                    pause: Any) -> dict[str, str]:
    """Outputs for server tool calls: allowed ones run; the others wait for decisions
    (``await pause(approvals)`` announces them), then run only if approved."""
    outputs: dict[str, str] = {}
    pending: dict[str, Any] = {}
    for call in calls:
        args = _arguments(call)
        if args is None:
            outputs[call.id] = "Error: the arguments are not a JSON object"
            continue
        approval = await service.gate(call.name, args, thread_id=thread_id)
        if approval is None:
            outputs[call.id] = (await service.call(call.name, args)).output
        else:
            pending[call.id] = approval
    if pending:
        await pause([{"approval_id": a.id, "tool_call_id": cid, "name": a.tool,
                      "server": a.server, "arguments": a.arguments}
                     for cid, a in pending.items()])
        while any(service.approvals.get(a.id).status == "pending" for a in pending.values()):
            await asyncio.sleep(POLL)  # bounded by the run's own timeout
        for cid, approval in pending.items():
            outputs[cid] = (await service.call_approved(approval.id)).output
    return outputs
