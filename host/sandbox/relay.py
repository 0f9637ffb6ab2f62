"""What a worker may ask the host for, each call scoped to that assistant and its current call.

- ``thread.messages``: only the thread of the run being handled (no thread id is taken from the
  worker, so it cannot name another thread).
- ``models.list`` / ``models.chat``: the host runs the model; streaming pieces go back as
  ``chunk`` notifications. Per worker: at most ``model_requests`` calls in flight, and at most
  ``tokens_per_run`` generated tokens per run or event, all calls together (``max_tokens`` is
  lowered to what is left).
- ``events.emit``: only on ``assistant:<own id>`` and on ``assistant:*`` topics its
  ``assistant.json`` ``events`` list allows; host topics (``message.*``...) never.
- ``events.subscribe``: an assistant hears its own topic and the exact ``assistant:...`` topics
  its ``assistant.json`` ``events`` list grants; never host topics (they would leak other
  threads' messages) and never a wildcard (``assistant:*`` would hear every other assistant).
"""

from __future__ import annotations

import fnmatch
from typing import TYPE_CHECKING, Any

from jan.sdk.generation import assistant_settings, drain, generation_request, thread_settings
from jan.sdk.inference import ChatMessage, dangling_tool_message
from jan.sdk.models import Assistant, Thread

from .rpc import ChatParams, EmitParams, SubscribeParams, ThreadMessagesParams
from .worker import Chunk, RelayError, Worker

if TYPE_CHECKING:
    from .supervisor import Supervisor

DENIED = -32003
ASSISTANT_PREFIX = "assistant:"
MAX_HOPS = 8


def may_emit(assistant: Assistant, topic: str) -> bool:
    if topic == f"{ASSISTANT_PREFIX}{assistant.id}":
        return True
    if not topic.startswith(ASSISTANT_PREFIX) or "*" in topic:
        return False
    allowed = assistant.events if isinstance(assistant.events, list) else []
    return any(fnmatch.fnmatchcase(topic, pattern) for pattern in allowed)


def may_subscribe(assistant: Assistant, topic: str) -> bool:
    """Its own topic, or one its (user-written) ``assistant.json`` names exactly."""
    if not topic.startswith(ASSISTANT_PREFIX) or "*" in topic or topic == ASSISTANT_PREFIX:
        return False
    if topic == f"{ASSISTANT_PREFIX}{assistant.id}":
        return True
    return isinstance(assistant.events, list) and topic in assistant.events


def subscribe_refusal(assistant_id: str, topic: str) -> str:
    return (f"assistant '{assistant_id}' may not subscribe to '{topic}': only its own topic "
            "and 'assistant:...' topics listed in its assistant.json \"events\" (no wildcards)")


