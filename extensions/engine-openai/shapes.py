"""GenerationRequest -> an OpenAI request body, and OpenAI stream chunks -> engine events."""

from __future__ import annotations

from typing import Any

from jan.sdk import InvalidRequest
from jan.sdk.inference import (
    ChatMessage,
    Delta,
    GenerationRequest,
    ToolCallDelta,
)

from .config import Provider

_LLAMA_ONLY = ("top_k", "min_p", "repeat_penalty", "grammar")
_DEFAULTS = {k: GenerationRequest.model_fields[k].default for k in _LLAMA_ONLY}


def _message(m: ChatMessage) -> dict[str, Any]:
    out: dict[str, Any] = {"role": m.role, "content": m.content}
    if m.tool_calls:
        out["tool_calls"] = [{"id": c.id, "type": "function",
                              "function": {"name": c.name, "arguments": c.arguments}}
                             for c in m.tool_calls]
    if m.tool_call_id:
        out["tool_call_id"] = m.tool_call_id
    if m.name:
        out["name"] = m.name
    return out


def request_body(provider: Provider, model: str, req: GenerationRequest) -> tuple[str, dict]:
    """(path, body) for the upstream; parameters it cannot take are a 400, never dropped."""
    caps = provider.capabilities
    body: dict[str, Any] = {"model": model, "stream": True,
                            "stream_options": {"include_usage": True},
                            "temperature": req.temperature, "top_p": req.top_p}
    if req.messages is not None:
        path = "/chat/completions"
        body["messages"] = [_message(m) for m in req.messages]
    else:
        if not caps.completions:
            raise InvalidRequest(f"engine '{provider.id}' does not take completions "
                                 "(prompt); use chat messages", param="prompt")
        path = "/completions"
        body["prompt"] = req.prompt or ""
    for key in ("max_tokens", "seed"):
        if getattr(req, key) is not None:
            body[key] = getattr(req, key)
    if req.stop:
        body["stop"] = req.stop[:4]
    if req.frequency_penalty:
        body["frequency_penalty"] = req.frequency_penalty
    if req.presence_penalty:
        body["presence_penalty"] = req.presence_penalty
    if req.json_schema is not None:
        body["response_format"] = {"type": "json_schema",
                                   "json_schema": {"name": "output", "schema": req.json_schema}}
    elif req.json_object:
        body["response_format"] = {"type": "json_object"}
    if caps.llama_params:
        body.update(top_k=req.top_k, min_p=req.min_p, repeat_penalty=req.repeat_penalty)
        if req.grammar:
            body["grammar"] = req.grammar
    else:  # an OpenAI-only upstream: a llama.cpp sampling key that changes anything is a 400
        for key in _LLAMA_ONLY:
            if getattr(req, key) != _DEFAULTS[key]:
                raise InvalidRequest(f"engine '{provider.id}' does not take {key} (set "
                                     "capabilities.llama_params if it does)", param=key)
    if req.tools:
        if not caps.tools:
            raise InvalidRequest(f"engine '{provider.id}' does not take tools", param="tools")
        body["tools"] = [t.model_dump(exclude_none=True) for t in req.tools]
        choice = req.tool_choice
        body["tool_choice"] = choice if isinstance(choice, str) else choice.model_dump()
        body["parallel_tool_calls"] = req.parallel_tool_calls
    return path, body


class ChunkReader:
    """Turns decoded stream chunks into Delta/ToolCallDelta events; keeps finish and usage."""

    def __init__(self) -> None:
        self.finish: str | None = None
        self.usage: dict[str, Any] = {}
        self._named: set[int] = set()

    def read(self, chunk: dict[str, Any]) -> list[Delta | ToolCallDelta]:
        if isinstance(chunk.get("usage"), dict):
            self.usage = chunk["usage"]
        out: list[Delta | ToolCallDelta] = []
        for choice in chunk.get("choices") or []:
            if choice.get("finish_reason"):
                self.finish = choice["finish_reason"]
            text = choice.get("text")
            delta = choice.get("delta") or {}
            text = delta.get("content") if text is None else text
            if isinstance(text, str) and text:
                out.append(Delta(text=text))
            for call in delta.get("tool_calls") or []:
                out += self._call(call)
        return out

    def _call(self, call: dict[str, Any]) -> list[ToolCallDelta]:
        index = int(call.get("index", 0))
        fn = call.get("function") or {}
        args = fn.get("arguments") or ""
        out: list[ToolCallDelta] = []
        if index not in self._named:  # the contract: id and name first, then arguments
            self._named.add(index)
            out.append(ToolCallDelta(index=index, id=call.get("id") or f"call_{index}",
                                     name=fn.get("name") or ""))
        if args:
            out.append(ToolCallDelta(index=index, arguments=args))
        return out

    def finish_reason(self) -> str:
        reason = self.finish or "stop"
        return reason if reason in ("stop", "length", "tool_calls") else "stop"
