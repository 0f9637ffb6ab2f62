"""How a run's assistant answers: the plain loop (generate, run or hand out tool calls,
generate again) with its message events, and code assistants in the sandbox."""

from __future__ import annotations

import contextlib
from typing import Any

from jan.sdk.generation import drain
from jan.sdk.inference import ChatMessage, Done, ToolCall, Usage
from jan.sdk.models import Assistant, Message, Thread, new_id
from jan.sdk.openai_shapes import message_to_api
from jan.sdk.sandbox import SandboxError
from jan.sdk.tools import ToolBudget

from . import reply, server_tools, tools
from .schemas import Run, RunCreateRequest, RunUsage


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


class Answering:
    """The answering half of ``Runner`` (a mixin: it uses the runner's ``svc``, ``settings``,
    ``_publish`` and the tool rounds)."""

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
        usage = Usage()
        budget = ToolBudget(max_tool_calls(req, assistant), self.settings.tool_time_budget)
        while True:  # each tool round: calls → requires_action → outputs → generate again
            msg_id = new_id("msg")
            text, calls, done = await self._turn(run, spec, gen, msg_id)
            if done is not None:
                usage += done.usage
            run.usage = RunUsage.of(usage)
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
            server_names = {t.function.name for t in on_server}
            n_server = sum(c.name in server_names for c in calls)
            refused = budget.refusal(n_server) if n_server else None
            if refused is not None:  # the calls are not kept: none of them ran
                if text:
                    await self._finish(run, msg_id, text, {})
                raise RunIncomplete(*refused)
            outputs = await self._call_tools(run, msg_id, text, calls, server_names)
            budget.used += n_server
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
        run.usage = RunUsage.of(result.usage)
        if result.content is None:
            return
        msg_id = new_id("msg")
        await self._announce(run, msg_id)
        await self._delta(run, msg_id, result.content)
        meta = {str(k): v for k, v in result.metadata.items()}
        await self._finish(run, msg_id, result.content, {**meta, "sandbox": result.isolation})
