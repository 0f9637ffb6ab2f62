"""``POST /v1/responses`` request bodies: what we honour is validated, what we cannot is a 400.

Unknown fields are refused by name (OpenAI does the same), and fields we know but cannot honour
(``reasoning``, ``include`` of anything but file search results, tools other than function,
``mcp`` and ``file_search``...) are refused when they carry a value, so no request is silently
answered differently from what it asked.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from jan.sdk.errors import InvalidRequest
from jan.sdk.http import parse
from jan.sdk.openai_shapes import check_metadata

Metadata = Annotated[dict[str, str] | None, BeforeValidator(check_metadata)]

# Known to the specification, accepted only when empty (null, false, [] or {}).
UNSUPPORTED = ("reasoning", "prompt_cache_key", "top_logprobs", "service_tier",
               "safety_identifier", "stream_options", "context_management")
# Accepted and ignored because they never change an answer here.
IGNORED = ("user",)
INCLUDABLE = ("file_search_call.results",)
TOOL_TYPES = ("function", "mcp", "file_search")


class FormatText(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["text"]


class FormatJsonObject(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["json_object"]


class FormatJsonSchema(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["json_schema"]
    name: str = Field(max_length=64)
    schema_: dict[str, Any] = Field(alias="schema")
    description: str | None = None
    strict: bool | None = None


class TextConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    format: FormatText | FormatJsonObject | FormatJsonSchema | None = None
    verbosity: Literal["medium"] | None = None


class FunctionTool(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["function"]
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class McpTool(BaseModel):
    """An MCP server from ``mcp_config.json``, by its name: its calls run here (see
    ``server_tools``). ``require_approval: "always"`` asks even where the user's policy
    would not; ``"never"`` cannot loosen the policy stored in the data folder."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["mcp"]
    server_label: str = Field(min_length=1, max_length=64)
    allowed_tools: list[str] | dict[str, Any] | None = None
    require_approval: Literal["always", "never"] | dict[str, Any] | None = None
    server_description: str | None = None

    @property
    def allowed(self) -> list[str] | None:
        """Tool names the model may call (``None``: all of the server's)."""
        value = self.allowed_tools
        if isinstance(value, dict):
            value = value.get("tool_names")
        return [v for v in value if isinstance(v, str)] if isinstance(value, list) else None


