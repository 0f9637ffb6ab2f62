"""``/v1/threads/{thread_id}/runs`` and ``/v1/threads/runs`` (OpenAI's runs API)."""

from __future__ import annotations

from typing import Any

from jan.sdk.http import Request, Response, json_response, page_query, read_body, sse_response
from jan.sdk.models import new_id
from jan.sdk.openai_requests import message_from_request, thread_from_request
from jan.sdk.openai_shapes import page_to_api

from .runner import Queue, Runner
from .schemas import Run, RunCreateRequest, ThreadRunRequest

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

    async def cancel(self, request: Request) -> Response:
        thread = await self._thread(request)
        run = await self.runner.cancel(thread.id, request.path_params["run_id"])
        return json_response(run.to_api())
