"""``/v1/tools``: list tools, call one behind the approval policy, decide approvals.

``POST /v1/tools/calls`` runs a call the policy allows; otherwise it answers
``{"status": "requires_approval", "approval": {...}}`` with the full arguments, and nothing runs
until ``POST /v1/tools/approvals/{id}`` records a decision and ``.../run`` is called."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from jan.sdk.http import json_response, read_body

from .service import Tools


class CallRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=128)
    arguments: dict[str, Any] = Field(default_factory=dict)
    thread_id: str | None = None


class DecisionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    approve: bool
    scope: Literal["once", "thread", "always"] = "once"


class ToolRoutes:
    def __init__(self, tools: Tools) -> None:
        self.tools = tools

    def table(self) -> list[tuple[str, Any, list[str]]]:
        return [("/v1/tools", self.list, ["GET"]),
                ("/v1/tools/calls", self.call, ["POST"]),
                ("/v1/tools/approvals/{approval_id}", self.approval, ["GET"]),
                ("/v1/tools/approvals/{approval_id}", self.decide, ["POST"]),
                ("/v1/tools/approvals/{approval_id}/run", self.run, ["POST"])]

    async def list(self, request: Any) -> Any:
        tools = await self.tools.list()
        return json_response({"object": "list", "data": [
            {**t.model_dump(), "policy": self.tools.approvals.policy(t.name, t.server)}
            for t in tools]})

    async def call(self, request: Any) -> Any:
        req = await read_body(request, CallRequest)
        pending = await self.tools.gate(req.name, req.arguments, thread_id=req.thread_id)
        if pending is not None:
            return json_response({"status": "requires_approval",
                                  "approval": pending.model_dump(mode="json")})
        result = await self.tools.call(req.name, req.arguments)
        return json_response({"status": "completed", "result": result.model_dump()})

    async def approval(self, request: Any) -> Any:
        return json_response(self.tools.approvals.get(request.path_params["approval_id"]))

    async def decide(self, request: Any) -> Any:
        req = await read_body(request, DecisionRequest)
        decided = self.tools.approvals.decide(request.path_params["approval_id"], req.approve,
                                              by="api", scope=req.scope)
        return json_response(decided)

    async def run(self, request: Any) -> Any:
        result = await self.tools.call_approved(request.path_params["approval_id"])
        return json_response({"status": "completed", "result": result.model_dump()})
