"""The server-side tool loop of one response.

Generate; run the model's calls to MCP tools (``mcp_call`` items) or, where the user's policy
asks for approval, end the response with ``mcp_approval_request`` items; otherwise generate
again with the outputs. ``max_tool_calls`` and a wall-clock budget (the ``tool_loop_timeout``
setting) bound the loop: a call beyond either is not run (its item is ``incomplete`` and says
why) and the model answers once more without tools, so the response still ends with an answer.
Events follow OpenAI's order for each item kind.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from jan.sdk.inference import ChatMessage, ToolCall
from jan.sdk.tools import ToolBudget, ToolResult, short_name

from . import items as it
from . import server_tools as st
from .context import Plan
from .output import Builder, Event
from .streams import aclose_quietly


class ToolLoop:
    def __init__(self, svc: Any, p: Plan, builder: Builder, time_budget: float) -> None:
        self.svc, self.p, self.b = svc, p, builder
        self.budget = ToolBudget(p.req.max_tool_calls, time_budget,
                                 used=sum(i["type"] == "mcp_call" for i in p.pre_items))
        self.last_round = False  # tools were withdrawn: whatever the model does now ends it

    async def run(self, source: AsyncIterator[Any]) -> AsyncIterator[Event | str]:
        """Every event of the response after ``response.in_progress``; the builder has
        finished the response when this ends (its ``final`` event is the caller's)."""
        for item in self.p.pre_items:
            for e in self._whole(item):
                yield e
        while True:
            start = len(self.b.response["output"])
            try:
                async for e in self.b.run(source):
                    yield e
            finally:
                await aclose_quietly(source)
            calls = self.b.take_server_calls()
            if not calls:
                return
            outputs: dict[str, str] = {}
            paused = False
            for call in calls:
                async for e in self._one(call, outputs):
                    if e is None:
                        paused = True
                    else:
                        yield e
            said = self.b.response["output"][start:]
            if paused or self.last_round or any(i["type"] == "function_call" for i in said):
                assert self.b.last_done is not None
                self.b.finish(self.b.last_done)  # the client has the next move
                return
            self._feed(calls, outputs, said)
            source = self.svc("inference").generate(self.p.spec, self.p.gen)

    # ------------------------------------------------------------------ one call
    def _spent(self) -> str | None:
        refused = self.budget.refusal()
        return f"not run: {refused[1]}" if refused else None

    def _must_ask(self, label: str, name: str) -> bool:
        """The request may ask for approval where the policy would not (never less)."""
        tool = next(t for t in self.p.mcp if t.server_label == label)
        rule = tool.require_approval
        if rule == "always":
            return True
        names = (rule or {}).get("always", {}).get("tool_names") if isinstance(rule, dict) \
            else None
        return isinstance(names, list) and name in names

    async def _one(self, call: ToolCall, outputs: dict[str, str]
                   ) -> AsyncIterator[Event | None]:
        """Events of one call (``None``: it waits for approval)."""
        label, info = self.p.server[call.name]
        name = short_name(info)
        item = st.call_item(label, name, call.arguments or "{}")
        try:
            args = json.loads(call.arguments or "{}")
        except ValueError:
            args = None
        spent = self._spent()
        service = st.tools_service(self.svc)
        if spent is None and isinstance(args, dict):
            approval = await service.gate(call.name, args, thread_id=self.p.conversation_id)
            if approval is None and self._must_ask(label, name):
                approval = service.approvals.request(call.name, info.server, args,
                                                     self.p.conversation_id)
            if approval is not None:
                for e in self._whole(st.approval_item(approval, label, name)):
                    yield e
                yield None
                return
        index, added = self.b.add(item)
        yield added
        for e in self._arguments(item, index):
            yield e
        if spent is not None:
            item["status"], item["error"] = "incomplete", {
                "type": "mcp_tool_execution_error", "content": spent}
        elif not isinstance(args, dict):
            st.settle(item, ToolResult(name=name, is_error=True,
                                       output="the arguments are not a JSON object"))
        else:
            self.budget.used += 1
            st.settle(item, await service.call(call.name, args))
        outputs[call.id] = it.call_output(item)
        yield self._ended(item, index)
        yield self.b.done(index)

    def _feed(self, calls: list[ToolCall], outputs: dict[str, str],
              said: list[dict[str, Any]]) -> None:
        """The calls and their outputs to the model, for the next round."""
        gen = self.p.gen
        assert gen is not None
        text = "".join(it.item_text(i) for i in said if i["type"] == "message")
        gen.messages = [*(gen.messages or []),
                        ChatMessage(role="assistant", content=text or None, tool_calls=calls),
                        *(ChatMessage(role="tool", tool_call_id=c.id, content=outputs[c.id])
                          for c in calls)]
        # "required" (or a named tool) means: call before answering, not call forever.
        gen.tool_choice = "auto"
        if self._spent() is not None:
            gen.tools, gen.tool_choice = None, "auto"
            self.last_round = True

    # ------------------------------------------------------------------ events
    def _arguments(self, item: dict[str, Any], index: int) -> list[Event]:
        where = {"item_id": item["id"], "output_index": index}
        return [self.b.event("response.mcp_call_arguments.delta", delta=item["arguments"],
                             **where),
                self.b.event("response.mcp_call_arguments.done", arguments=item["arguments"],
                             **where),
                self.b.event("response.mcp_call.in_progress", **where)]

    def _ended(self, item: dict[str, Any], index: int) -> Event:
        kind = "completed" if item["status"] == "completed" else "failed"
        return self.b.event(f"response.mcp_call.{kind}", item_id=item["id"],
                            output_index=index)

    def _whole(self, item: dict[str, Any]) -> list[Event]:
        """An item made before it is shown: its events in OpenAI's order for its kind."""
        kind = item["type"]
        final = dict(item)
        if kind in ("file_search_call", "mcp_call"):
            item["status"] = "in_progress"
        if kind == "mcp_call":
            item["output"], item["error"] = None, None
        index, added = self.b.add(item)
        where = {"item_id": item["id"], "output_index": index}
        out = [added]
        if kind == "mcp_list_tools":
            out += [self.b.event("response.mcp_list_tools.in_progress", **where),
                    self.b.event("response.mcp_list_tools.completed", **where)]
        elif kind == "file_search_call":
            out += [self.b.event(f"response.file_search_call.{step}", **where)
                    for step in ("in_progress", "searching", "completed")]
        elif kind == "mcp_call":
            out += self._arguments(item, index)
        item.update(final)
        if kind == "mcp_call":
            out.append(self._ended(item, index))
        return [*out, self.b.done(index)]
