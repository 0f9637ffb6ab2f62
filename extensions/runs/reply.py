"""How a plain assistant (no ``index.py``) answers: its model, its instructions, the thread.

Precedence, lowest first: engine defaults < ``model.json`` < assistant < thread < request, for
the model id, the load-time settings and the sampling parameters alike. The model's own stop
strings are always kept (they end its turn); others are added.
"""

from __future__ import annotations

from typing import Any

from jan.sdk.errors import ApiError, InvalidRequest
from jan.sdk.inference import ChatMessage, GenerationRequest, LoadSpec, merge_stops
from jan.sdk.models import Assistant, Thread, ThreadAssistant

from .schemas import RunCreateRequest

SAMPLING = ("max_tokens", "temperature", "top_p", "top_k", "min_p", "frequency_penalty",
            "presence_penalty", "repeat_penalty", "seed")


def thread_entry(thread: Thread, assistant_id: str) -> ThreadAssistant | None:
    return next((a for a in thread.assistants if a.assistant_id == assistant_id), None)


def _concrete(value: Any) -> str | None:
    return value if isinstance(value, str) and value and value != "*" else None


async def pick_model(registry: Any, req: RunCreateRequest, assistant: Assistant,
                     thread: Thread) -> str:
    entry = thread_entry(thread, assistant.id)
    chosen = (_concrete(req.model) or _concrete(entry and entry.model.id)
              or _concrete(assistant.model) or await registry.default_model())
    if not chosen:
        raise InvalidRequest("No model to run: the assistant's model is '*' and no model is "
                             "downloaded", param="model")
    return chosen


def instructions_for(req: RunCreateRequest, assistant: Assistant, thread: Thread) -> str:
    entry = thread_entry(thread, assistant.id)
    base = req.instructions
    if base is None:
        base = (entry.instructions if entry and entry.instructions else None) \
            or assistant.instructions or ""
    if req.additional_instructions:
        base = f"{base}\n\n{req.additional_instructions}" if base else req.additional_instructions
    return base


def _layer(values: Any) -> dict[str, Any]:
    if values is None:
        return {}
    if hasattr(values, "model_dump"):
        values = values.model_dump(exclude_none=True)
    return {k: v for k, v in dict(values).items() if v is not None} if isinstance(
        values, dict) else {}


def assistant_parameters(assistant: Assistant) -> dict[str, Any]:
    extra = dict(assistant.model_extra or {})
    params = {k: extra[k] for k in SAMPLING if k in extra}
    for m in assistant.models:  # the seed's "models": [{...model_0}] with its parameters
        if isinstance(m, dict):
            params.update(_layer(m.get("parameters")))
            break
    return params


def generation(entry: Any, req: RunCreateRequest, assistant: Assistant, thread: Thread,
               messages: list[ChatMessage]) -> GenerationRequest:
    t_entry = thread_entry(thread, assistant.id)
    layers = [_layer(entry.parameters), assistant_parameters(assistant),
              _layer(t_entry.model.parameters if t_entry else None),
              _layer({"temperature": req.temperature, "top_p": req.top_p,
                      "max_tokens": req.max_completion_tokens})]
    fields: dict[str, Any] = {}
    for layer in layers:
        fields.update({k: v for k, v in layer.items() if k in SAMPLING})
    stops = merge_stops(*(layer.get("stop") for layer in layers))
    return GenerationRequest(messages=messages, stop=stops, **fields)


def load_spec(registry: Any, entry: Any, assistant: Assistant, thread: Thread) -> LoadSpec:
    t_entry = thread_entry(thread, assistant.id)
    overrides = _layer(t_entry.model.settings) if t_entry else {}
    return registry.load_spec(entry, overrides or None)


def history(messages: list[Any], instructions: str) -> list[ChatMessage]:
    out = [ChatMessage(role="system", content=instructions)] if instructions else []
    for m in messages:
        role = m.role if m.role in ("user", "assistant", "system") else "user"
        out.append(ChatMessage(role=role, content=m.text))
    return out


async def file_search(services: Any, assistant: Assistant, thread: Thread,
                      messages: list[Any]) -> Any:
    """Passages from the ``files`` service for an assistant with ``file_search`` (or Jan's
    ``retrieval``) or a thread with attached files: ``.instructions`` to add to the system
    prompt and ``.cite(text)`` for the answer's annotations; ``None`` without either."""
    try:
        files = services.get("files")
    except ApiError:
        return None  # no files extension: nothing to retrieve
    return await files.for_run(assistant, thread, messages)
