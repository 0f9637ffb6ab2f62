"""Engine event streams → OpenAI response bodies and SSE chunks.

Three rules keep streams honest:
- the first engine event is awaited *before* the HTTP response starts, so errors raised at
  admission (queue full, context overflow) are real HTTP errors, not events in a 200 stream;
- while nothing has been sent yet, the client's disconnect is watched, so a queued or generating
  request whose client left is cancelled instead of holding a slot;
- the engine iterator is always closed (``aclose``) when we stop reading it, for any reason, with
  the close shielded from the cancellation that may have stopped us.

Per-token work is one string concatenation: chunk JSON is assembled from prebuilt prefix and
suffix strings around ``json.dumps(text)``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from jan.sdk.errors import ApiError
from jan.sdk.generation import drain
from jan.sdk.http import Request
from jan.sdk.inference import Delta, Done, ToolCall, ToolCallDelta, Usage

from .tool_output import first_chunk_delta, tool_delta_json

log = logging.getLogger("jan.chat")
T = TypeVar("T")
Event = Delta | ToolCallDelta | Done


class ClientGone(Exception):
    """The client disconnected before we answered."""


async def aclose_quietly(it: Any) -> None:
    """Close an async iterator even while our task is being cancelled."""
    close = getattr(it, "aclose", None)
    if close is None:
        return
    with anyio.CancelScope(shield=True):
        try:
            await close()
        except Exception:  # noqa: BLE001 - closing must never mask the real outcome
            log.debug("closing the engine stream failed", exc_info=True)


async def unless_disconnected(request: Request, work: Awaitable[T], poll: float = 0.25) -> T:
    """Await ``work`` in this task; if the client goes away meanwhile, cancel it.

    The work stays in the request's own task (engine iterators may hold task-bound state); a
    small watcher polls for the disconnect and cancels this task, which we turn into
    ``ClientGone``.
    """
    me = asyncio.current_task()
    gone = False

    async def watch() -> None:
        nonlocal gone
        while True:
            await asyncio.sleep(poll)
            if await request.is_disconnected():
                gone = True
                if me is not None:
                    me.cancel()
                return

    watcher = asyncio.create_task(watch())
    try:
        return await work
    except asyncio.CancelledError:
        if gone and me is not None:
            me.uncancel()
            raise ClientGone() from None
        raise
    finally:
        watcher.cancel()


async def first_event(it: AsyncIterator[Event]) -> Event:
    """The stream's first event; admission errors surface here as exceptions."""
    try:
        return await it.__anext__()
    except StopAsyncIteration:
        raise ApiError("The engine ended the generation without a result") from None


@dataclass
class Collected:
    """A whole generation: its text, its tool calls and its ``Done``."""

    text: str
    done: Done
    calls: list[ToolCall] = field(default_factory=list)


async def collect(it: AsyncIterator[Event]) -> Collected:
    """Read a whole generation (one drain rule for everyone: ``jan.sdk.generation.drain``)."""
    out = await drain(it)
    if out.done is None:
        raise ApiError("The engine ended the generation without a result")
    return Collected(out.text, out.done, out.tool_calls)


async def chain(first: Event, it: AsyncIterator[Event]) -> AsyncIterator[Event]:
    yield first
    async for ev in it:
        yield ev


def usage_body(usage: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens or usage.prompt_tokens + usage.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
    }


@dataclass
class Head:
    """What every response object of one request shares."""

    model: str
    object: str
    prefix: str = "chatcmpl"
    id: str = ""
    created: int = field(default_factory=lambda: int(time.time()))

    def __post_init__(self) -> None:
        self.id = self.id or f"{self.prefix}-{uuid.uuid4().hex}"

    def obj(self, **rest: Any) -> dict[str, Any]:
        return {"id": self.id, "object": self.object, "created": self.created,
                "model": self.model, **rest}


def chat_body(head: Head, out: Collected, legacy: bool = False) -> dict[str, Any]:
    """``legacy``: the request used ``functions``, so the call is ``function_call``."""
    done, text = out.done, out.text
    message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None}
    reason = done.finish_reason
    if out.calls:
        message["content"] = text if text.strip() else None
        if legacy:
            c = out.calls[0]
            message["function_call"] = {"name": c.name, "arguments": c.arguments}
            reason = "function_call" if reason == "tool_calls" else reason
        else:
            message["tool_calls"] = [
                {"id": c.id, "type": "function",
                 "function": {"name": c.name, "arguments": c.arguments}} for c in out.calls]
    choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": reason}
    return head.obj(choices=[choice], usage=usage_body(done.usage))


