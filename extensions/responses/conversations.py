"""``/v1/conversations``: a conversation is a thread, its items are the thread's messages.

Everything goes through the ``threads`` and ``messages`` services, so the file store and the
PostgreSQL store serve conversations alike, a conversation shows in ``/v1/threads`` and any Jan
thread can be continued as a conversation. ``GET /v1/conversations`` (newest first, cursor
paginated) is our addition: the specification has no list, and every sidebar needs one.
"""

from __future__ import annotations

from typing import Any

from jan.sdk.errors import InvalidRequest, NotFound
from jan.sdk.http import Request, Response, json_response, page_query, parse, read_body
from jan.sdk.models import Thread, new_id
from jan.sdk.openai_shapes import metadata_to_api, ts_to_s

from . import items as it
from .schemas import ConversationCreate, ConversationUpdate, ItemsCreate


def conversation_to_api(thread: Thread) -> dict[str, Any]:
    return {"id": thread.id, "object": "conversation", "created_at": ts_to_s(thread.created),
            "metadata": metadata_to_api(thread.metadata)}


def _list(data: list[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    return {"object": "list", "data": data, "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None, "has_more": has_more}


class ConversationRoutes:
    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx

    def svc(self, name: str) -> Any:
        return self.ctx.services.get(name)

    def table(self) -> list[tuple[str, Any, list[str]]]:
        base = "/v1/conversations"
        return [
            (base, self.create, ["POST"]),
            (base, self.list, ["GET"]),
            (base + "/{conversation_id}", self.retrieve, ["GET"]),
            (base + "/{conversation_id}", self.update, ["POST"]),
            (base + "/{conversation_id}", self.delete, ["DELETE"]),
            (base + "/{conversation_id}/items", self.list_items, ["GET"]),
            (base + "/{conversation_id}/items", self.create_items, ["POST"]),
            (base + "/{conversation_id}/items/{item_id}", self.get_item, ["GET"]),
            (base + "/{conversation_id}/items/{item_id}", self.delete_item, ["DELETE"]),
        ]

    async def _thread(self, conversation_id: str) -> Thread:
        try:
            return await self.svc("threads").get(conversation_id)
        except NotFound:
            raise NotFound(f"No conversation found with id '{conversation_id}'",
                           param="conversation_id") from None

    async def _add(self, thread_id: str, raw: list[dict[str, Any]]) -> list[dict[str, Any]]:
        items = it.normalize(raw, "items")
        refs = [i for i in items if i["type"] == "item_reference"]
        if refs:
            raise InvalidRequest("Invalid 'items': item references cannot be added to a "
                                 "conversation", param="items")
        messages = self.svc("messages")
        added = []
        for item in items:
            message = await messages.create(it.to_message(thread_id, item))
            added.append(it.from_message(message))
        return added

    # ------------------------------------------------------------------ conversations
    async def create(self, request: Request) -> Response:
        req = await read_body(request, ConversationCreate, optional=True)
        items = it.normalize(req.items or [], "items")  # validate before creating anything
        del items
        thread = await self.svc("threads").create(
            Thread(id=new_id("conv"), title="", metadata=req.metadata or {}))
        if req.items:
            try:
                await self._add(thread.id, req.items)
            except Exception:
                await self.svc("threads").delete(thread.id)
                raise
        return json_response(conversation_to_api(thread))

    async def list(self, request: Request) -> Response:
        q = page_query(request)
        page = await self.svc("threads").list(limit=q.limit, order=q.order, after=q.after,
                                               before=q.before)
        return json_response(_list([conversation_to_api(t) for t in page.data], page.has_more))

    async def retrieve(self, request: Request) -> Response:
        thread = await self._thread(request.path_params["conversation_id"])
        return json_response(conversation_to_api(thread))

    async def update(self, request: Request) -> Response:
        conversation_id = request.path_params["conversation_id"]
        req = await read_body(request, ConversationUpdate)
        await self._thread(conversation_id)
        thread = await self.svc("threads").update(conversation_id,
                                                  {"metadata": req.metadata or {}})
        return json_response(conversation_to_api(thread))

    async def delete(self, request: Request) -> Response:
        conversation_id = request.path_params["conversation_id"]
        await self._thread(conversation_id)
        await self.svc("threads").delete(conversation_id)
        return json_response({"id": conversation_id, "object": "conversation.deleted",
                              "deleted": True})

    # ------------------------------------------------------------------ items
    async def list_items(self, request: Request) -> Response:
        conversation_id = request.path_params["conversation_id"]
        q = page_query(request)
        await self._thread(conversation_id)
        if request.query_params.getlist("include"):
            raise InvalidRequest("Unsupported parameter: 'include'", param="include",
                                 code="unsupported_parameter")
        page = await self.svc("messages").list(conversation_id, limit=q.limit, order=q.order,
                                                after=q.after, before=q.before)
        return json_response(_list([it.from_message(m) for m in page.data], page.has_more))

    async def create_items(self, request: Request) -> Response:
        conversation_id = request.path_params["conversation_id"]
        body = await read_body(request)
        if request.query_params.getlist("include"):
            raise InvalidRequest("Unsupported parameter: 'include'", param="include",
                                 code="unsupported_parameter")
        req = parse(ItemsCreate, body)
        await self._thread(conversation_id)
        it.normalize(req.items, "items")  # all or nothing: validate every item first
        added = await self._add(conversation_id, req.items)
        return json_response(_list(added, False))

    async def _item(self, conversation_id: str, item_id: str) -> Any:
        await self._thread(conversation_id)
        try:
            return await self.svc("messages").get(conversation_id, item_id)
        except NotFound:
            raise NotFound(f"No item found with id '{item_id}'", param="item_id") from None

    async def get_item(self, request: Request) -> Response:
        message = await self._item(request.path_params["conversation_id"],
                                   request.path_params["item_id"])
        return json_response(it.from_message(message))

    async def delete_item(self, request: Request) -> Response:
        conversation_id = request.path_params["conversation_id"]
        item_id = request.path_params["item_id"]
        await self._item(conversation_id, item_id)
        await self.svc("messages").delete(conversation_id, item_id)
        return json_response(conversation_to_api(await self._thread(conversation_id)))
