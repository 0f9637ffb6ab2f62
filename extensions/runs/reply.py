"""How a plain assistant (no ``index.py``) answers: its model, its instructions, the thread.

Precedence, lowest first: engine defaults < ``model.json`` < assistant < thread < request, for
the model id, the load-time settings and the sampling parameters alike. The model's own stop
strings are always kept (they end its turn); others are added.
"""

from __future__ import annotations

from typing import Any

from jan.sdk.errors import ApiError, InvalidRequest
from jan.sdk.generation import assistant_settings, generation_request, thread_settings
from jan.sdk.inference import ChatMessage, GenerationRequest, LoadSpec
from jan.sdk.models import Assistant, Thread, ThreadAssistant

from . import tools
from .schemas import RunCreateRequest


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


def generation(entry: Any, req: RunCreateRequest, assistant: Assistant, thread: Thread,
               messages: list[ChatMessage]) -> GenerationRequest:
    """model.json < assistant < thread < request, by the sdk's one rule."""
    asked = {"temperature": req.temperature, "top_p": req.top_p,
             "max_tokens": req.max_completion_tokens}
    return generation_request(entry.parameters, assistant_settings(assistant),
                              thread_settings(thread, assistant.id), asked, messages=messages)


def load_spec(registry: Any, entry: Any, assistant: Assistant, thread: Thread) -> LoadSpec:
    t_entry = thread_entry(thread, assistant.id)
    overrides = {k: v for k, v in t_entry.model.settings.items() if v is not None} \
        if t_entry else {}
    return registry.load_spec(entry, overrides or None)


def history(messages: list[Any], instructions: str) -> list[ChatMessage]:
    out = [ChatMessage(role="system", content=instructions)] if instructions else []
    for m in messages:
        with_calls = tools.turns(m) if m.role == "assistant" else []
        if with_calls:
            out.extend(with_calls)
            continue
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
