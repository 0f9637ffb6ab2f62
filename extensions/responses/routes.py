"""``/v1/responses``: create (plain, streamed, background), retrieve, delete, input items, cancel.

Admission errors (unknown model, prompt too long, full queue) are HTTP errors: the engine's
first event is awaited before any response starts. What a response adds to a conversation
(its input, then its output) is written only once it completed, so a failed turn leaves the
conversation as it was.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

from jan.sdk.errors import ApiError, InvalidRequest, NotFound
from jan.sdk.http import Request, Response, json_response, page_query, read_body, sse_response
from jan.sdk.inference import Delta, Done
from jan.sdk.models import new_id
from jan.sdk.openai_shapes import cursor_window

from . import context as cx
from . import items as it
from . import server_tools as st
from .loop import ToolLoop
from .output import Builder, Event, new_response
from .schemas import parse_create
from .store import ResponseStore
from .streams import ClosingStream, aclose_quietly, chain

log = logging.getLogger("jan.responses")
RESPONSE_CREATED = "response.created"
RESPONSE_COMPLETED = "response.completed"
RESPONSE_FAILED = "response.failed"


class ResponseRoutes:
    def __init__(self, ctx: Any, store: ResponseStore) -> None:
        self.ctx = ctx
        self.store = store
        self.tasks: dict[str, asyncio.Task[Any]] = {}

    def svc(self, name: str) -> Any:
        return self.ctx.services.get(name)

    def table(self) -> list[tuple[str, Any, list[str]]]:
        return [
            ("/v1/responses", self.create, ["POST"]),
            ("/v1/responses/{response_id}", self.retrieve, ["GET"]),
            ("/v1/responses/{response_id}", self.delete, ["DELETE"]),
            ("/v1/responses/{response_id}/input_items", self.input_items, ["GET"]),
            ("/v1/responses/{response_id}/cancel", self.cancel, ["POST"]),
        ]

    @property
    def history_limit(self) -> int:
        return int(self.ctx.settings.get("history_limit", 1000))

    def _loop(self, p: cx.Plan, response: dict[str, Any]) -> tuple[Builder, ToolLoop]:
        """The builder of ``response`` and the tool loop that drives it."""
        builder = Builder(response, frozenset(p.server), st.citations(p))
        budget = float(self.ctx.settings.get("tool_loop_timeout", 300))
        return builder, ToolLoop(self.svc, p, builder, budget)

    # ------------------------------------------------------------------ planning
    def _has_code(self, assistant_id: str) -> bool:
        try:
            return bool(self.svc("sandbox").has_code(assistant_id))
        except ApiError:
            return False

    async def _plan(self, body: dict[str, Any]) -> cx.Plan:
        req = parse_create(body)
        if req.previous_response_id and not await self.store.exists(req.previous_response_id):
            raise NotFound(f"No response found with id '{req.previous_response_id}'",
                           param="previous_response_id")
        p = await cx.plan(self.svc, self.store, req, self.history_limit)
        p.code = p.assistant is not None and self._has_code(p.assistant.id)
        if not p.code:
            await cx.resolve_model(self.svc, p)
            await st.prepare(self.svc, p)
            p.gen = cx.generation(p, p.history + p.input_items)  # validates the request
            if await st.answer_approvals(self.svc, p):
                p.gen = cx.generation(p, p.history + cx.turn(p))
        return p

    async def _start(self, p: cx.Plan, response_id: str) -> AsyncIterator[Any]:
        """The engine's event stream, its first event already received (admission passed).

        With ``truncation: "auto"``, a prompt that does not fit drops the oldest half of the
        history (then up to the next user message, so no call is cut from its output) and
        tries again, until only this turn's input is left.
        """
        if p.code:
            return self._sandbox(p, response_id)
        engine = self.svc("inference")
        history = list(p.history)
        while True:
            source = engine.generate(p.spec, p.gen)
            try:
                first = await source.__anext__()
            except StopAsyncIteration:
                raise ApiError("The engine ended the generation without a result") from None
            except ApiError as exc:
                await aclose_quietly(source)
                if (exc.code != "context_length_exceeded" or p.req.truncation != "auto"
                        or not history):
                    raise
                history = history[max(1, len(history) // 2):]
                while history and history[0].get("role") != "user":  # start on a user turn
                    history = history[1:]
                p.gen = cx.generation(p, history + cx.turn(p))
                continue
            except BaseException:
                await aclose_quietly(source)
                raise
            return chain(first, source)

    async def _sandbox(self, p: cx.Plan, response_id: str) -> AsyncIterator[Any]:
        """A code assistant answers in a thread: the conversation, or a temporary one."""
        from jan.sdk.sandbox import SandboxError

        threads, messages = self.svc("threads"), self.svc("messages")
        thread_id, temporary = p.conversation_id, None
        if thread_id is None:
            from jan.sdk.models import Thread

            temporary = thread_id = new_id("thread")
            await threads.create(Thread(id=thread_id, title="(response)",
                                        metadata={"jan_response_id": response_id}))
            for item in p.history + p.input_items:
                await messages.create(it.to_message(thread_id, item))
        else:
            await self._append(thread_id, p.input_items)
            p.input_saved = True
        try:
            result = await self.svc("sandbox").run(p.assistant.id, thread_id=thread_id,
                                                   run_id=response_id, model=p.model)
        except SandboxError as exc:
            raise ApiError(f"The assistant's code failed ({exc.code}): {exc.message}",
                           code="assistant_error") from None
        finally:
            if temporary is not None:
                try:
                    await threads.delete(temporary)
                except ApiError:
                    log.warning("could not delete temporary thread %s", temporary)
        yield Delta(text=result.content or "")
        yield Done()

    # ------------------------------------------------------------------ persistence
    async def _append(self, thread_id: str, items: list[dict[str, Any]], **fields: Any) -> None:
        messages = self.svc("messages")
        for item in items:
            await messages.create(it.to_message(thread_id, item, **fields))

    async def _finish(self, p: cx.Plan, response: dict[str, Any]) -> None:
        """Keep what a finished response leaves behind, then tell the bus."""
        ok = response["status"] in ("completed", "incomplete")
        if ok and p.conversation_id:
            if not p.input_saved:
                await self._append(p.conversation_id, p.input_items)
            extra = {"assistant_id": p.assistant.id} if p.assistant else {}
            await self._append(p.conversation_id, response["output"], **extra)
        if p.req.store is not False:
            await self.store.put(response, p.input_items)
        topic = RESPONSE_COMPLETED if ok else RESPONSE_FAILED
        await self.ctx.events.emit(topic, response)

    # ------------------------------------------------------------------ endpoints
    async def create(self, request: Request) -> Response:
        p = await self._plan(await read_body(request))
        response_id = new_id("resp")
        response = new_response(p, response_id)
        if p.req.background:
            await self.store.put(response, p.input_items)
            await self.ctx.events.emit(RESPONSE_CREATED, response)
            task = self.ctx.spawn(self._background(p, response), name=response_id)
            self.tasks[response_id] = task
            task.add_done_callback(lambda _t: self.tasks.pop(response_id, None))
            return json_response(response)
        source = await self._start(p, response_id)
        await self.ctx.events.emit(RESPONSE_CREATED, response)
        if p.req.stream:
            events = self._stream(p, response, source)
            return ClosingStream(sse_response(events, done=False), events, source)
        builder, loop = self._loop(p, response)
        try:
            async for _ in loop.run(source):
                pass
        except ApiError as exc:
            builder.fail(exc.code or "server_error", exc.message)
            await self._finish(p, response)
            raise
        finally:
            await aclose_quietly(source)
        await self._finish(p, response)
        return json_response(response)

    async def _stream(self, p: cx.Plan, response: dict[str, Any], source: AsyncIterator[Any]
                      ) -> AsyncIterator[Event | tuple[str, str]]:
        builder, loop = self._loop(p, response)
        try:
            for event in builder.start():
                yield event
            async for event in loop.run(source):
                yield event
            final = builder.final()
        except ApiError as exc:
            yield builder.fail(exc.code or "server_error", exc.message)
            await self._finish(p, response)
            return
        except Exception:  # noqa: BLE001 - reported to the client without internals
            log.exception("response %s failed", response["id"])
            yield builder.fail("server_error", "Internal error while generating")
            await self._finish(p, response)
            return
        finally:
            await aclose_quietly(source)
        await self._finish(p, response)
        yield final

    async def _background(self, p: cx.Plan, response: dict[str, Any]) -> None:
        builder, loop = self._loop(p, response)
        source = None
        try:
            response["status"] = "in_progress"
            await self.store.put(response, p.input_items)
            source = await self._start(p, response["id"])
            async for _ in loop.run(source):
                pass
        except asyncio.CancelledError:
            response["status"] = "cancelled"
            response["output"] = [o for o in response["output"] if o.get("status") == "completed"]
            await asyncio.shield(self.store.put(response, p.input_items))
            raise
        except ApiError as exc:
            builder.fail(exc.code or "server_error", exc.message)
        except Exception:  # noqa: BLE001 - the stored response says it failed
            log.exception("background response %s failed", response["id"])
            builder.fail("server_error", "Internal error while generating")
        finally:
            if source is not None:
                await aclose_quietly(source)
        await self._finish(p, response)

    async def retrieve(self, request: Request) -> Response:
        if request.query_params.get("stream") in ("true", "1"):
            raise InvalidRequest("Unsupported parameter: 'stream' on retrieve is not supported "
                                 "here", param="stream", code="unsupported_parameter")
        record = await self.store.get(request.path_params["response_id"])
        return json_response(record["response"])

    async def delete(self, request: Request) -> Response:
        response_id = request.path_params["response_id"]
        task = self.tasks.get(response_id)
        if task is not None:
            task.cancel()
        await self.store.delete(response_id)
        return json_response({"id": response_id, "object": "response.deleted", "deleted": True})

    async def input_items(self, request: Request) -> Response:
        q = page_query(request)
        record = await self.store.get(request.path_params["response_id"])
        items = [i for i in record.get("input") or [] if isinstance(i, dict)]
        pos = {i.get("id"): n for n, i in enumerate(items)}
        chosen, more = cursor_window(len(items), pos.get, limit=q.limit, order=q.order,
                                     after=q.after, before=q.before)
        data = [items[n] for n in chosen]
        return json_response({"object": "list", "data": data,
                              "first_id": data[0]["id"] if data else None,
                              "last_id": data[-1]["id"] if data else None, "has_more": more})

    async def cancel(self, request: Request) -> Response:
        response_id = request.path_params["response_id"]
        record = await self.store.get(response_id)
        if not record["response"].get("background"):
            raise InvalidRequest("Only background responses can be cancelled",
                                 param="response_id")
        task = self.tasks.get(response_id)
        if task is not None:
            task.cancel()
            try:
                await asyncio.wait_for(asyncio.shield(task), 10)
            except (TimeoutError, asyncio.CancelledError, Exception):  # noqa: BLE001
                pass
            record = await self.store.get(response_id)
        response = record["response"]
        if response.get("status") in ("queued", "in_progress"):
            # Cancelled before its task ran (or in another process's hands): record it here.
            response = {**response, "status": "cancelled"}
            await self.store.put(response, record.get("input") or [])
        return json_response(response)


__all__ = ["ResponseRoutes"]
