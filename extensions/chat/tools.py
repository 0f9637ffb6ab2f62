"""Tool calling in chat requests: ``tools``/``tool_choice``/``parallel_tool_calls``, the legacy
``functions``/``function_call`` pair, and the tool turns inside ``messages``.

Everything is checked here with 400s naming the exact field; what the engine gets is the
``jan.sdk.inference`` contract (``Tool``, ``ToolChoice``, ``ChatMessage.tool_calls``...). Whether a
tool's JSON schema can be compiled to a grammar is the engine's call (it answers a 400 naming
``tools[i].function.parameters`` before the response starts).
"""

from __future__ import annotations

import re
from typing import Any

from jan.sdk.errors import InvalidRequest
from jan.sdk.inference import ChatMessage, NamedToolChoice, Tool, ToolCall, ToolFunction

NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_TOOLS = 128  # as OpenAI


def _bad(where: str, why: str) -> InvalidRequest:
    return InvalidRequest(f"Invalid '{where}': {why}", param=where)


def _function(raw: Any, where: str) -> ToolFunction:
    if not isinstance(raw, dict):
        raise _bad(where, "expected an object")
    name = raw.get("name")
    if not isinstance(name, str) or not NAME.match(name):
        raise _bad(f"{where}.name", "expected a name of 1 to 64 letters, digits, _ or -")
    desc = raw.get("description")
    if desc is not None and not isinstance(desc, str):
        raise _bad(f"{where}.description", "expected a string")
    params = raw.get("parameters")
    if params is not None and (not isinstance(params, dict)
                               or params.get("type", "object") != "object"):
        raise _bad(f"{where}.parameters", "expected a JSON schema of type 'object'")
    strict = raw.get("strict")
    if strict is not None and not isinstance(strict, bool):
        raise _bad(f"{where}.strict", "expected a boolean")
    return ToolFunction(name=name, description=desc, parameters=params, strict=strict)


def parse_tools(data: dict[str, Any]) -> tuple[list[Tool] | None, Any, bool, bool]:
    """``(tools, tool_choice, parallel_tool_calls, legacy)`` from a request body."""
    tools_raw, functions = data.get("tools"), data.get("functions")
    if tools_raw and functions:
        raise InvalidRequest("Send either 'tools' or the legacy 'functions', not both",
                             param="functions")
    legacy = bool(functions) and not tools_raw
    if legacy:
        if not isinstance(functions, list):
            raise _bad("functions", "expected an array")
        tools = [Tool(function=_function(f, f"functions[{i}]")) for i, f in enumerate(functions)]
        choice = _choice(data.get("function_call"), "function_call", tools, legacy=True)
        parallel = False
    else:
        tools = _tools(tools_raw)
        choice = _choice(data.get("tool_choice"), "tool_choice", tools, legacy=False)
        parallel = data.get("parallel_tool_calls", True)
        if parallel is None:
            parallel = True
        if not isinstance(parallel, bool):
            raise _bad("parallel_tool_calls", "expected a boolean")
    if len(tools) > MAX_TOOLS:
        raise _bad("tools", f"at most {MAX_TOOLS} tools are allowed")
    names = [t.function.name for t in tools]
    for i, name in enumerate(names):
        if name in names[:i]:
            field = "functions" if legacy else "tools"
            raise _bad(f"{field}[{i}].function.name" if not legacy else f"{field}[{i}].name",
                       f"duplicate function name '{name}'")
    return (tools or None), choice, parallel, legacy


def _tools(raw: Any) -> list[Tool]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise _bad("tools", "expected an array")
    out = []
    for i, t in enumerate(raw):
        if not isinstance(t, dict):
            raise _bad(f"tools[{i}]", "expected an object")
        if t.get("type", "function") != "function":
            raise _bad(f"tools[{i}].type", f"only 'function' tools are supported, got "
                       f"{t.get('type')!r}")
        if "function" not in t:
            raise InvalidRequest(f"Missing required parameter: 'tools[{i}].function'",
                                 param=f"tools[{i}].function")
        out.append(Tool(function=_function(t["function"], f"tools[{i}].function")))
    return out


