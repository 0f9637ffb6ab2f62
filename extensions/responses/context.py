"""What one response is generated from: its model, instructions, tools and the history.

Precedence for sampling, lowest first: engine defaults < ``model.json`` ``parameters`` <
assistant < request (``stop`` accumulates, like everywhere else). Instructions are never carried
over a ``previous_response_id`` chain (as the specification says): only this request's, or its
assistant's, apply.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from jan.sdk.errors import InvalidRequest, NotFound
from jan.sdk.inference import (
    GenerationRequest,
    LoadSpec,
    NamedToolChoice,
    Tool,
    ToolFunction,
    merge_stops,
)
from jan.sdk.models import Assistant
from jan.sdk.services import every
from jan.sdk.tools import short_name

from . import items as it
from .schemas import (
    FileSearchTool,
    FunctionChoice,
    FunctionTool,
    McpChoice,
    McpTool,
    ResponseCreate,
)

SAMPLING = ("max_tokens", "temperature", "top_p", "top_k", "min_p", "frequency_penalty",
            "presence_penalty", "repeat_penalty", "seed")


@dataclass
class Plan:
    """Everything decided before generating."""

    req: ResponseCreate
    model: str
    instructions: str | None
    tools: list[FunctionTool]
    history: list[dict[str, Any]]
    input_items: list[dict[str, Any]]
    conversation_id: str | None
    assistant: Assistant | None = None
    code: bool = False
    spec: LoadSpec | None = None
    gen: GenerationRequest | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    input_saved: bool = False
    mcp: list[McpTool] = field(default_factory=list)
    file_search: FileSearchTool | None = None
    server: dict[str, Any] = field(default_factory=dict)
    """Function name the model sees -> ``ToolInfo`` of an MCP tool the server runs."""
    pre_items: list[dict[str, Any]] = field(default_factory=list)
    """Output items made before generating (tool listings, approved calls, file search)."""
    found: Any = None
    """The files service's passages for ``file_search`` (``.instructions``, ``.hits``)."""


def _layer(values: Any) -> dict[str, Any]:
    if values is None:
        return {}
    if hasattr(values, "model_dump"):
        values = values.model_dump(exclude_none=True)
    return {k: v for k, v in dict(values).items() if v is not None} if isinstance(
        values, dict) else {}


def _assistant_tools(assistant: Assistant) -> list[FunctionTool]:
    """An assistant's function tools (Assistants-API shape or Responses shape)."""
    out = []
    for tool in assistant.tools:
        if not isinstance(tool, dict) or tool.get("type") != "function":
            continue
        fn = tool.get("function") if isinstance(tool.get("function"), dict) else tool
        try:
            out.append(FunctionTool(type="function", name=fn.get("name"),
                                    description=fn.get("description"),
                                    parameters=fn.get("parameters"), strict=fn.get("strict")))
        except ValueError:
            continue
    return out


async def history_of(svc: Any, store: Any, req: ResponseCreate, limit: int
                     ) -> tuple[list[dict[str, Any]], str | None]:
    """The items before this turn, and the conversation (thread) id if there is one."""
    if req.previous_response_id:
        records = await store.chain(req.previous_response_id, limit)
        history: list[dict[str, Any]] = []
        for record in records:
            history += record.get("input") or []
            history += [o for o in record["response"].get("output") or []
                        if o.get("type") in it.KEPT]
        return history, None
    conv = req.conversation_id
    if conv is None:
        return [], None
    try:
        await svc("threads").get(conv)
    except NotFound:
        raise NotFound(f"No conversation found with id '{conv}'", param="conversation",
                       code="not_found") from None
    messages = [m async for m in every(svc("messages").list, conv, order="asc")]
    return [it.from_message(m) for m in messages[-limit:]], conv


async def assistant_of(svc: Any, req: ResponseCreate) -> Assistant | None:
    if not req.assistant_id:
        return None
    try:
        return await svc("assistants").get(req.assistant_id)
    except NotFound:
        param = "assistant" if req.assistant else "prompt.id"
        raise NotFound(f"No assistant found with id '{req.assistant_id}'", param=param) from None


async def plan(svc: Any, store: Any, req: ResponseCreate, history_limit: int) -> Plan:
    assistant = await assistant_of(svc, req)
    history, conv = await history_of(svc, store, req, history_limit)
    known = {i["id"]: i for i in history if isinstance(i.get("id"), str)}
    input_items = it.resolve(it.normalize(req.input), known)
    if not input_items and not history:
        raise InvalidRequest("Missing required parameter: 'input'", param="input")
    instructions = req.instructions
    tools = [t for t in req.tools or [] if isinstance(t, FunctionTool)]
    model = req.model
    if assistant is not None:
        if instructions is None:
            instructions = assistant.instructions
        names = {t.name for t in tools}
        tools += [t for t in _assistant_tools(assistant) if t.name not in names]
        if not model or model == "*":
            model = assistant.model
    if not model:
        raise InvalidRequest("Missing required parameter: 'model'", param="model")
    return Plan(req=req, model=model, instructions=instructions, tools=tools, history=history,
                input_items=input_items, conversation_id=conv, assistant=assistant,
                mcp=[t for t in req.tools or [] if isinstance(t, McpTool)],
                file_search=next((t for t in req.tools or []
                                  if isinstance(t, FileSearchTool)), None))


