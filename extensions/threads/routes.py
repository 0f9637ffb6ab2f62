"""``/v1/threads`` routes: OpenAI's create/retrieve/modify/delete plus Jan's list and PATCH.

Routes never touch files: they go through whichever ``threads`` (and ``messages``) provider
the service registry returns at request time, so a database provider reuses them unchanged.
"""

from __future__ import annotations

from typing import Any

from jan.sdk import Context
from jan.sdk.errors import InvalidRequest
from jan.sdk.http import Request, Response, json_response, page_query, read_body
from jan.sdk.models import new_id
from jan.sdk.openai_requests import (
    ThreadCreateRequest,
    ThreadModifyRequest,
    message_from_request,
    thread_changes,
    thread_from_request,
)
from jan.sdk.openai_shapes import deleted_to_api, page_to_api, thread_to_api


class ThreadRoutes:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def table(self) -> list[tuple[str, Any, list[str]]]:
        return [
            ("/v1/threads", self.create, ["POST"]),
            ("/v1/threads", self.list, ["GET"]),
            ("/v1/threads/{thread_id}", self.retrieve, ["GET"]),
            ("/v1/threads/{thread_id}", self.modify, ["POST", "PATCH"]),
            ("/v1/threads/{thread_id}", self.delete, ["DELETE"]),
        ]

    def _threads(self) -> Any:
        return self.ctx.services.get("threads")

    async def create(self, request: Request) -> Response:
        body = await read_body(request, ThreadCreateRequest, optional=True)
        messages = self.ctx.services.get("messages") if body.messages else None
        thread = await self._threads().create(thread_from_request(new_id("thread"), body))
        for item in body.messages or []:
            await messages.create(message_from_request(thread.id, item))
        return json_response(thread_to_api(thread))

    async def list(self, request: Request) -> Response:
        """``order_by=last_activity`` (Jan's extra; default ``created`` as OpenAI) lists the
        threads whose messages changed last first, for providers that support it."""
        order_by = request.query_params.get("order_by", "created")
        q = page_query(request)
        threads = self._threads()
        kw = {}
        if order_by != "created":
            if order_by not in getattr(threads, "ORDER_BY", ("created",)):
                raise InvalidRequest(f"Invalid 'order_by': {order_by!r} is not supported here "
                                     "(created, or last_activity with the file store)",
                                     param="order_by")
            kw["order_by"] = order_by
        page = await threads.list(limit=q.limit, order=q.order, after=q.after,
                                  before=q.before, **kw)
        return json_response(page_to_api(page, thread_to_api))

    async def retrieve(self, request: Request) -> Response:
        thread = await self._threads().get(request.path_params["thread_id"])
        return json_response(thread_to_api(thread))

    async def modify(self, request: Request) -> Response:
        body = await read_body(request, ThreadModifyRequest, optional=True)
        thread_id = request.path_params["thread_id"]
        changes = thread_changes(body)
        threads = self._threads()
        thread = await (threads.update(thread_id, changes) if changes else threads.get(thread_id))
        return json_response(thread_to_api(thread))

    async def delete(self, request: Request) -> Response:
        thread_id = request.path_params["thread_id"]
        await self._threads().delete(thread_id)
        return json_response(deleted_to_api(thread_id, "thread"))
