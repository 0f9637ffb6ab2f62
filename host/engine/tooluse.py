"""What a request's tools mean for one generation: the grammar that constrains calls, and the
generic tool prompt for templates that know nothing of tools.

- ``required`` / a named tool: the grammar applies from the first token (the reply *is* calls;
  a named tool gives exactly one call).
- ``auto``: a lazy grammar (llama.cpp's ``grammar_lazy_patterns``): free text until a trigger of
  the family's call syntax appears, then everything from the trigger on is constrained, inside
  the same sampler chain, so the step loop never waits for it.
- ``none``: no grammar, and the tools are left out of the prompt.
Arguments are constrained by each tool's JSON schema (llama-cpp-python's converter).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from llama_cpp.llama_grammar import json_schema_to_gbnf

from jan.sdk.inference import ChatMessage, GenerationRequest, NamedToolChoice, Tool

from .errors import RequestError
from .toolsyntax import CallSyntax

ANY_OBJECT: dict[str, Any] = {"type": "object"}


@dataclass
class ToolPlan:
    syntax: CallSyntax
    grammar: str
    lazy: list[str] | None  # trigger patterns (auto); None = constrained from the first token


def active_tools(req: GenerationRequest) -> list[Tool]:
    """The tools the model may call in this request (none when ``tool_choice`` is none)."""
    if not req.tools or req.tool_choice == "none":
        return []
    if isinstance(req.tool_choice, NamedToolChoice):
        return [t for t in req.tools if t.function.name == req.tool_choice.name]
    return list(req.tools)


def plan(req: GenerationRequest, syntax: CallSyntax) -> ToolPlan | None:
    tools = active_tools(req)
    if not tools:
        if isinstance(req.tool_choice, NamedToolChoice):
            raise RequestError(f"tool_choice names '{req.tool_choice.name}', which is not in "
                               "tools", param="tool_choice")
        if req.tool_choice == "required":
            raise RequestError("tool_choice 'required' needs at least one tool",
                               param="tool_choice")
        return None
    obj = _object_rules(req.tools or [], tools, syntax)
    # A named tool is one call: small models otherwise keep calling it with ever new
    # arguments until max_tokens (instructor, for one, then sees a cut-off reply).
    named = isinstance(req.tool_choice, NamedToolChoice)
    parallel = req.parallel_tool_calls and syntax.parallel and not named
    grammar = _root(syntax, parallel) + obj
    lazy = _lazy_patterns(syntax) if req.tool_choice == "auto" else None
    return ToolPlan(syntax=syntax, grammar=grammar, lazy=lazy)


def _call_schema(tool: Tool, syntax: CallSyntax) -> dict[str, Any]:
    params = tool.function.parameters or ANY_OBJECT
    return {"type": "object",
            "properties": {"name": {"const": tool.function.name}, syntax.args_key: params},
            "required": ["name", syntax.args_key]}


def _object_rules(all_tools: list[Tool], tools: list[Tool], syntax: CallSyntax) -> str:
    """GBNF for one call object ``{"name": ..., "arguments": ...}`` (rule ``tc-obj``)."""
    schemas = [_call_schema(t, syntax) for t in tools]
    schema = schemas[0] if len(schemas) == 1 else {"anyOf": schemas}
    try:
        gbnf = json_schema_to_gbnf(json.dumps(schema))
    except Exception as exc:  # the converter raises plain errors on what it cannot map
        bad = _failing_tool(all_tools, syntax)
        raise RequestError(f"Invalid schema for function '{all_tools[bad].function.name}': "
                           f"{exc}", param=f"tools[{bad}].function.parameters") from exc
    return re.sub(r"^root ::= ", "tc-obj ::= ", gbnf, count=1, flags=re.M)


def _failing_tool(tools: list[Tool], syntax: CallSyntax) -> int:
    for i, tool in enumerate(tools):
        try:
            json_schema_to_gbnf(json.dumps(_call_schema(tool, syntax)))
        except Exception:  # noqa: BLE001 - looking for the one that fails
            return i
    return 0


def _lit(text: str) -> str:
    return json.dumps(text)


def _root(syntax: CallSyntax, parallel: bool) -> str:
    ws = 'tc-ws ::= [ \\t\\n]? [ \\t\\n]?\n'
    if syntax.list_form:
        more = ' ("," tc-ws tc-obj)*' if parallel else ""
        return (f'root ::= {_lit(syntax.starts[0])} tc-ws "[" tc-ws tc-obj{more} "]"\n' + ws)
    start = _lit(syntax.starts[0])
    if syntax.bare_json:
        call = f"({start})? tc-ws tc-obj"
    else:
        end = f" tc-ws {_lit(syntax.end)}" if syntax.end else ""
        call = f"{start} tc-ws tc-obj{end}"
    more = " (tc-ws tc-call)*" if parallel else ""
    return f"root ::= tc-call{more}\ntc-call ::= {call}\n" + ws


def _lazy_patterns(syntax: CallSyntax) -> list[str]:
    """Whole-buffer regexes (std::regex_match); the first group is where the grammar starts."""
    pats = [r"[\s\S]*?(" + re.escape(s) + r")[\s\S]*" for s in syntax.starts]
    if syntax.bare_json:
        pats.append(r"\s*(\{)[\s\S]*")
    return pats


# -- the generic tool prompt (templates that ignore tools) ----------------------------------
def generic_messages(req: GenerationRequest, syntax: CallSyntax) -> list[ChatMessage]:
    """The request's messages with tools described in the system prompt and tool turns
    rendered as text in ``syntax``, for templates that know nothing of tools."""
    out: list[ChatMessage] = []
    for m in req.messages or []:
        if m.role == "assistant" and m.tool_calls:
            calls = "\n".join(call_text(c.name, c.arguments, syntax) for c in m.tool_calls)
            text = f"{m.content}\n{calls}" if m.content else calls
            out.append(ChatMessage(role="assistant", content=text))
        elif m.role == "tool":
            out.append(ChatMessage(role="user", content=(
                f"<tool_response>\n{m.content or ''}\n</tool_response>")))
        else:
            out.append(m)
    tools = active_tools(req)
    if tools:
        intro = tool_prompt(tools, req, syntax)
        if out and out[0].role == "system":
            out[0] = ChatMessage(role="system", content=f"{out[0].content or ''}\n\n{intro}")
        else:
            out.insert(0, ChatMessage(role="system", content=intro))
    return out


def call_text(name: str, arguments: str, syntax: CallSyntax) -> str:
    try:
        args = json.loads(arguments or "{}")
    except ValueError:
        args = arguments
    body = json.dumps({"name": name, syntax.args_key: args}, ensure_ascii=False)
    if syntax.list_form:
        return f"{syntax.starts[0]}[{body}]"
    return f"{syntax.starts[0]}\n{body}\n{syntax.end}" if syntax.end else body


def tool_prompt(tools: list[Tool], req: GenerationRequest, syntax: CallSyntax) -> str:
    specs = "\n".join(json.dumps({"name": t.function.name,
                                  "description": t.function.description or "",
                                  "parameters": t.function.parameters or ANY_OBJECT},
                                 ensure_ascii=False) for t in tools)
    example = call_text("function_name", '{"argument": "value"}', syntax)
    if isinstance(req.tool_choice, NamedToolChoice):
        when = f"Call the function {req.tool_choice.name} now."
    elif req.tool_choice == "required":
        when = "You must call one of the functions now."
    else:
        when = ("Call a function only when it helps to answer; otherwise answer the user "
                "directly.")
    return (f"You can call these functions:\n{specs}\n\nTo call a function, reply with exactly:"
            f"\n{example}\n{when}")