def _choice(raw: Any, field: str, tools: list[Tool], legacy: bool) -> Any:
    if raw is None:
        return "auto"
    names = {t.function.name for t in tools}
    if raw in ("auto", "none") or (raw == "required" and not legacy):
        if raw == "required" and not tools:
            raise _bad(field, "'required' needs at least one tool in 'tools'")
        return raw
    name = None
    if isinstance(raw, dict):
        fn = raw.get("function") if not legacy else raw
        if not legacy and raw.get("type", "function") != "function":
            raise _bad(f"{field}.type", "expected 'function'")
        name = fn.get("name") if isinstance(fn, dict) else None
    if not isinstance(name, str):
        allowed = "'none', 'auto' or {\"name\": ...}" if legacy else \
            "'none', 'auto', 'required' or {\"type\": \"function\", \"function\": {\"name\": ...}}"
        raise _bad(field, f"expected {allowed}")
    if name not in names:
        raise _bad(field, f"names function '{name}', which is not among the "
                   f"{'functions' if legacy else 'tools'}")
    return NamedToolChoice(function={"name": name})


def assistant_calls(msg: dict[str, Any], i: int) -> list[ToolCall] | None:
    """An assistant message's ``tool_calls`` (or legacy ``function_call``), checked."""
    raw, legacy = msg.get("tool_calls"), msg.get("function_call")
    if legacy and not raw:
        fn = _call_function(legacy, f"messages[{i}].function_call")
        return [ToolCall(id=f"call_fn{i}", name=fn[0], arguments=fn[1])]
    if raw is None or raw == []:
        return None
    if not isinstance(raw, list):
        raise _bad(f"messages[{i}].tool_calls", "expected an array")
    calls = []
    for j, c in enumerate(raw):
        where = f"messages[{i}].tool_calls[{j}]"
        if not isinstance(c, dict):
            raise _bad(where, "expected an object")
        cid = c.get("id")
        if not isinstance(cid, str) or not cid:
            raise _bad(f"{where}.id", "expected a non-empty string")
        if c.get("type", "function") != "function":
            raise _bad(f"{where}.type", "expected 'function'")
        name, args = _call_function(c.get("function"), f"{where}.function")
        calls.append(ToolCall(id=cid, name=name, arguments=args))
    return calls


def _call_function(fn: Any, where: str) -> tuple[str, str]:
    if not isinstance(fn, dict):
        raise _bad(where, "expected an object with 'name' and 'arguments'")
    name, args = fn.get("name"), fn.get("arguments", "")
    if not isinstance(name, str) or not name:
        raise _bad(f"{where}.name", "expected a non-empty string")
    if not isinstance(args, str):
        raise _bad(f"{where}.arguments", "expected a string (JSON text)")
    return name, args


def link_tool_turns(messages: list[ChatMessage], raw: list[dict[str, Any]]) -> None:
    """Every ``tool`` turn must answer a call made earlier in the conversation; legacy
    ``function`` turns (which carry only a name) are linked to the latest such call."""
    open_calls: dict[str, str] = {}  # id -> name, not yet answered
    for i, m in enumerate(messages):
        if m.role == "assistant" and m.tool_calls:
            open_calls.update({c.id: c.name for c in m.tool_calls})
        elif m.role == "tool":
            if raw[i].get("role") == "function":
                ids = [cid for cid, n in open_calls.items() if n == m.name]
                if not ids:
                    raise _bad(f"messages[{i}].name", f"no earlier function_call of "
                               f"'{m.name}' for this function message to answer")
                m.tool_call_id = ids[-1]
            if m.tool_call_id not in open_calls:
                raise _bad(f"messages[{i}].tool_call_id", f"'{m.tool_call_id}' does not match "
                           "a tool call of an earlier assistant message")
            m.name = m.name or open_calls[m.tool_call_id]
            open_calls.pop(m.tool_call_id)


def tool_turn(msg: dict[str, Any], i: int, content: str) -> ChatMessage:
    """A ``tool`` (or legacy ``function``) message."""
    if msg.get("role") == "function":
        name = msg.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidRequest(f"Missing required parameter: 'messages[{i}].name'",
                                 param=f"messages[{i}].name")
        return ChatMessage(role="tool", content=content, name=name)
    cid = msg.get("tool_call_id")
    if not isinstance(cid, str) or not cid:
        raise InvalidRequest(f"Missing required parameter: 'messages[{i}].tool_call_id'",
                             param=f"messages[{i}].tool_call_id")
    return ChatMessage(role="tool", content=content, tool_call_id=cid)
