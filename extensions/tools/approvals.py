"""Approval of server-side tool calls: policies and recorded decisions, in the data folder.

``<data>/storage/tools/policy.json``: ``{"servers": {server: policy}, "tools": {name: policy},
"threads": {thread_id: [tool names allowed there]}}`` with policy ``ask`` (the default),
``thread`` (allow in a thread once approved there) or ``always``. Every call a policy does not
allow becomes a pending approval in ``approvals.jsonl``; a decision (who, what, when) is appended
to the same log, and only a call whose approval is recorded as approved is ever run.
"""

from __future__ import annotations

import time
from typing import Any, Literal

from pydantic import BaseModel, Field

from jan.sdk.errors import InvalidRequest, NotFound
from jan.sdk.models import new_id
from jan.sdk.storage import Folder

Policy = Literal["ask", "thread", "always"]
POLICY_FILE = "policy.json"
LOG_FILE = "approvals.jsonl"


class Approval(BaseModel):
    id: str
    tool: str
    server: str = ""
    arguments: dict[str, Any] = Field(default_factory=dict)
    thread_id: str | None = None
    status: Literal["pending", "approved", "denied"] = "pending"
    requested_at: int
    decided_at: int | None = None
    decided_by: str | None = None
    scope: Literal["once", "thread", "always"] | None = None


class Approvals:
    def __init__(self, folder: Folder) -> None:
        self.folder = folder

    def _policy_file(self) -> dict[str, Any]:
        raw = self.folder.read_json(POLICY_FILE) if self.folder.exists(POLICY_FILE) else {}
        return raw if isinstance(raw, dict) else {}

    def policy(self, tool: str, server: str) -> Policy:
        raw = self._policy_file()
        found = raw.get("tools", {}).get(tool) or raw.get("servers", {}).get(server) or "ask"
        return found if found in ("ask", "thread", "always") else "ask"

    def set_policy(self, policy: Policy, *, tool: str | None = None,
                   server: str | None = None) -> None:
        if policy not in ("ask", "thread", "always") or (tool is None) == (server is None):
            raise InvalidRequest("set a policy (ask|thread|always) for one tool or one server")
        raw = self._policy_file()
        raw.setdefault("tools" if tool else "servers", {})[tool or server] = policy
        self.folder.write_json(POLICY_FILE, value=raw)

    def allowed(self, tool: str, server: str, thread_id: str | None) -> bool:
        """May this call run without asking? (``always``, or granted in this thread.)"""
        policy = self.policy(tool, server)
        if policy == "always":
            return True
        granted = self._policy_file().get("threads", {}).get(thread_id or "", [])
        return policy == "thread" and tool in granted

    def request(self, tool: str, server: str, arguments: dict[str, Any],
                thread_id: str | None) -> Approval:
        approval = Approval(id=new_id("mcpr"), tool=tool, server=server, arguments=arguments,
                            thread_id=thread_id, requested_at=int(time.time()))
        self.folder.append_jsonl(LOG_FILE, value=approval.model_dump())
        return approval

    def get(self, approval_id: str) -> Approval:
        rows, _ = self.folder.read_jsonl(LOG_FILE) if self.folder.exists(LOG_FILE) else ([], [])
        found = None
        for row in rows:  # later lines (decisions) override earlier ones
            if row.get("id") == approval_id:
                found = Approval.model_validate({**(found.model_dump() if found else {}), **row})
        if found is None:
            raise NotFound(f"No tool approval request '{approval_id}'")
        return found

    def decide(self, approval_id: str, approve: bool, *, by: str,
               scope: Literal["once", "thread", "always"] = "once") -> Approval:
        approval = self.get(approval_id)
        if approval.status != "pending":
            raise InvalidRequest(f"Approval '{approval_id}' was already {approval.status}")
        decided = approval.model_copy(update={
            "status": "approved" if approve else "denied", "decided_at": int(time.time()),
            "decided_by": by, "scope": scope if approve else None})
        self.folder.append_jsonl(LOG_FILE, value=decided.model_dump())
        if approve and scope == "always":
            self.set_policy("always", tool=approval.tool)
        if approve and scope == "thread" and approval.thread_id:
            raw = self._policy_file()
            granted = raw.setdefault("threads", {}).setdefault(approval.thread_id, [])
            if approval.tool not in granted:
                granted.append(approval.tool)
            raw.setdefault("tools", {}).setdefault(approval.tool, "thread")
            self.folder.write_json(POLICY_FILE, value=raw)
        return decided
