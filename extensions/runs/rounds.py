"""Tool rounds of a run: the model's calls kept in the thread (Jan's message shape) with a
``tool_calls`` run step, then answered by the client (``requires_action`` →
``submit_tool_outputs``) or by the server (server tools, after approval)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from jan.sdk.errors import InvalidRequest
from jan.sdk.inference import ToolCall
from jan.sdk.models import Message

from . import server_tools, tools
from .schemas import Run
from .stream import END, Queue


class ToolRounds:
    """The tool-round half of ``Runner`` (a mixin over the runner's state)."""

    async def _step(self, run: Run, step: dict[str, Any]) -> dict[str, Any]:
        steps = [s for s in self.store.steps(run.thread_id, run.id) if s["id"] != step["id"]]
        self.store.save_steps(run.thread_id, run.id, [*steps, step])
        event = "completed" if step["status"] == "completed" else "created"
        await self._publish(run, f"thread.run.step.{event}", None, step)
        return step

    async def _open_round(self, run: Run, msg_id: str, text: str, calls: list[ToolCall]
                          ) -> dict[str, Any]:
        """Keep the calls (Jan's message shape) and open their ``tool_calls`` step."""
        message = Message.of_text(run.thread_id, "assistant", text, id=msg_id,
                                  assistant_id=run.assistant_id, run_id=run.id,
                                  metadata={"tool_calls": tools.records(calls)})
        await self.svc("messages").create(message)
        return await self._step(run, tools.step(
            run, "tool_calls", [{**tools.api_call(c)} for c in calls]))

    async def _close_round(self, run: Run, msg_id: str, calls: list[ToolCall],
                           outputs: dict[str, str], step: dict[str, Any]) -> None:
        """The outputs into the kept message and the completed step."""
        await self.svc("messages").update(run.thread_id, msg_id, {
            "metadata": {"tool_calls": tools.records(calls, outputs)}})
        step["status"], step["completed_at"] = "completed", int(time.time())
        step["step_details"]["tool_calls"] = [
            {**tools.api_call(c), "function": {**tools.api_call(c)["function"],
                                               "output": outputs[c.id]}} for c in calls]
        await self._step(run, step)

    async def _requires_action(self, run: Run, calls: list[ToolCall], **extra: Any) -> None:
        await self._set(run, "requires_action", required_action={
            "type": "submit_tool_outputs",
            "submit_tool_outputs": {"tool_calls": [tools.api_call(c) for c in calls]},
            **extra})
        queue = self.queues.pop(run.id, None)
        if queue is not None:  # a stream ends at requires_action, as OpenAI's does
            queue.put_nowait(END)

    async def _call_tools(self, run: Run, msg_id: str, text: str, calls: list[ToolCall],
                          on_server: set[str]) -> dict[str, str]:
        """One round: calls to server tools (names in ``on_server``) run here, after approval
        (see server_tools); the others pause the run in requires_action until
        ``submit_tool_outputs``. A round may hold both: server calls first, then the client's."""
        step = await self._open_round(run, msg_id, text, calls)
        server = [c for c in calls if c.name in on_server]
        client = [c for c in calls if c.name not in on_server]
        outputs: dict[str, str] = {}
        if server:
            async def pause(approvals: list[dict[str, Any]]) -> None:
                await self._requires_action(run, server, jan_tool_approvals=approvals)

            outputs.update(await server_tools.run_calls(self.svc("tools"), server,
                                                        run.thread_id, pause))
        if client:
            waiting = self.waits.expect(run.id, client)
            await self._requires_action(run, client)
            outputs.update(await waiting)
        await self._close_round(run, msg_id, calls, outputs, step)
        # Answered: back to in_progress (submit_tool_outputs left the run "queued"; a decided
        # approval left it in requires_action).
        if client or run.status == "requires_action":
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