class FileSearchTool(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["file_search"]
    vector_store_ids: list[str] = Field(min_length=1, max_length=16)
    max_num_results: int | None = Field(default=None, ge=1, le=50)
    filters: dict[str, Any] | None = None
    ranking_options: dict[str, Any] | None = None


class FunctionChoice(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["function"]
    name: str


class McpChoice(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["mcp"]
    server_label: str
    name: str | None = None


class PromptRef(BaseModel):
    """``prompt``: here ``id`` names an assistant (its model, instructions and tools)."""

    model_config = ConfigDict(extra="forbid")
    id: str
    version: str | None = None
    variables: dict[str, Any] | None = None


class ResponseCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str | None = None
    input: str | list[dict[str, Any]] = Field(default="", max_length=10_000)
    instructions: str | None = Field(default=None, max_length=256_000)
    previous_response_id: str | None = None
    conversation: str | dict[str, Any] | None = None
    store: bool | None = True
    stream: bool | None = False
    background: bool | None = False
    tools: list[Annotated[FunctionTool | McpTool | FileSearchTool, Field(discriminator="type")]
                ] | None = Field(default=None, max_length=128)
    tool_choice: Literal["auto", "none", "required"] | FunctionChoice | McpChoice | None = None
    max_tool_calls: int | None = Field(default=None, ge=1, le=1000)
    include: list[Literal["file_search_call.results"]] | None = None
    parallel_tool_calls: bool | None = None
    max_output_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    text: TextConfig | None = None
    metadata: Metadata = None
    truncation: Literal["auto", "disabled"] | None = None
    prompt: PromptRef | None = None
    assistant: str | None = None
    """Jan's extension: answer as this assistant (same as ``prompt.id``)."""
    user: str | None = None
    # Fields we cannot honour: refused below when they carry a value.
    reasoning: Any = None
    prompt_cache_key: Any = None
    top_logprobs: Any = None
    service_tier: Any = None
    safety_identifier: Any = None
    stream_options: Any = None
    context_management: Any = None

    @property
    def conversation_id(self) -> str | None:
        conv = self.conversation
        if isinstance(conv, dict):
            value = conv.get("id")
            if not isinstance(value, str):
                raise InvalidRequest("Invalid 'conversation.id': expected a string",
                                     param="conversation.id")
            return value
        return conv

    @property
    def assistant_id(self) -> str | None:
        return self.assistant or (self.prompt.id if self.prompt else None)


def _empty(value: Any) -> bool:
    return value in (None, False, [], {}, "auto", "default", 0)


def parse_create(body: dict[str, Any]) -> ResponseCreate:
    unknown = [k for k in body if k not in ResponseCreate.model_fields]
    if unknown:
        raise InvalidRequest(f"Unrecognized request argument supplied: '{unknown[0]}'",
                             param=unknown[0], code="unknown_parameter")
    for name in UNSUPPORTED:
        if name == "reasoning" and isinstance(body.get(name), dict) and all(
                v is None for v in body[name].values()):
            continue
        if not _empty(body.get(name)):
            raise InvalidRequest(f"Unsupported parameter: '{name}' is not supported by this "
                                 "server", param=name, code="unsupported_parameter")
    tools = body.get("tools")
    if isinstance(tools, list):
        for i, tool in enumerate(tools):
            kind = tool.get("type") if isinstance(tool, dict) else None
            if kind not in TOOL_TYPES:
                raise InvalidRequest(
                    f"Invalid 'tools[{i}].type': only function, mcp and file_search tools are "
                    f"supported here, got {kind!r}", param=f"tools[{i}].type",
                    code="unsupported_parameter")
            if kind == "mcp" and tool.get("server_url"):
                raise InvalidRequest(
                    f"Invalid 'tools[{i}].server_url': only MCP servers configured in "
                    "mcp_config.json are reachable; name one with 'server_label'",
                    param=f"tools[{i}].server_url", code="unsupported_parameter")
    include = body.get("include")
    if isinstance(include, list):
        for i, value in enumerate(include):
            if value not in INCLUDABLE:
                raise InvalidRequest(f"Unsupported parameter: 'include[{i}]' {value!r} is not "
                                     "supported here", param=f"include[{i}]",
                                     code="unsupported_parameter")
    req = parse(ResponseCreate, body)
    if req.background and not req.store:
        raise InvalidRequest("Invalid 'background': background responses must be stored "
                             "(store: true)", param="background")
    if req.background and req.stream:
        raise InvalidRequest("Unsupported parameter: 'stream' with 'background' is not "
                             "supported here; poll GET /v1/responses/{id}", param="stream",
                             code="unsupported_parameter")
    if req.previous_response_id and req.conversation is not None:
        raise InvalidRequest("'previous_response_id' and 'conversation' cannot be used together",
                             param="conversation")
    if req.prompt and req.assistant and req.prompt.id != req.assistant:
        raise InvalidRequest("'assistant' and 'prompt.id' name different assistants",
                             param="assistant")
    if req.prompt and req.prompt.variables:
        raise InvalidRequest("Unsupported parameter: 'prompt.variables'",
                             param="prompt.variables", code="unsupported_parameter")
    labels = [t.server_label for t in req.tools or [] if isinstance(t, McpTool)]
    if len(labels) != len(set(labels)):
        raise InvalidRequest("Invalid 'tools': one MCP server listed twice", param="tools")
    if sum(isinstance(t, FileSearchTool) for t in req.tools or []) > 1:
        raise InvalidRequest("Invalid 'tools': at most one file_search tool", param="tools")
    return req


class ConversationCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")
    items: list[dict[str, Any]] | None = Field(default=None, max_length=20)
    metadata: Metadata = None


class ConversationUpdate(BaseModel):
    model_config = ConfigDict(extra="ignore")
    metadata: Metadata


class ItemsCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")
    items: list[dict[str, Any]] = Field(min_length=1, max_length=20)
