"""Function tools in assistant runs: which tools a run offers, how calls and their outputs are
kept in ``messages.jsonl`` and how they come back as chat turns, and run steps.

Storage follows Jan's own message files: the assistant message that made the calls carries
``metadata.tool_calls``, a list of ``{"tool": {id, type, function{name, arguments}},
"response": {"content": output} | null, "state": "pending" | "ready"}``. Jan's readers tolerate
it (metadata is free-form), and the next run of the thread sees the calls and their outputs.
Through the API, calls show as OpenAI shows them: in run steps and ``required_action``.
"""

from __future__ import annotations

import time
from typing import Any

from pydantic import ValidationError

from jan.sdk.errors import InvalidRequest
from jan.sdk.inference import ChatMessage, NamedToolChoice, Tool, ToolCall
from jan.sdk.models import new_id


def offered(req_tools: list[dict[str, Any]] | None, assistant_tools: list[Any]) -> list[Tool]:
    """The run's function tools: the request's ``tools`` override the assistant's."""
    source, field = (req_tools, "tools") if req_tools is not None else (assistant_tools, None)
    out = []
    for i, raw in enumerate(source or []):
        if not isinstance(raw, dict) or raw.get("type") != "function":
            continue  # retrieval, code_interpreter...: not function tools
        try:
            out.append(Tool.model_validate(raw))
        except ValidationError as exc:
            if field is None:
                continue  # a broken tool in assistant.json is skipped, not fatal
            raise InvalidRequest(f"Invalid 'tools[{i}]': {exc.errors()[0]['msg']}",
                                 param=f"tools[{i}]") from None
    return out


def choice(raw: Any, tools: list[Tool]) -> Any:
    if raw is None or raw == "auto" or not tools:
        return "auto" if raw in (None, "auto") or not tools else raw
    if raw in ("none", "required"):
        return raw
    name = raw.get("function", {}).get("name") if isinstance(raw, dict) else None
    if not isinstance(name, str) or name not in {t.function.name for t in tools}:
        raise InvalidRequest("Invalid 'tool_choice': expected 'auto', 'none', 'required' or a "
                             "function among the run's tools", param="tool_choice")
    return NamedToolChoice(function={"name": name})


def api_call(call: ToolCall) -> dict[str, Any]:
    return {"id": call.id, "type": "function",
            "function": {"name": call.name, "arguments": call.arguments}}


def records(calls: list[ToolCall], outputs: dict[str, str] | None = None) -> list[dict]:
    """Jan's ``metadata.tool_calls`` for an assistant message."""
    outputs = outputs or {}
    return [{"tool": api_call(c),
             "response": {"content": outputs[c.id]} if c.id in outputs else None,
             "state": "ready" if c.id in outputs else "pending"} for c in calls]


def turns(message: Any) -> list[ChatMessage]:
    """An assistant message with stored tool calls as chat turns (call + answered outputs);
    calls never answered (the run stopped) are left out, so no call dangles."""
    recs = message.metadata.get("tool_calls") if isinstance(message.metadata, dict) else None
    if not isinstance(recs, list):
        return []
    calls, answers = [], []
    for r in recs:
        try:
            fn, resp = r["tool"]["function"], r.get("response")
            if not isinstance(resp, dict):
                continue
            call = ToolCall(id=r["tool"]["id"], name=fn["name"], arguments=fn["arguments"])
        except (KeyError, TypeError, ValidationError):
            continue
        calls.append(call)
        answers.append(ChatMessage(role="tool", tool_call_id=call.id, name=call.name,
                                   content=str(resp.get("content", ""))))
    if not calls:
        return []
    return [ChatMessage(role="assistant", content=message.text or None, tool_calls=calls),
            *answers]


def step(run: Any, kind: str, details: dict[str, Any], status: str = "in_progress"
         ) -> dict[str, Any]:
    """A ``thread.run.step`` object."""
    return {"id": new_id("step"), "object": "thread.run.step", "created_at": int(time.time()),
            "run_id": run.id, "assistant_id": run.assistant_id, "thread_id": run.thread_id,
            "type": kind, "status": status, "cancelled_at": None, "completed_at": None,
            "expired_at": None, "failed_at": None, "last_error": None,
            "step_details": {"type": kind, kind: details}, "usage": None, "metadata": {}}


def check_outputs(pending: list[ToolCall], outputs: list[dict[str, Any]]) -> dict[str, str]:
    """``tool_outputs`` must answer every pending call exactly once."""
    ids = {c.id for c in pending}
    got: dict[str, str] = {}
    for i, o in enumerate(outputs):
        cid = o.get("tool_call_id")
        if cid not in ids:
            raise InvalidRequest(f"Invalid 'tool_outputs[{i}].tool_call_id': {cid!r} is not a "
                                 "pending tool call of this run",
                                 param=f"tool_outputs[{i}].tool_call_id")
        if cid in got:
            raise InvalidRequest(f"Invalid 'tool_outputs[{i}].tool_call_id': {cid!r} answered "
                                 "twice", param=f"tool_outputs[{i}].tool_call_id")
        got[cid] = o.get("output") or ""
    missing = [c.id for c in pending if c.id not in got]
    if missing:
        raise InvalidRequest(f"Missing tool outputs for tool calls: {', '.join(missing)}",
                             param="tool_outputs")
    return got
