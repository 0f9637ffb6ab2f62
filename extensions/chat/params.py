"""From an OpenAI request (plus the model's ``model.json`` defaults) to a ``GenerationRequest``.

Precedence is the sdk's one rule (``jan.sdk.generation``): the engine's own defaults <
``model.json`` ``parameters`` < the request, with stop strings accumulated, never replaced.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from jan.sdk.errors import ApiError, InvalidRequest
from jan.sdk.generation import SETTINGS_KEYS, resolve_settings
from jan.sdk.inference import ChatMessage, GenerationRequest

from .schemas import ChatCompletionRequest, CompletionRequest, SamplingRequest
from .tools import assistant_calls, link_tool_turns, parse_tools, tool_turn

_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
COMPLETIONS_DEFAULT_MAX_TOKENS = 16  # OpenAI's documented default for /v1/completions


def _sampling(req: SamplingRequest, parameters: Any, max_tokens: int | None,
              default_max: int | None) -> dict[str, Any]:
    """model.json < request, by the sdk's one rule (``resolve_settings``)."""
    asked = req.model_dump(include=set(SETTINGS_KEYS), exclude_none=True)
    if max_tokens is not None:
        asked["max_tokens"] = max_tokens
    fields = resolve_settings(parameters, {**asked, "stop": req.stop})
    if "max_tokens" not in fields and default_max is not None:
        fields["max_tokens"] = default_max
    return fields


def _build(fields: dict[str, Any], model_id: str) -> GenerationRequest:
    try:
        return GenerationRequest.model_validate(fields)
    except ValidationError as exc:
        # Request values were validated already: what fails here came from model.json.
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err.get("loc", ()))
        raise ApiError(
            f"Model '{model_id}' has an invalid 'parameters.{where}' in its model.json: "
            f"{err.get('msg')}", code="invalid_model_config",
        ) from None


def _text_of(content: Any, i: int, role: str) -> str:
    """A message's content as one string: a string, or a list of text parts."""
    if isinstance(content, str):
        return content
    if content is None and role in ("assistant", "tool", "function"):
        return ""
    if not isinstance(content, list):
        raise InvalidRequest(f"Invalid 'messages[{i}].content': expected a string or a list of "
                             "content parts", param=f"messages[{i}].content")
    allowed = ("text", "refusal") if role == "assistant" else ("text",)
    texts = []
    for j, part in enumerate(content):
        where = f"messages[{i}].content[{j}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind not in allowed:
            raise InvalidRequest(
                f"Invalid '{where}.type': only text content parts are supported, got {kind!r}",
                param=f"{where}.type")
        text = part.get(kind)
        if not isinstance(text, str):
            raise InvalidRequest(f"Invalid '{where}.{kind}': expected a string",
                                 param=f"{where}.{kind}")
        texts.append(text)
    return "\n".join(texts)


def to_chat_messages(raw: list[dict[str, Any]]) -> list[ChatMessage]:
    out = []
    for i, msg in enumerate(raw):
        if not isinstance(msg, dict):
            raise InvalidRequest(f"Invalid 'messages[{i}]': expected an object",
                                 param=f"messages[{i}]")
        role = msg.get("role")
        if role not in _ROLES and role not in ("tool", "function"):
            raise InvalidRequest(
                f"Invalid 'messages[{i}].role': expected one of system, developer, user, "
                f"assistant, tool; got {role!r}", param=f"messages[{i}].role")
        if "content" not in msg and role != "assistant":
            raise InvalidRequest(f"Missing required parameter: 'messages[{i}].content'",
                                 param=f"messages[{i}].content")
        text = _text_of(msg.get("content"), i, role)
        if role in ("tool", "function"):
            out.append(tool_turn(msg, i, text))
            continue
        calls = assistant_calls(msg, i) if role == "assistant" else None
        content = None if calls and msg.get("content") is None else text
        out.append(ChatMessage(role=_ROLES[role], content=content, tool_calls=calls))
    link_tool_turns(out, raw)
    return out


def chat_generation(req: ChatCompletionRequest, parameters: Any, model_id: str
                    ) -> GenerationRequest:
    max_tokens = req.max_completion_tokens or req.max_tokens
    fields = _sampling(req, parameters, max_tokens, None)
    fields["messages"] = to_chat_messages(req.messages)
    tools, choice, parallel, _legacy = parse_tools(req.model_dump())
    fields.update(tools=tools, tool_choice=choice, parallel_tool_calls=parallel)
    fmt = req.response_format
    if fmt is not None and fmt.type == "json_object":
        fields["json_object"] = True
    elif fmt is not None and fmt.type == "json_schema" and fmt.json_schema is not None:
        schema = fmt.json_schema.schema_
        # A json_schema format without a schema still promises JSON: an object is the safe reading.
        if schema:
            fields["json_schema"] = schema
        else:
            fields["json_object"] = True
    return _build(fields, model_id)


def completion_prompt(prompt: str | list[Any]) -> str:
    if isinstance(prompt, str):
        return prompt
    if len(prompt) == 1 and isinstance(prompt[0], str):
        return prompt[0]
    if any(isinstance(p, int | list) for p in prompt):
        raise InvalidRequest("Invalid 'prompt': token arrays are not supported; send text",
                             param="prompt")
    raise InvalidRequest("Invalid 'prompt': expected a string or a list of exactly one string "
                         "(batched prompts are not supported)", param="prompt")


def completion_generation(req: CompletionRequest, parameters: Any, model_id: str
                          ) -> GenerationRequest:
    fields = _sampling(req, parameters, req.max_tokens, COMPLETIONS_DEFAULT_MAX_TOKENS)
    fields["prompt"] = completion_prompt(req.prompt)
    return _build(fields, model_id)


def embedding_inputs(value: str | list[Any]) -> list[str]:
    items = [value] if isinstance(value, str) else value
    if not items:
        raise InvalidRequest("Invalid 'input': must not be empty", param="input")
    for i, item in enumerate(items):
        if isinstance(item, int | list):
            raise InvalidRequest("Invalid 'input': token arrays are not supported; send text",
                                 param="input")
        if not isinstance(item, str):
            raise InvalidRequest(f"Invalid 'input[{i}]': expected a string", param="input")
        if not item:
            raise InvalidRequest(f"Invalid 'input[{i}]': must not be empty", param="input")
    return list(items)
