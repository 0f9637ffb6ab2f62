"""``/v1/threads/{thread_id}/runs`` and ``/v1/threads/runs`` (OpenAI's runs API)."""

from __future__ import annotations

from typing import Any

from jan.sdk.errors import NotFound
from jan.sdk.http import Request, Response, json_response, page_query, read_body, sse_response
from jan.sdk.models import new_id
from jan.sdk.openai_requests import message_from_request, thread_from_request
from jan.sdk.openai_shapes import cursor_window, page_to_api

from .runner import Queue, Runner
from .schemas import Run, RunCreateRequest, SubmitToolOutputsRequest, ThreadRunRequest

BASE = "/v1/threads/{thread_id}/runs"
POLL_HEADERS = {"openai-poll-after-ms": "100"}


class RunRoutes:
    def __init__(self, runner: Runner) -> None:
        self.runner = runner

    def table(self) -> list[tuple[str, Any, list[str]]]:
        return [
            ("/v1/threads/runs", self.create_thread_and_run, ["POST"]),
            (BASE, self.create, ["POST"]),
            (BASE, self.list, ["GET"]),
            (BASE + "/{run_id}", self.retrieve, ["GET"]),
            (BASE + "/{run_id}/cancel", self.cancel, ["POST"]),
            (BASE + "/{run_id}/submit_tool_outputs", self.submit_tool_outputs, ["POST"]),
            (BASE + "/{run_id}/steps", self.list_steps, ["GET"]),
            (BASE + "/{run_id}/steps/{step_id}", self.retrieve_step, ["GET"]),
        ]

    async def _thread(self, request: Request) -> Any:
        return await self.runner.svc("threads").get(request.path_params["thread_id"])

    def _answer(self, run: Run, queue: Queue | None) -> Response:
        if queue is None:
            return json_response(run.to_api(), headers=POLL_HEADERS)
        # The queue was taken when the run was created: a run that ends before the server
        # starts sending the body has left all its events (and the end marker) in it.
        return sse_response(self.runner.events(queue))

    async def create(self, request: Request) -> Response:
        thread = await self._thread(request)
        body = await read_body(request, RunCreateRequest)
        run, queue = await self.runner.create(thread, body)
        return self._answer(run, queue)

    async def create_thread_and_run(self, request: Request) -> Response:
        body = await read_body(request, ThreadRunRequest)
        thread = await self.runner.svc("threads").create(
            thread_from_request(new_id("thread"), body.thread))
        for message in (body.thread.messages or []) if body.thread else []:
            await self.runner.svc("messages").create(message_from_request(thread.id, message))
        run, queue = await self.runner.create(thread, body)
        return self._answer(run, queue)

    async def list(self, request: Request) -> Response:
        q = page_query(request)
        thread = await self._thread(request)
        page = self.runner.store.list(thread.id, limit=q.limit, order=q.order, after=q.after,
                                      before=q.before)
        page.data = [self.runner.reconcile(r) for r in page.data]
        return json_response(page_to_api(page, Run.to_api))

    async def retrieve(self, request: Request) -> Response:
        thread = await self._thread(request)
        run = self.runner.get(thread.id, request.path_params["run_id"])
        return json_response(run.to_api(), headers=POLL_HEADERS)

    async def submit_tool_outputs(self, request: Request) -> Response:
        thread = await self._thread(request)
        body = await read_body(request, SubmitToolOutputsRequest)
        run, queue = await self.runner.submit_tool_outputs(
            thread.id, request.path_params["run_id"],
            [o.model_dump() for o in body.tool_outputs], body.stream)
        return self._answer(run, queue)

    async def list_steps(self, request: Request) -> Response:
        q = page_query(request)
        thread = await self._thread(request)
        steps = self.runner.store.steps(thread.id, request.path_params["run_id"])
        where = {s["id"]: i for i, s in enumerate(steps)}
        positions, more = cursor_window(len(steps), where.get, limit=q.limit, order=q.order,
                                        after=q.after, before=q.before)
        data = [steps[i] for i in positions]
        return json_response({"object": "list", "data": data,
                              "first_id": data[0]["id"] if data else None,
                              "last_id": data[-1]["id"] if data else None, "has_more": more})

    async def retrieve_step(self, request: Request) -> Response:
        thread = await self._thread(request)
        step_id = request.path_params["step_id"]
        for step in self.runner.store.steps(thread.id, request.path_params["run_id"]):
            if step["id"] == step_id:
                return json_response(step)
        raise NotFound(f"No run step found with id '{step_id}'", param="step_id")

    async def cancel(self, request: Request) -> Response:
        thread = await self._thread(request)
        run = await self.runner.cancel(thread.id, request.path_params["run_id"])
        return json_response(run.to_api())
