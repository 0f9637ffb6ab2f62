"""The response object, and the canonical stream of events that builds its output.

One ``Builder`` consumes engine events (``Delta``, ``ToolCallDelta``, ``Done``) and yields
``(event_name, payload)`` pairs with increasing ``sequence_number``s, filling the response's
``output`` as it goes; a non-streamed response runs the same builder and drops the events, so
both paths give the same object. Text deltas are assembled from prebuilt strings around
``json.dumps(text)``: the per-token cost stays one concatenation, like chat's.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

from jan.sdk.errors import ApiError
from jan.sdk.inference import Done, ToolCall
from jan.sdk.models import new_id

from .context import Plan, tool_choice
from .schemas import FunctionTool, McpChoice

Event = tuple[str, Any]


def new_response(p: Plan, response_id: str) -> dict[str, Any]:
    req = p.req
    gen = p.gen
    fmt = req.text.format.model_dump(by_alias=True, exclude_none=True) if (
        req.text and req.text.format) else {"type": "text"}
    choice = tool_choice(req)
    return {
        "id": response_id, "object": "response", "created_at": int(time.time()),
        "completed_at": None, "status": "queued" if req.background else "in_progress",
        "background": bool(req.background), "error": None, "incomplete_details": None,
        "instructions": p.instructions, "max_output_tokens": req.max_output_tokens,
        "max_tool_calls": req.max_tool_calls, "model": p.model, "output": [],
        "parallel_tool_calls": req.parallel_tool_calls is not False,
        "previous_response_id": req.previous_response_id,
        "conversation": {"id": p.conversation_id} if p.conversation_id else None,
        "prompt": {"id": req.prompt.id, "version": req.prompt.version, "variables": None}
        if req.prompt else None,
        "prompt_cache_key": None, "reasoning": None, "safety_identifier": None,
        "service_tier": "default", "store": req.store is not False,
        "temperature": gen.temperature if gen else 1.0, "top_p": gen.top_p if gen else 1.0,
        "presence_penalty": gen.presence_penalty if gen else 0.0,
        "frequency_penalty": gen.frequency_penalty if gen else 0.0,
        "text": {"format": fmt, "verbosity": "medium"},
        "tool_choice": choice if isinstance(choice, str) else choice.model_dump(
            exclude_none=True) if isinstance(choice, McpChoice) else {"type": "function",
                                                                      "name": choice.name},
        "tools": [{"type": "function", "name": t.name, "description": t.description,
                   "parameters": t.parameters, "strict": bool(t.strict)} for t in p.tools]
        + [t.model_dump(exclude_none=True) for t in req.tools or []
           if not isinstance(t, FunctionTool)],
        "top_logprobs": 0, "truncation": req.truncation or "disabled", "usage": None,
        "user": req.user, "metadata": req.metadata or {},
    }


def usage_of(done: Done, before: dict[str, Any] | None = None) -> dict[str, Any]:
    """``done``'s usage, added to ``before`` (the earlier rounds of a tool loop)."""
    u = done.usage
    b = before or {"input_tokens": 0, "input_tokens_details": {"cached_tokens": 0},
                   "output_tokens": 0, "total_tokens": 0}
    return {"input_tokens": b["input_tokens"] + u.prompt_tokens,
            "input_tokens_details": {
                "cached_tokens": b["input_tokens_details"]["cached_tokens"] + u.cached_tokens,
                "cache_write_tokens": 0},
            "output_tokens": b["output_tokens"] + u.completion_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": b["total_tokens"] + (
                u.total_tokens or u.prompt_tokens + u.completion_tokens)}