class Relay:
    def __init__(self, sup: Supervisor) -> None:
        self.sup = sup

    async def __call__(self, worker: Worker, method: str, params: Any, chunk: Chunk) -> Any:
        if method == "thread.messages":
            return await self.thread_messages(worker, params)
        if method == "models.list":
            return await self.models_list(worker)
        if method == "models.chat":
            return await self.chat(worker, params, chunk)
        if method == "events.emit":
            return await self.emit(worker, params)
        if method == "events.subscribe":
            return await self.subscribe(worker, params)
        raise RelayError(f"unknown method {method}", -32601)

    def _service(self, name: str) -> Any:
        try:
            return self.sup.services.get(name)
        except Exception as exc:  # noqa: BLE001 - Unavailable or a missing registry
            raise RelayError(f"the host has no '{name}' service right now") from exc

    async def thread_messages(self, worker: Worker, params: ThreadMessagesParams) -> list:
        thread_id = worker.context.get("thread_id")
        if not thread_id:
            raise RelayError("this event has no thread to read")
        page = await self._service("messages").list(thread_id, limit=min(params.limit, 100),
                                                       order="desc")
        return [{"id": m.id, "role": m.role, "content": m.text, "created_at": m.created // 1000}
                for m in reversed(page.data)]

    async def _thread(self, worker: Worker) -> Thread | None:
        """The thread of the run being handled, for its settings (None outside a run)."""
        thread_id = worker.context.get("thread_id")
        if not thread_id:
            return None
        try:
            return await self._service("threads").get(thread_id)
        except Exception:  # noqa: BLE001 - gone or no threads service: no thread layer
            return None

    async def _preferred(self, worker: Worker, wanted: str | None) -> str:
        registry = self._service("models")
        model = wanted or worker.context.get("model")
        if not model or model == "*":
            assistant = await self.sup.assistant(worker.assistant_id)
            model = assistant.model if assistant.model and assistant.model != "*" else None
        model = model or await registry.default_model()
        if not model:
            raise RelayError("no model is available")
        return model

    async def models_list(self, worker: Worker) -> list[dict[str, Any]]:
        registry = self._service("models")
        entries = [e for e in await registry.list() if e.downloaded]
        try:
            first = await self._preferred(worker, None)
        except RelayError:
            first = None
        entries.sort(key=lambda e: e.id != first)
        return [{"id": e.id, "name": e.name or e.id} for e in entries]

    async def chat(self, worker: Worker, params: ChatParams, chunk: Chunk) -> dict[str, Any]:
        limits = self.sup.settings
        if worker.model_calls >= limits.model_requests:
            raise RelayError(f"too many model requests in flight: an assistant may run "
                             f"{limits.model_requests} at once", DENIED)
        left = limits.tokens_per_run - worker.tokens_used
        if left <= 0:
            raise RelayError(f"this run used up its budget of {limits.tokens_per_run} generated "
                             "tokens (sandbox setting tokens_per_run)", DENIED)
        worker.model_calls += 1
        try:
            return await self._chat(worker, params, chunk, left)
        finally:
            worker.model_calls -= 1

    async def _chat(self, worker: Worker, params: ChatParams, chunk: Chunk,
                    left: int) -> dict[str, Any]:
        registry, engine = self._service("models"), self._service("inference")
        model_id = await self._preferred(worker, params.model)
        entry = await registry.get(model_id)
        if not entry.downloaded:
            raise RelayError(f"model '{model_id}' is not downloaded")
        spec = registry.load_spec(entry)
        assistant = await self.sup.assistant(worker.assistant_id)
        asked = params.model_dump(exclude_none=True, exclude={"model", "messages", "stream"})
        messages = [ChatMessage(**m.model_dump()) for m in params.messages]
        if (bad := dangling_tool_message(messages)) is not None:
            raise RelayError(f"messages[{bad}] answers no tool call of an earlier message")
        tooling = {k: asked.pop(k) for k in ("tools", "tool_choice", "parallel_tool_calls")
                   if k in asked}
        request = generation_request(
            entry.parameters, assistant_settings(assistant),
            thread_settings(await self._thread(worker), assistant.id), asked,
            messages=messages, **tooling)
        request.max_tokens = min(request.max_tokens or left, left)
        pieces = 0

        async def on_text(text: str) -> None:
            nonlocal pieces
            pieces += 1
            worker.tokens_used += 1  # one delta per sampled token (usage may lag)
            if params.stream:
                await chunk(text)

        out = await drain(engine.generate(spec, request), on_text)
        if out.done is not None:
            # The engine's own count is exact; the per-delta count only bounds a cut stream.
            worker.tokens_used += out.usage.completion_tokens - pieces
            worker.usage += out.usage
        calls = [{"id": c.id, "type": "function",
                  "function": {"name": c.name, "arguments": c.arguments}}
                 for c in out.tool_calls]
        return {"text": out.text, "model": model_id, "tool_calls": calls,
                "finish_reason": out.finish_reason,
                "usage": out.usage.model_dump() if out.done else None}

    async def emit(self, worker: Worker, params: EmitParams) -> None:
        assistant = await self.sup.assistant(worker.assistant_id)
        if not may_emit(assistant, params.topic):
            raise RelayError(f"assistant '{worker.assistant_id}' may not emit on "
                             f"'{params.topic}'", DENIED)
        hops = int(worker.context.get("hops", 0)) + 1
        if hops > MAX_HOPS:
            raise RelayError(f"event chain longer than {MAX_HOPS} hops was stopped", DENIED)
        payload = {"source": worker.assistant_id, "data": params.data, "hops": hops}
        await self.sup.events.emit(params.topic, payload)

    async def subscribe(self, worker: Worker, params: SubscribeParams) -> None:
        assistant = await self.sup.assistant(worker.assistant_id)
        if not may_subscribe(assistant, params.topic):
            raise RelayError(subscribe_refusal(worker.assistant_id, params.topic), DENIED)
        self.sup.subscriptions.add(worker.assistant_id, params.topic)
