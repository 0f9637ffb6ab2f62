"""Executing runs: queued → in_progress → completed | failed | cancelled | expired.

Each run is a task owned by the extension (a client disconnecting from a stream does not stop
it; ``cancel`` does). Stream subscribers get OpenAI's assistant events through a queue that
exists from the run's creation, so none are missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

from jan.sdk import Context
from jan.sdk.errors import ApiError, InvalidRequest, Overloaded
from jan.sdk.events import RUN_CREATED, RUN_UPDATED
from jan.sdk.models import Assistant, Thread, new_id
from jan.sdk.openai_requests import message_from_request
from jan.sdk.sandbox import SandboxError
from jan.sdk.settings import read_settings

from . import reply, stream, tools
from .answering import Answering, RunFailed, RunIncomplete
from .rounds import ToolRounds
from .schemas import LastError, Run, RunCreateRequest
from .settings import RunsSettings
from .store import RunStore
from .stream import END, Queue
from .waits import Waits

__all__ = ["Queue", "Runner"]


class Runner(Answering, ToolRounds):
    """Runs: their lifecycle, status and streams (how they answer: ``Answering``; their tool
    rounds: ``ToolRounds``)."""

    def __init__(self, ctx: Context, store: RunStore) -> None:
        self.ctx, self.store = ctx, store
        self.settings = read_settings(ctx, RunsSettings)
        self.tasks: dict[str, asyncio.Task[Any]] = {}
        self.runs: dict[str, Run] = {}  # active runs (their task is in ``tasks``)
        self.queues: dict[str, Queue] = {}
        self.waits = Waits()

    def svc(self, name: str) -> Any:
        return self.ctx.services.get(name)

    # ------------------------------------------------------------------ create / cancel
    async def create(self, thread: Thread, req: RunCreateRequest) -> tuple[Run, Queue | None]:
        """Start a run; with ``req.stream`` also return the queue its events go to."""
        assistant = await self.svc("assistants").get(req.assistant_id)
        code = self._has_code(assistant.id)
        try:
            model = await reply.pick_model(self.svc("models"), req, assistant, thread)
        except InvalidRequest:
            if not code:
                raise
            model = assistant.model or "*"
        offered = tools.offered(req.tools, assistant.tools)  # bad tools: a 400 now
        tools.choice(req.tool_choice, offered)
        for extra in req.additional_messages or []:
            await self.svc("messages").create(message_from_request(thread.id, extra))
        run = Run(id=new_id("run"), thread_id=thread.id, assistant_id=assistant.id, model=model,
                  instructions=reply.instructions_for(req, assistant, thread),
                  metadata=dict(req.metadata or {}), temperature=req.temperature,
                  top_p=req.top_p, max_completion_tokens=req.max_completion_tokens,
                  max_prompt_tokens=req.max_prompt_tokens,
                  tools=[t.model_dump(exclude_none=True) for t in offered],
                  parallel_tool_calls=req.parallel_tool_calls is not False,
                  tool_choice=req.tool_choice or "auto")
        # From here to the return nothing awaits: a concurrent list/retrieve (reconcile) or
        # cancel can only ever see the run saved *and* registered with its task.
        self.store.save(run)
        queue: Queue | None = asyncio.Queue() if req.stream else None
        if queue is not None:
            self.queues[run.id] = queue
        self._enqueue(run, "thread.run.created")
        self._enqueue(run, "thread.run.queued")
        task = self.ctx.spawn(self._execute(run, req, assistant, thread, code),
                              name=f"run {run.id}")
        self.runs[run.id], self.tasks[run.id] = run, task
        task.add_done_callback(lambda _t: self._ended(run))
        return run, queue

    def _has_code(self, assistant_id: str) -> bool:
        try:
            return bool(self.svc("sandbox").has_code(assistant_id))
        except ApiError:
            folder = self.svc("assistants").folder(assistant_id)
            return (folder / "index.py").is_file()

    async def cancel(self, thread_id: str, run_id: str) -> Run:
        run = self.get(thread_id, run_id)
        if run.done:
            raise InvalidRequest(f"Cannot cancel run with status '{run.status}'", param="run_id")
        live, task = self.runs.get(run_id), self.tasks.get(run_id)
        if live is not None and task is not None:
            if live.status != "cancelling":
                await self._set(live, "cancelling")
            await self._stop([task])
        return self.get(thread_id, run_id)

    async def _stop(self, tasks: list[asyncio.Task[Any]]) -> None:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(asyncio.shield(task), 10)

    async def forget_thread(self, thread_id: str) -> None:
        """The thread was deleted: cancel its active runs and drop what is stored for it."""
        self.store.forget(thread_id)
        await self._stop([self.tasks[rid] for rid, run in list(self.runs.items())
                          if run.thread_id == thread_id and rid in self.tasks])
        self.store.forget(thread_id)  # anything the cancelled runs wrote meanwhile

    def get(self, thread_id: str, run_id: str) -> Run:
        return self.reconcile(self.store.get(thread_id, run_id))

    def reconcile(self, run: Run) -> Run:
        """A run left unfinished by an earlier process can never finish: it expired."""
        if not run.done and run.id not in self.runs:
            run.status, run.expires_at = "expired", int(time.time())
            run.last_error = LastError(message="The run was interrupted (the server stopped)")
            self.store.save(run)
        return run

    # ------------------------------------------------------------------ streaming
    @staticmethod
    def events(queue: Queue) -> AsyncIterator[tuple[str, Any]]:
        """Everything put on ``queue`` (taken when the run was created) until the run ends."""
        return stream.events(queue)

    def _enqueue(self, run: Run, sse: str, data: Any = None) -> None:
        queue = self.queues.get(run.id)
        if queue is not None:
            queue.put_nowait((sse, data if data is not None else run.to_api()))

    async def _publish(self, run: Run, sse: str, bus: str | None = RUN_UPDATED,
                       data: Any = None) -> None:
        self._enqueue(run, sse, data)
        if bus is not None:
            await self.ctx.events.emit(bus, {"run": run.to_api(), "event": sse})

    async def _set(self, run: Run, status: str, **fields: Any) -> None:
        run.status = status  # type: ignore[assignment]
        for key, value in fields.items():
            setattr(run, key, value)
        self.store.save(run)
        await self._publish(run, f"thread.run.{status}")

    def _ended(self, run: Run) -> None:
        """The run's task is over, however it ended: unregister it and close its stream.

        A task cancelled before its first step never entered ``_execute``, so the run is
        finished as cancelled here.
        """
        self.tasks.pop(run.id, None)
        self.runs.pop(run.id, None)
        if not run.done:
            run.status, run.cancelled_at = "cancelled", int(time.time())
            with contextlib.suppress(Exception):
                self.store.save(run)
            self._enqueue(run, "thread.run.cancelled")
            with contextlib.suppress(Exception):  # the extension may be unloading
                self.ctx.spawn(self.ctx.events.emit(
                    RUN_UPDATED, {"run": run.to_api(), "event": "thread.run.cancelled"}))
        queue = self.queues.pop(run.id, None)
        if queue is not None:
            queue.put_nowait(END)

    # ------------------------------------------------------------------ execution
    async def _execute(self, run: Run, req: RunCreateRequest, assistant: Assistant,
                       thread: Thread, code: bool) -> None:
        now = lambda: int(time.time())  # noqa: E731
        try:
            # The stream already got created/queued (in ``create``); the bus gets them here.
            await self.ctx.events.emit(RUN_CREATED, {"run": run.to_api(),
                                                     "event": "thread.run.created"})
            await self.ctx.events.emit(RUN_UPDATED, {"run": run.to_api(),
                                                     "event": "thread.run.queued"})
            await self._set(run, "in_progress", started_at=now())
            async with asyncio.timeout(self.settings.run_timeout):
                if code:
                    await self._code(run, assistant)
                else:
                    await self._plain(run, req, assistant, thread)
            await self._set(run, "completed", completed_at=now())
        except asyncio.CancelledError:
            await self._set(run, "cancelled", cancelled_at=now())
        except TimeoutError:
            await self._set(run, "expired", expires_at=now(), last_error=LastError(
                message="The run took longer than the configured run_timeout"))
        except RunIncomplete as exc:
            await self._set(run, "incomplete", incomplete_details={
                "reason": exc.reason, "message": f"No more tool calls ran: {exc.message}"})
        except Exception as exc:  # noqa: BLE001 - every failure ends as a failed run
            failure = self._failure(exc)
            if failure.detail:
                run.metadata["jan_error"] = failure.detail
            await self._set(run, "failed", failed_at=now(),
                            last_error=LastError(code=failure.code, message=failure.message))

    def _failure(self, exc: Exception) -> RunFailed:
        if isinstance(exc, RunFailed):
            return exc
        if isinstance(exc, SandboxError):
            return RunFailed(exc.message, detail=exc.code)
        if isinstance(exc, Overloaded):
            return RunFailed(exc.message, "rate_limit_exceeded")
        if isinstance(exc, ApiError):
            return RunFailed(exc.message, "invalid_prompt" if exc.status == 400 else "server_error")
        self.ctx.log.exception("run failed")
        return RunFailed(f"Internal error while running: {type(exc).__name__}")

