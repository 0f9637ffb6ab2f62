"""``/v1/threads/{thread_id}/messages`` routes (OpenAI's create/list/retrieve/modify/delete).

The thread is checked through the ``threads`` service and messages go through the ``messages``
service, both resolved per request, so any pair of providers serves these same routes.
"""

from __future__ import annotations

from typing import Any

from jan.sdk import Context
from jan.sdk.http import Request, Response, json_response, page_query, read_body
from jan.sdk.openai_requests import (
    MessageCreateRequest,
    MessageModifyRequest,
    message_changes,
    message_from_request,
)
from jan.sdk.openai_shapes import deleted_to_api, message_to_api, page_to_api

BASE = "/v1/threads/{thread_id}/messages"


class MessageRoutes:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def table(self) -> list[tuple[str, Any, list[str]]]:
        return [
            (BASE, self.create, ["POST"]),
            (BASE, self.list, ["GET"]),
            (BASE + "/{message_id}", self.retrieve, ["GET"]),
            (BASE + "/{message_id}", self.modify, ["POST"]),
            (BASE + "/{message_id}", self.delete, ["DELETE"]),
        ]

    async def _thread_id(self, request: Request) -> str:
        """The path's thread id, after checking the thread exists (404 otherwise)."""
        thread = await self.ctx.services.get("threads").get(request.path_params["thread_id"])
        return thread.id

    def _messages(self) -> Any:
        return self.ctx.services.get("messages")

    async def create(self, request: Request) -> Response:
        thread_id = await self._thread_id(request)
        body = await read_body(request, MessageCreateRequest)
        message = await self._messages().create(message_from_request(thread_id, body))
        return json_response(message_to_api(message))

    async def list(self, request: Request) -> Response:
        q = page_query(request)
        thread_id = await self._thread_id(request)
        page = await self._messages().list(thread_id, limit=q.limit, order=q.order,
                                           after=q.after, before=q.before)
        return json_response(page_to_api(page, message_to_api))

    async def retrieve(self, request: Request) -> Response:
        thread_id = await self._thread_id(request)
        message = await self._messages().get(thread_id, request.path_params["message_id"])
        return json_response(message_to_api(message))

    async def modify(self, request: Request) -> Response:
        thread_id = await self._thread_id(request)
        body = await read_body(request, MessageModifyRequest, optional=True)
        message_id = request.path_params["message_id"]
        changes = message_changes(body)
        store = self._messages()
        message = await (store.update(thread_id, message_id, changes) if changes
                         else store.get(thread_id, message_id))
        return json_response(message_to_api(message))

    async def delete(self, request: Request) -> Response:
        thread_id = await self._thread_id(request)
        message_id = request.path_params["message_id"]
        await self._messages().delete(thread_id, message_id)
        return json_response(deleted_to_api(message_id, "thread.message"))