def completion_body(head: Head, text: str, done: Done) -> dict[str, Any]:
    choice = {"text": text, "index": 0, "logprobs": None, "finish_reason": done.finish_reason}
    return head.obj(choices=[choice], usage=usage_body(done.usage))


def _frame(head: Head, include_usage: bool) -> tuple[str, str]:
    """Prefix and suffix around a chunk's ``choices`` value."""
    base = json.dumps(head.obj(choices=None), separators=(",", ":"))
    cut = base.rindex('"choices":null') + len('"choices":')
    tail = ',"usage":null' if include_usage else ""
    return base[:cut], tail + base[cut + len("null"):]


async def chat_chunks(head: Head, events: AsyncIterator[Event], include_usage: bool,
                      legacy: bool = False) -> AsyncIterator[str]:
    """``chat.completion.chunk`` payloads: role, content or tool-call deltas, finish, optional
    usage. The role goes out with the first event, so a reply that starts with a tool call
    says ``content: null`` as OpenAI's do."""
    pre, post = _frame(head, include_usage)
    delta_pre = pre + '[{"index":0,"delta":{"content":'
    delta_post = '},"logprobs":null,"finish_reason":null}]' + post
    first = True
    async for ev in events:
        if first:
            first = False
            yield pre + '[{"index":0,"delta":' + first_chunk_delta(ev, legacy) + \
                ',"logprobs":null,"finish_reason":null}]' + post
            if ev.type == "tool_call":
                continue
        if ev.type == "delta":
            if ev.text:
                yield delta_pre + json.dumps(ev.text, ensure_ascii=False) + delta_post
            continue
        if ev.type == "tool_call":
            yield pre + '[{"index":0,"delta":' + tool_delta_json(ev, legacy) + \
                ',"logprobs":null,"finish_reason":null}]' + post
            continue
        reason = ev.finish_reason
        if legacy and reason == "tool_calls":
            reason = "function_call"
        yield (pre + '[{"index":0,"delta":{},"logprobs":null,"finish_reason":'
               + json.dumps(reason) + "}]" + post)
        if include_usage:
            yield head.obj(choices=[], usage=usage_body(ev.usage))
        return
    raise ApiError("The engine ended the generation without a result")


async def completion_chunks(head: Head, events: AsyncIterator[Event], include_usage: bool,
                            echo: str = "") -> AsyncIterator[str]:
    """``text_completion`` payloads (OpenAI sends ``finish_reason: null`` until the end)."""
    pre, post = _frame(head, include_usage)
    text_pre = pre + '[{"text":'
    text_post = ',"index":0,"logprobs":null,"finish_reason":null}]' + post
    if echo:
        yield text_pre + json.dumps(echo, ensure_ascii=False) + text_post
    async for ev in events:
        if ev.type == "delta":
            if ev.text:
                yield text_pre + json.dumps(ev.text, ensure_ascii=False) + text_post
            continue
        yield (text_pre + '""' + ',"index":0,"logprobs":null,"finish_reason":'
               + json.dumps(ev.finish_reason) + "}]" + post)
        if include_usage:
            yield head.obj(choices=[], usage=usage_body(ev.usage))
        return
    raise ApiError("The engine ended the generation without a result")


class ClosingStream(StreamingResponse):
    """An SSE response that sends its first chunk at once and closes the engine stream however
    the response ends.

    Starlette streams from a second task while the first listens for the client leaving; the
    head and the first chunk go out before that task group starts (about 0.3 ms sooner: the
    first token is what a user waits for). And Starlette stops iterating a body on disconnect
    without closing it; if that happens while the body generator is parked at a ``yield`` its
    ``finally`` would only run when the garbage collector gets to it, and the generation would
    keep a slot busy until then.
    """

    def __init__(self, inner: StreamingResponse, *resources: Any) -> None:
        self.__dict__.update(inner.__dict__)
        self._resources = resources
        self._head_sent = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self._head(send)
            async for chunk in self.body_iterator:
                await send(self._body(chunk))
                break
            await super().__call__(scope, receive, send)  # the rest, watching for a disconnect
        finally:
            # Outermost first: each generator's own ``finally`` runs before its source closes.
            for resource in (self.body_iterator, *self._resources):
                await aclose_quietly(resource)

    async def stream_response(self, send: Send) -> None:
        await self._head(send)
        async for chunk in self.body_iterator:
            await send(self._body(chunk))
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _head(self, send: Send) -> None:
        if not self._head_sent:
            self._head_sent = True
            await send({"type": "http.response.start", "status": self.status_code,
                        "headers": self.raw_headers})

    def _body(self, chunk: str | bytes) -> dict[str, Any]:
        data = chunk.encode(self.charset) if isinstance(chunk, str) else chunk
        return {"type": "http.response.body", "body": data, "more_body": True}
