"""Tools the server runs for a response: ``mcp`` servers (through the ``tools`` service, under
the user's approval policy, the same store runs use) and ``file_search`` (through the
``files`` service, as runs do).

Before generating, ``prepare`` lists each MCP server's tools (an ``mcp_list_tools`` item, once
per server in a ``previous_response_id`` chain), records the decisions that came in as
``mcp_approval_response`` items and runs the approved calls (``mcp_call`` items: a denied or
unanswered call never runs), and searches the vector stores (a ``file_search_call`` item).
"""

from __future__ import annotations

import json
from typing import Any

from jan.sdk.errors import ApiError, InvalidRequest, NotFound
from jan.sdk.models import new_id
from jan.sdk.tools import ToolInfo, ToolResult, of_server, short_name

from . import items as it
from .context import Plan


def tools_service(svc: Any) -> Any:
    try:
        return svc("tools")
    except ApiError:
        raise InvalidRequest("'mcp' tools need the tools and mcp extensions, which are not "
                             "active", param="tools", code="unsupported_parameter") from None


async def prepare(svc: Any, p: Plan) -> None:
    """Tool listings and file search (before the request is validated further)."""
    if p.mcp:
        await _list_tools(svc, p)
    if p.file_search is not None:
        await _search(svc, p)


async def answer_approvals(svc: Any, p: Plan) -> bool:
    """Decisions in the input recorded, approved calls run (last: the request is valid)."""
    if not any(i["type"] == "mcp_approval_response" for i in p.input_items):
        return False
    await _answer_approvals(tools_service(svc), p)
    return True


async def _list_tools(svc: Any, p: Plan) -> None:
    infos = await tools_service(svc).list()
    listed = {i.get("server_label") for i in p.history if i.get("type") == "mcp_list_tools"}
    for tool in p.mcp:
        label = tool.server_label
        if not of_server(infos, label):
            where = f"tools[{(p.req.tools or []).index(tool)}].server_label"
            raise InvalidRequest(f"Invalid '{where}': no MCP server {label!r} with tools "
                                 "(servers are configured in mcp_config.json)", param=where)
        chosen = of_server(infos, label, tool.allowed)
        for info in chosen:
            p.server[info.name] = (label, info)
        if label not in listed:
            p.pre_items.append({
                "id": new_id("mcpl"), "type": "mcp_list_tools", "server_label": label,
                "tools": [{"name": short_name(i), "description": i.description,
                           "input_schema": i.parameters, "annotations": None} for i in chosen],
                "error": None})


def call_item(label: str, name: str, arguments: str, *, approval_id: str | None = None,
              status: str = "in_progress") -> dict[str, Any]:
    return {"id": new_id("mcp"), "type": "mcp_call", "server_label": label, "name": name,
            "arguments": arguments, "output": None, "error": None, "status": status,
            "approval_request_id": approval_id}


def settle(item: dict[str, Any], result: ToolResult) -> None:
    """The call's outcome on its item: output, or a failure the model is shown as text."""
    if result.is_error:
        item["status"] = "failed"
        item["error"] = {"type": "mcp_tool_execution_error", "content": result.output}
    else:
        item["status"], item["output"] = "completed", result.output


def approval_item(approval: Any, label: str, name: str) -> dict[str, Any]:
    return {"id": approval.id, "type": "mcp_approval_request", "server_label": label,
            "name": name, "arguments": json.dumps(approval.arguments)}


async def _answer_approvals(service: Any, p: Plan) -> None:
    """Record each decision (who: this API), then run the approved calls with the arguments
    recorded when the approval was asked, never the client's. Only requests this response's
    history holds can be answered here (not a paused run's), and each only once, so no call
    runs twice."""
    asked = {i.get("id") for i in p.history if i.get("type") == "mcp_approval_request"}
    for answer in (i for i in p.input_items if i["type"] == "mcp_approval_response"):
        approval_id = answer["approval_request_id"]
        where = "input.approval_request_id"
        if approval_id not in asked:
            raise InvalidRequest(f"Invalid 'approval_request_id': no mcp_approval_request "
                                 f"{approval_id!r} in this response's history (continue it "
                                 "with previous_response_id or its conversation)", param=where)
        try:
            approval = service.approvals.get(approval_id)
        except NotFound:
            raise InvalidRequest(f"Invalid 'approval_request_id': no MCP approval request "
                                 f"{approval_id!r}", param=where) from None
        if approval.status != "pending":
            raise InvalidRequest(f"Approval request {approval_id!r} was already "
                                 f"{approval.status}", param=where)
        service.approvals.decide(approval_id, answer["approve"], by="api:/v1/responses")
        info = ToolInfo(name=approval.tool, server=approval.server)
        item = call_item(approval.server, short_name(info), json.dumps(approval.arguments),
                         approval_id=approval_id)
        settle(item, await service.call_approved(approval_id))  # denied: an error, no run
        p.pre_items.append(item)


async def _search(svc: Any, p: Plan) -> None:
    tool = p.file_search
    assert tool is not None
    try:
        files = svc("files")
    except ApiError:
        raise InvalidRequest("'file_search' needs the files extension, which is not active",
                             param="tools", code="unsupported_parameter") from None
    question = next((it.item_text(i) for i in reversed(p.history + p.input_items)
                     if i.get("type") == "message" and i.get("role") == "user"), "")
    p.found = await files.for_stores(tool.vector_store_ids, question,
                                     max_num_results=tool.max_num_results,
                                     filters=tool.filters)
    include = "file_search_call.results" in (p.req.include or [])
    p.pre_items.append({
        "id": new_id("fs"), "type": "file_search_call", "status": "completed",
        "queries": [question],
        "results": [{"file_id": h["file_id"], "filename": h["filename"], "score": h["score"],
                     "text": h["text"], "attributes": h.get("attributes") or {}}
                    for h in p.found.hits] if include else None})


def citations(p: Plan) -> list[tuple[str, str]]:
    """One ``file_citation`` per file the passages came from (in rank order)."""
    hits = p.found.hits if p.found is not None else []
    return list(dict.fromkeys((h["file_id"], h["filename"]) for h in hits))
