"""Request bodies of ``/v1/chat/completions``, ``/v1/completions`` and ``/v1/embeddings``.

Shapes follow OpenAI. Unknown fields are accepted and ignored (clients send vendor extras), but
a known field whose value would change the result in a way we cannot honour (tools, logprobs,
``n`` > 1...) is refused with a 400 naming it: a client must never get an answer to a question it
did not ask. Messages stay loose dicts here; ``params.to_chat_messages`` checks them one by one so
its errors can name the exact field (``messages[2].content[0].type``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from jan.sdk.errors import InvalidRequest
from jan.sdk.http import parse

R = TypeVar("R", bound=BaseModel)


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")
    include_usage: bool = False


class JsonSchemaFormat(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)
    name: str | None = None
    description: str | None = None
    schema_: dict[str, Any] | None = Field(None, alias="schema")
    strict: bool | None = None


class ResponseFormat(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None


class _Request(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1)
    user: str | None = None


class SamplingRequest(_Request):
    """Fields shared by chat and text completions (``None`` = not given by the client)."""

    max_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    top_k: int | None = Field(None, ge=0)
    min_p: float | None = Field(None, ge=0, le=1)
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    repeat_penalty: float | None = Field(None, gt=0)
    seed: int | None = None
    stop: str | list[str] | None = None
    n: int | None = Field(None, ge=1)
    stream: bool | None = False
    stream_options: StreamOptions | None = None

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


class ChatCompletionRequest(SamplingRequest):
    messages: list[dict[str, Any]] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    response_format: ResponseFormat | None = None


class CompletionRequest(SamplingRequest):
    prompt: str | list[Any]
    echo: bool | None = False


class EmbeddingRequest(_Request):
    input: str | list[Any]
    encoding_format: Literal["float", "base64"] | None = "float"


# What we refuse, per endpoint: field -> predicate on the raw value telling whether the value
# asks for something we do not do. Harmless values (``tools: []``, ``logprobs: false``) pass.
def _set(v: Any) -> bool:
    return v not in (None, False, [], {}, "")


def _over_one(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v > 1


Rule = tuple[Callable[[Any], bool], str]

_CHAT_RULES: dict[str, Rule] = {
    "n": (_over_one, "Only n=1 is supported"),
    "logprobs": (_set, "logprobs are not supported"),
    "top_logprobs": (_set, "top_logprobs are not supported"),
    "logit_bias": (_set, "logit_bias is not supported"),
    "audio": (_set, "audio output is not supported"),
    "modalities": (lambda v: v not in (None, ["text"]), "only the text modality is supported"),
    "prediction": (_set, "predicted outputs are not supported"),
    "web_search_options": (_set, "web search is not supported"),
}

_COMPLETION_RULES: dict[str, Rule] = {
    "n": (_over_one, "Only n=1 is supported"),
    "best_of": (_over_one, "Only best_of=1 is supported"),
    "logprobs": (lambda v: v is not None, "logprobs are not supported"),
    "logit_bias": (_set, "logit_bias is not supported"),
    "suffix": (_set, "suffix (insertion) is not supported"),
}

_EMBEDDING_RULES: dict[str, Rule] = {
    "dimensions": (lambda v: v is not None, "dimensions is not supported: vectors have the "
                   "model's native size"),
}


def _refuse_unsupported(data: dict[str, Any], rules: dict[str, Rule]) -> None:
    for field, (asks_for_it, message) in rules.items():
        if field in data and asks_for_it(data[field]):
            raise InvalidRequest(f"Unsupported parameter '{field}': {message}", param=field)


def _validate(model: type[R], data: dict[str, Any]) -> R:
    """Validate, naming the top-level field in the 400 (``stop``, not ``stop.list[str].0``)."""
    return parse(model, data, top_level=True)


def parse_chat(data: dict[str, Any]) -> ChatCompletionRequest:
    _refuse_unsupported(data, _CHAT_RULES)
    req = _validate(ChatCompletionRequest, data)
    fmt = req.response_format
    if fmt and fmt.type == "json_schema" and fmt.json_schema is None:
        raise InvalidRequest("Missing required parameter: 'response_format.json_schema'",
                             param="response_format.json_schema")
    return req


def parse_completion(data: dict[str, Any]) -> CompletionRequest:
    _refuse_unsupported(data, _COMPLETION_RULES)
    return _validate(CompletionRequest, data)


def parse_embedding(data: dict[str, Any]) -> EmbeddingRequest:
    _refuse_unsupported(data, _EMBEDDING_RULES)
    return _validate(EmbeddingRequest, data)
