"""``POST /v1/responses`` request bodies: what we honour is validated, what we cannot is a 400.

Unknown fields are refused by name (OpenAI does the same), and fields we know but cannot honour
(``reasoning``, ``include`` of anything, non-function tools...) are refused when they carry a
value, so no request is silently answered differently from what it asked.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from jan.sdk.errors import InvalidRequest
from jan.sdk.http import parse
from jan.sdk.openai_shapes import check_metadata

Metadata = Annotated[dict[str, str] | None, BeforeValidator(check_metadata)]

# Known to the specification, accepted only when empty (null, false, [] or {}).
UNSUPPORTED = ("reasoning", "include", "prompt_cache_key", "top_logprobs", "max_tool_calls",
               "service_tier", "safety_identifier", "stream_options", "context_management")
# Accepted and ignored because they never change an answer here.
IGNORED = ("user",)


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


class FunctionChoice(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["function"]
    name: str


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
    tools: list[FunctionTool] | None = Field(default=None, max_length=128)
    tool_choice: Literal["auto", "none", "required"] | FunctionChoice | None = None
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
    include: Any = None
    prompt_cache_key: Any = None
    top_logprobs: Any = None
    max_tool_calls: Any = None
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
            if kind != "function":
                raise InvalidRequest(
                    f"Invalid 'tools[{i}].type': only function tools are supported here, got "
                    f"{kind!r}", param=f"tools[{i}].type", code="unsupported_parameter")
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
