"""Tool calls on the way out: reassembling ``ToolCallDelta`` events (non-streamed replies) and
the canonical streamed delta shape.

Streaming, as OpenAI's own: the first delta of call ``i`` carries ``index``, ``id``, ``type`` and
``function.name`` with empty ``arguments``; later deltas carry only ``index`` and an argument
fragment. The name is never repeated (repeating it broke LangChain's accumulation in llama.cpp's
server). Legacy ``functions`` requests get ``function_call`` deltas instead.
"""

from __future__ import annotations

import json

from jan.sdk.inference import ToolCall, ToolCallDelta


class CallsOut:
    """Reassembles calls from their pieces."""

    def __init__(self) -> None:
        self._calls: dict[int, ToolCall] = {}

    def add(self, ev: ToolCallDelta) -> None:
        call = self._calls.get(ev.index)
        if call is None:
            self._calls[ev.index] = ToolCall(id=ev.id or f"call_{ev.index}", name=ev.name or "",
                                             arguments=ev.arguments)
        else:
            call.arguments += ev.arguments

    def calls(self) -> list[ToolCall]:
        return [self._calls[i] for i in sorted(self._calls)]


def _dumps(obj: object) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def tool_delta(ev: ToolCallDelta, legacy: bool) -> dict:
    if legacy:
        fn = {"name": ev.name, "arguments": ""} if ev.name is not None else \
            {"arguments": ev.arguments}
        return {"function_call": fn}
    if ev.name is not None:
        item = {"index": ev.index, "id": ev.id, "type": "function",
                "function": {"name": ev.name, "arguments": ""}}
    else:
        item = {"index": ev.index, "function": {"arguments": ev.arguments}}
    return {"tool_calls": [item]}


def tool_delta_json(ev: ToolCallDelta, legacy: bool) -> str:
    return _dumps(tool_delta(ev, legacy))


def first_chunk_delta(ev: object, legacy: bool) -> str:
    """The first chunk's delta: the role, plus the call's header if the reply starts with one."""
    if isinstance(ev, ToolCallDelta):
        return _dumps({"role": "assistant", "content": None, "refusal": None,
                       **tool_delta(ev, legacy)})
    return '{"role":"assistant","content":"","refusal":null}'
