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
from jan.sdk.generation import drain
from jan.sdk.inference import ChatMessage, Done, ToolCall
from jan.sdk.models import Assistant, Message, Thread, new_id
from jan.sdk.openai_requests import message_from_request
from jan.sdk.openai_shapes import message_to_api
from jan.sdk.sandbox import SandboxError
from jan.sdk.settings import read_settings
from jan.sdk.tools import ToolBudget

from . import reply, server_tools, tools
from .schemas import LastError, Run, RunCreateRequest, RunUsage
from .settings import RunsSettings
from .store import RunStore
from .waits import Waits

END = object()
Queue = asyncio.Queue[Any]


class RunFailed(Exception):
    def __init__(self, message: str, code: str = "server_error", detail: str = "") -> None:
        super().__init__(message)
        self.message, self.code, self.detail = message, code, detail


class RunIncomplete(Exception):
    """The server-side tool budget ran out: the run ends ``incomplete`` with the reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason, self.message = reason, message


def max_tool_calls(req: RunCreateRequest, assistant: Assistant) -> int | None:
    """The request's ``max_tool_calls``, else the assistant's ``metadata.max_tool_calls``."""
    if req.max_tool_calls is not None:
        return req.max_tool_calls
    try:
        value = int(assistant.metadata.get("max_tool_calls"))
    except (TypeError, ValueError):
        return None
    return value if value >= 1 else None


class Runner:
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
    async def events(queue: Queue) -> AsyncIterator[tuple[str, Any]]:
        """Everything put on ``queue`` (taken when the run was created) until the run ends."""
        while (item := await queue.get()) is not END:
            yield item

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

    async def _announce(self, run: Run, msg_id: str) -> None:
        draft = Message(id=msg_id, thread_id=run.thread_id, assistant_id=run.assistant_id,
                        run_id=run.id, role="assistant", status="pending")
        await self._publish(run, "thread.message.created", None, message_to_api(draft))
        await self._publish(run, "thread.message.in_progress", None, message_to_api(draft))

    async def _delta(self, run: Run, msg_id: str, text: str) -> None:
        await self._publish(run, "thread.message.delta", None, {
            "id": msg_id, "object": "thread.message.delta",
            "delta": {"content": [{"index": 0, "type": "text",
                                   "text": {"value": text, "annotations": []}}]}})

    async def _finish(self, run: Run, msg_id: str, text: str, metadata: dict[str, Any],
                      annotations: list[dict[str, Any]] | None = None) -> None:
        message = Message.of_text(run.thread_id, "assistant", text, id=msg_id,
                                  assistant_id=run.assistant_id, run_id=run.id,
                                  metadata=metadata)
        if annotations and message.content[0].text is not None:
            message.content[0].text.annotations = annotations
        stored = await self.svc("messages").create(message)
        await self._publish(run, "thread.message.completed", None, message_to_api(stored))

    async def _plain(self, run: Run, req: RunCreateRequest, assistant: Assistant,
                     thread: Thread) -> None:
        registry = self.svc("models")
        entry = await registry.get(run.model)
        if not entry.downloaded:
            raise RunFailed(f"Model '{run.model}' is not downloaded", "invalid_prompt")
        limit = self.settings.history_limit
        past = await self._history(run.thread_id, limit)
        found = await reply.file_search(self.ctx.services, assistant, thread, past)
        messages = reply.history(past, run.instructions + (found.instructions if found else ""))
        gen = reply.generation(entry, req, assistant, thread, messages)
        offered = tools.offered(req.tools, assistant.tools)
        on_server = await server_tools.offered(self.ctx.services, assistant.tools)
        offered += on_server
        if offered:
            gen.tools, gen.tool_choice = offered, tools.choice(req.tool_choice, offered)
            gen.parallel_tool_calls = req.parallel_tool_calls is not False
        spec = reply.load_spec(registry, entry, assistant, thread)
        usage = RunUsage()
        budget = ToolBudget(max_tool_calls(req, assistant), self.settings.tool_time_budget)
        while True:  # each tool round: calls → requires_action → outputs → generate again
            msg_id = new_id("msg")
            text, calls, done = await self._turn(run, spec, gen, msg_id)
            if done is not None:
                u = done.usage
                usage.prompt_tokens += u.prompt_tokens
                usage.completion_tokens += u.completion_tokens
                usage.total_tokens += u.total_tokens
            run.usage = usage
            if not calls:
                annotations: list[dict[str, Any]] = []
                if found is not None:  # file_search: source markers + file_citation annotations
                    cited, annotations = found.cite(text)
                    if len(cited) > len(text):
                        await self._delta(run, msg_id, cited[len(text):])
                    text = cited
                await self._finish(run, msg_id, text, {}, annotations)
                await self._step(run, tools.step(run, "message_creation",
                                                 {"message_id": msg_id}, "completed"))
                return
            if on_server and {c.name for c in calls} <= {t.function.name for t in on_server}:
                refused = budget.refusal(len(calls))
                if refused is not None:  # the calls are not kept: none of them ran
                    if text:
                        await self._finish(run, msg_id, text, {})
                    raise RunIncomplete(*refused)
                outputs = await self._server_calls(run, msg_id, text, calls)
                budget.used += len(calls)
            else:
                outputs = await self._call_tools(run, msg_id, text, calls)
            gen.messages = [*(gen.messages or []), ChatMessage(
                role="assistant", content=text or None, tool_calls=calls)]
            gen.messages += [ChatMessage(role="tool", tool_call_id=c.id, name=c.name,
                                         content=outputs[c.id]) for c in calls]
            # "required" (or a named tool) means: call before answering, not call forever.
            gen.tool_choice = "auto"

    async def _turn(self, run: Run, spec: Any, gen: Any, msg_id: str
                    ) -> tuple[str, list[ToolCall], Done | None]:
        """One generation: text is streamed as a message delta, calls are collected."""
        announced = False

        async def on_text(text: str) -> None:
            nonlocal announced
            if text and not announced:
                await self._announce(run, msg_id)
                announced = True
            if announced:
                await self._delta(run, msg_id, text)

        out = await drain(self.svc("inference").generate(spec, gen), on_text)
        if not announced and not out.tool_calls:
            await self._announce(run, msg_id)
        calls = [c if c.id else c.model_copy(update={"id": new_id("call")})
                 for c in out.tool_calls]
        return out.text, calls, out.done

    async def _step(self, run: Run, step: dict[str, Any]) -> dict[str, Any]:
        steps = [s for s in self.store.steps(run.thread_id, run.id) if s["id"] != step["id"]]
        self.store.save_steps(run.thread_id, run.id, [*steps, step])
        event = "completed" if step["status"] == "completed" else "created"
        await self._publish(run, f"thread.run.step.{event}", None, step)
        return step

    async def _call_tools(self, run: Run, msg_id: str, text: str, calls: list[ToolCall]
                          ) -> dict[str, str]:
        """Keep the calls (Jan's message shape), pause in requires_action, take the outputs."""
        message = Message.of_text(run.thread_id, "assistant", text, id=msg_id,
                                  assistant_id=run.assistant_id, run_id=run.id,
                                  metadata={"tool_calls": tools.records(calls)})
        await self.svc("messages").create(message)
        step = await self._step(run, tools.step(
            run, "tool_calls", [{**tools.api_call(c)} for c in calls]))
        waiting = self.waits.expect(run.id, calls)
        await self._set(run, "requires_action", required_action={
            "type": "submit_tool_outputs",
            "submit_tool_outputs": {"tool_calls": [tools.api_call(c) for c in calls]}})
        queue = self.queues.pop(run.id, None)
        if queue is not None:  # a stream ends at requires_action, as OpenAI's does
            queue.put_nowait(END)
        outputs = await waiting
        await self.svc("messages").update(run.thread_id, msg_id, {
            "metadata": {"tool_calls": tools.records(calls, outputs)}})
        step["status"], step["completed_at"] = "completed", int(time.time())
        step["step_details"]["tool_calls"] = [
            {**tools.api_call(c), "function": {**tools.api_call(c)["function"],
                                               "output": outputs[c.id]}} for c in calls]
        await self._step(run, step)
        await self._set(run, "in_progress", required_action=None)
        return outputs

    async def _server_calls(self, run: Run, msg_id: str, text: str, calls: list[ToolCall]
                            ) -> dict[str, str]:
        """Server tools run here (after approval, see server_tools); kept like client calls."""
        message = Message.of_text(run.thread_id, "assistant", text, id=msg_id,
                                  assistant_id=run.assistant_id, run_id=run.id,
                                  metadata={"tool_calls": tools.records(calls)})
        await self.svc("messages").create(message)
        step = await self._step(run, tools.step(
            run, "tool_calls", [{**tools.api_call(c)} for c in calls]))

        async def pause(approvals: list[dict[str, Any]]) -> None:
            await self._set(run, "requires_action", required_action={
                "type": "submit_tool_outputs",
                "submit_tool_outputs": {"tool_calls": [tools.api_call(c) for c in calls]},
                "jan_tool_approvals": approvals})
            queue = self.queues.pop(run.id, None)
            if queue is not None:
                queue.put_nowait(END)

        outputs = await server_tools.run_calls(self.svc("tools"), calls, run.thread_id, pause)
        await self.svc("messages").update(run.thread_id, msg_id, {
            "metadata": {"tool_calls": tools.records(calls, outputs)}})
        step["status"], step["completed_at"] = "completed", int(time.time())
        step["step_details"]["tool_calls"] = [
            {**tools.api_call(c), "function": {**tools.api_call(c)["function"],
                                               "output": outputs[c.id]}} for c in calls]
        await self._step(run, step)
        if run.status == "requires_action":
            await self._set(run, "in_progress", required_action=None)
        return outputs

    async def submit_tool_outputs(self, thread_id: str, run_id: str, outputs: list[dict],
                                  stream: bool) -> tuple[Run, Queue | None]:
        run = self.get(thread_id, run_id)
        if run.status != "requires_action" or run_id not in self.runs:
            raise InvalidRequest(f"Run '{run_id}' is not waiting for tool outputs (status "
                                 f"'{run.status}')", param="run_id")
        got = self.waits.check(run_id, outputs)
        queue: Queue | None = asyncio.Queue() if stream else None
        if queue is not None:
            self.queues[run_id] = queue
        live = self.runs.get(run_id, run)
        # Answered before the run's task resumes: whoever polls next must not see
        # requires_action again (OpenAI answers "queued" here too).
        live.status, live.required_action = "queued", None
        self.store.save(live)
        self.waits.resolve(run_id, got)
        return live, queue

    async def _history(self, thread_id: str, limit: int) -> list[Message]:
        """The thread's last ``limit`` messages, oldest first (stores serve 100 per page)."""
        newest_first: list[Message] = []
        after: str | None = None
        while len(newest_first) < limit:
            page = await self.svc("messages").list(
                thread_id, limit=min(100, limit - len(newest_first)), order="desc", after=after)
            newest_first.extend(page.data)
            if not page.has_more or not page.data:
                break
            after = page.data[-1].id
        return list(reversed(newest_first))

    async def _code(self, run: Run, assistant: Assistant) -> None:
        sandbox = self.svc("sandbox")
        try:
            result = await sandbox.run(assistant.id, thread_id=run.thread_id, run_id=run.id,
                                       model=None if run.model == "*" else run.model)
        except SandboxError as exc:
            with contextlib.suppress(Exception):
                run.metadata["jan_sandbox"] = sandbox.probe().level
            raise exc
        run.metadata["jan_sandbox"] = result.isolation
        run.metadata["jan_sandbox_layers"] = ",".join(result.layers)[:512]
        run.usage = RunUsage()
        if result.content is None:
            return
        msg_id = new_id("msg")
        await self._announce(run, msg_id)
        await self._delta(run, msg_id, result.content)
        meta = {str(k): v for k, v in result.metadata.items()}
        await self._finish(run, msg_id, result.content, {**meta, "sandbox": result.isolation})