class Builder:
    """Turns engine events into response events and the response's ``output``.

    Calls to ``server_names`` (tools the server runs) make no items here: ``run`` collects
    them and returns with the response still open, for the tool loop to run them.
    ``citations`` (file id, filename) annotate every finished text.
    """

    def __init__(self, response: dict[str, Any], server_names: frozenset[str] = frozenset(),
                 citations: list[tuple[str, str]] | None = None) -> None:
        self.response = response
        self.seq = 0
        self.text_item: dict[str, Any] | None = None
        self.text_parts: list[str] = []
        self.calls: dict[int, dict[str, Any]] = {}
        self.args: dict[int, list[str]] = {}
        self.server_names = server_names
        self.server_calls: dict[int, dict[str, Any]] = {}
        self.citations = citations or []
        self.last_done: Done | None = None

    def event(self, kind: str, **fields: Any) -> Event:
        payload = {"type": kind, "sequence_number": self.seq, **fields}
        self.seq += 1
        return kind, payload

    def snapshot(self) -> dict[str, Any]:
        return json.loads(json.dumps(self.response))

    def start(self) -> list[Event]:
        return [self.event("response.created", response=self.snapshot()),
                self.event("response.in_progress", response=self.snapshot())]

    # ------------------------------------------------------------------ whole items
    def add(self, item: dict[str, Any]) -> tuple[int, Event]:
        """Append ``item`` to the output: its index and ``output_item.added``."""
        index = len(self.response["output"])
        self.response["output"].append(item)
        return index, self.event("response.output_item.added", output_index=index,
                                 item=json.loads(json.dumps(item)))

    def done(self, index: int) -> Event:
        return self.event("response.output_item.done", output_index=index,
                          item=json.loads(json.dumps(self.response["output"][index])))

    def take_server_calls(self) -> list[ToolCall]:
        calls = [ToolCall(id=c["id"], name=c["name"], arguments="".join(c["args"]))
                 for _, c in sorted(self.server_calls.items())]
        self.server_calls = {}
        return calls

    # ------------------------------------------------------------------ text
    def _open_text(self) -> list[Event]:
        item = {"id": new_id("msg"), "type": "message", "role": "assistant",
                "status": "in_progress", "content": []}
        self.text_item = item
        index = len(self.response["output"])
        self.response["output"].append(item)
        self._text_index = index
        self._delta_pre = ('{"type":"response.output_text.delta","item_id":"' + item["id"]
                           + f'","output_index":{index},"content_index":0,"logprobs":[],'
                           '"sequence_number":')
        part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
        return [self.event("response.output_item.added", output_index=index, item=dict(item)),
                self.event("response.content_part.added", item_id=item["id"],
                           output_index=index, content_index=0, part=part)]

    def _close_text(self) -> list[Event]:
        item, self.text_item = self.text_item, None
        if item is None:
            return []
        text = "".join(self.text_parts)
        self.text_parts = []
        notes = [{"type": "file_citation", "file_id": file_id, "filename": name,
                  "index": len(text)} for file_id, name in self.citations]
        part = {"type": "output_text", "text": text, "annotations": notes, "logprobs": []}
        item["content"] = [part]
        item["status"] = "completed"
        where = {"item_id": item["id"], "output_index": self._text_index, "content_index": 0}
        added = [self.event("response.output_text.annotation.added", annotation_index=i,
                            annotation=note, **where) for i, note in enumerate(notes)]
        return [*added, self.event("response.output_text.done", text=text, logprobs=[], **where),
                self.event("response.content_part.done", part=part, **where),
                self.event("response.output_item.done", output_index=self._text_index,
                           item=item)]

    # ------------------------------------------------------------------ calls
    def _open_call(self, index: int, call_id: str, name: str) -> list[Event]:
        item = {"id": new_id("fc"), "type": "function_call", "status": "in_progress",
                "call_id": call_id, "name": name, "arguments": ""}
        item["_output_index"] = len(self.response["output"])
        self.response["output"].append(item)
        self.calls[index] = item
        self.args[index] = []
        shown = {k: v for k, v in item.items() if not k.startswith("_")}
        return [self.event("response.output_item.added", output_index=item["_output_index"],
                           item=shown)]

    def _close_calls(self) -> list[Event]:
        out = []
        for index in sorted(self.calls):
            item = self.calls[index]
            out_index = item.pop("_output_index")
            item["arguments"] = "".join(self.args[index])
            item["status"] = "completed"
            out.append(self.event("response.function_call_arguments.done", item_id=item["id"],
                                  output_index=out_index, name=item["name"],
                                  arguments=item["arguments"]))
            out.append(self.event("response.output_item.done", output_index=out_index,
                                  item=dict(item)))
        self.calls = {}
        return out

    # ------------------------------------------------------------------ main loop
    async def run(self, engine: AsyncIterator[Any]) -> AsyncIterator[Event | str]:
        """One generation's events; at its end the response is finished, unless the model
        called server tools (``take_server_calls``)."""
        said = False
        async for ev in engine:
            said = said or ev.type != "done"
            if ev.type == "tool_call" and (ev.index in self.server_calls or (
                    ev.index not in self.calls and ev.name in self.server_names)):
                call = self.server_calls.setdefault(ev.index, {
                    "id": ev.id or new_id("call"), "name": ev.name, "args": []})
                if ev.arguments:
                    call["args"].append(ev.arguments)
                continue
            if ev.type == "delta":
                if not ev.text:
                    continue
                if self.text_item is None:
                    for e in self._open_text():
                        yield e
                self.text_parts.append(ev.text)
                yield ("response.output_text.delta",
                       f'{self._delta_pre}{self.seq},"delta":'
                       f'{json.dumps(ev.text, ensure_ascii=False)}}}')
                self.seq += 1
            elif ev.type == "tool_call":
                if ev.index not in self.calls:
                    for e in self._close_text():
                        yield e
                    for e in self._open_call(ev.index, ev.id or new_id("call"), ev.name or ""):
                        yield e
                if ev.arguments:
                    self.args[ev.index].append(ev.arguments)
                    item = self.calls[ev.index]
                    yield self.event("response.function_call_arguments.delta",
                                     item_id=item["id"], output_index=item["_output_index"],
                                     delta=ev.arguments)
            else:
                if not said:
                    for e in self._open_text():  # an empty answer is still one message
                        yield e
                for e in self._close_text() + self._close_calls():
                    yield e
                self.response["usage"] = usage_of(ev, self.response.get("usage"))
                self.last_done = ev
                if not self.server_calls:
                    self.finish(ev)
                return
        raise ApiError("The engine ended the generation without a result")

    def final(self) -> Event:
        """The closing event (after ``run``): ``response.completed`` or ``.incomplete``."""
        kind = ("response.incomplete" if self.response["status"] == "incomplete"
                else "response.completed")
        return self.event(kind, response=self.snapshot())

    def finish(self, done: Done) -> None:
        r = self.response
        r["completed_at"] = int(time.time())
        if done.finish_reason == "length":
            r["status"] = "incomplete"
            r["incomplete_details"] = {"reason": "max_output_tokens"}
        else:
            r["status"] = "completed"

    def fail(self, code: str, message: str) -> Event:
        r = self.response
        r["status"] = "failed"
        r["error"] = {"code": code, "message": message}
        r["output"] = [o for o in r["output"] if o.get("status") == "completed"]
        return self.event("response.failed", response=self.snapshot())