async def resolve_model(svc: Any, p: Plan) -> None:
    """Pick the concrete model and its load spec (unknown ids are a 404 naming ``model``)."""
    registry = svc("models")
    model = p.model
    if model == "*":
        model = await registry.default_model()
        if not model:
            raise NotFound("No model is available: add a GGUF to the models folder or run "
                           "`jan models pull`", param="model", code="model_not_found")
    entry = await registry.get(model)
    p.model = entry.id
    p.spec = registry.load_spec(entry)
    p.parameters = _layer(entry.parameters)


def turn(p: Plan) -> list[dict[str, Any]]:
    """This turn's items for the model: the input, then the calls approved in it."""
    return p.input_items + [i for i in p.pre_items if i["type"] == "mcp_call"]


def tool_choice(req: ResponseCreate) -> Any:
    choice = req.tool_choice
    if choice is None:
        return "auto"
    if isinstance(choice, str):
        return choice
    if isinstance(choice, McpChoice):
        return choice
    return NamedToolChoice(function={"name": choice.name})


def _engine_choice(p: Plan) -> Any:
    """``tool_choice`` for the engine: an MCP choice names one of the server's tools (or any
    tool, ``required``, without a name)."""
    choice = tool_choice(p.req)
    if not isinstance(choice, McpChoice):
        return choice
    if choice.server_label not in {t.server_label for t in p.mcp}:
        raise InvalidRequest(f"Invalid 'tool_choice.server_label': no mcp tool for server "
                             f"{choice.server_label!r} in 'tools'",
                             param="tool_choice.server_label")
    if choice.name is None:
        return "required"
    for name, (label, info) in p.server.items():
        if label == choice.server_label and short_name(info) == choice.name:
            return NamedToolChoice(function={"name": name})
    raise InvalidRequest(f"Invalid 'tool_choice.name': MCP server {choice.server_label!r} has "
                         f"no allowed tool {choice.name!r}", param="tool_choice.name")


def offered(p: Plan) -> list[Tool]:
    """Function tools and the MCP servers' tools, as the model sees them."""
    out = [Tool(function=ToolFunction(name=t.name, description=t.description,
                                      parameters=t.parameters, strict=t.strict))
           for t in p.tools]
    out += [Tool(function=ToolFunction(name=name, description=info.description,
                                       parameters=info.parameters or None))
            for name, (_label, info) in p.server.items()]
    return out


def generation(p: Plan, items: list[dict[str, Any]]) -> GenerationRequest:
    req = p.req
    layers = [p.parameters]
    if p.assistant is not None:
        extra = dict(p.assistant.model_extra or {})
        layers.append({k: extra[k] for k in SAMPLING if k in extra})
    layers.append(_layer({"temperature": req.temperature, "top_p": req.top_p,
                          "max_tokens": req.max_output_tokens}))
    fields: dict[str, Any] = {}
    for layer in layers:
        fields.update({k: v for k, v in layer.items() if k in SAMPLING})
    fields["stop"] = merge_stops(*(layer.get("stop") for layer in layers))
    fmt = req.text.format if req.text else None
    if fmt is not None and fmt.type == "json_object":
        fields["json_object"] = True
    elif fmt is not None and fmt.type == "json_schema":
        if fmt.schema_:
            fields["json_schema"] = fmt.schema_
        else:
            fields["json_object"] = True
    tools = offered(p)
    if tools and tool_choice(req) != "none":
        fields["tools"] = tools
        fields["tool_choice"] = _engine_choice(p)
        fields["parallel_tool_calls"] = req.parallel_tool_calls is not False
    names = {t.name for t in p.tools}
    choice = req.tool_choice
    if isinstance(choice, FunctionChoice) and choice.name not in names:
        raise InvalidRequest(f"Invalid 'tool_choice.name': no function tool named "
                             f"{choice.name!r} in 'tools'", param="tool_choice.name")
    if choice == "required" and not tools:
        raise InvalidRequest("Invalid 'tool_choice': 'required' needs at least one tool",
                             param="tool_choice")
    instructions = p.instructions
    if p.found is not None and p.found.instructions:
        instructions = (instructions or "") + p.found.instructions
    try:
        return GenerationRequest(messages=it.to_chat(items, instructions), **fields)
    except ValueError as exc:
        raise InvalidRequest(f"Model '{p.model}' has invalid parameters in its model.json: "
                             f"{exc}", code="invalid_model_config") from None
