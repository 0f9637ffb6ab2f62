"""``/v1/vector_stores``: stores, their files, file batches, and search."""

from __future__ import annotations

from typing import Any

from jan.sdk import Context
from jan.sdk.errors import ApiError, InvalidRequest
from jan.sdk.http import Request, Response, json_response, page_query, read_body
from jan.sdk.openai_shapes import page_to_api

from .backend import Files
from .schemas import BatchCreate, FileAdd, FileUpdate, SearchRequest, StoreCreate, StoreModify
from .service import VectorStores

VS = "/v1/vector_stores/{vs_id}"
STATUSES = ("in_progress", "completed", "failed", "cancelled")


def _dump(model: Any) -> Any:
    return model.model_dump(exclude_none=True) if model is not None else None


class VectorStoreRoutes:
    def __init__(self, ctx: Context, files: Files, stores: VectorStores) -> None:
        self.ctx, self.files, self.vs = ctx, files, stores

    def table(self) -> list[tuple[str, Any, list[str]]]:
        return [
            ("/v1/vector_stores", self.create, ["POST"]),
            ("/v1/vector_stores", self.list, ["GET"]),
            (VS, self.retrieve, ["GET"]),
            (VS, self.modify, ["POST"]),
            (VS, self.delete, ["DELETE"]),
            (VS + "/search", self.search, ["POST"]),
            (VS + "/files", self.add_file, ["POST"]),
            (VS + "/files", self.list_files, ["GET"]),
            (VS + "/files/{file_id}", self.get_file, ["GET"]),
            (VS + "/files/{file_id}", self.update_file, ["POST"]),
            (VS + "/files/{file_id}", self.remove_file, ["DELETE"]),
            (VS + "/files/{file_id}/content", self.file_content, ["GET"]),
            (VS + "/file_batches", self.create_batch, ["POST"]),
            (VS + "/file_batches/{batch_id}", self.get_batch, ["GET"]),
            (VS + "/file_batches/{batch_id}/cancel", self.cancel_batch, ["POST"]),
            (VS + "/file_batches/{batch_id}/files", self.batch_files, ["GET"]),
        ]

    # ------------------------------------------------------------------ stores
    async def create(self, request: Request) -> Response:
        body = await read_body(request, StoreCreate, optional=True)
        for file_id in body.file_ids:
            self.files.get(file_id)
        doc = self.vs.create_store(name=body.name, metadata=body.metadata,
                                   expires_after=_dump(body.expires_after),
                                   description=body.description)
        added = [self.vs.add_file(doc["id"], file_id, strategy=_dump(body.chunking_strategy))
                 for file_id in body.file_ids]
        await self.ctx.events.emit("vector_store.created", {"id": doc["id"]})
        for item in added:
            await self.ctx.events.emit("vector_store.file.created", item)
        return json_response(self.vs.to_api(doc))

    async def list(self, request: Request) -> Response:
        q = page_query(request)
        page = self.vs.list_stores(limit=q.limit, order=q.order, after=q.after, before=q.before)
        return json_response(page_to_api(page, self.vs.to_api))

    async def retrieve(self, request: Request) -> Response:
        return json_response(self.vs.to_api(self.vs.store(request.path_params["vs_id"])))

    async def modify(self, request: Request) -> Response:
        body = await read_body(request, StoreModify, optional=True)
        changes = {"name": body.name, "metadata": body.metadata,
                   "expires_after": _dump(body.expires_after)}
        doc = self.vs.modify_store(request.path_params["vs_id"], changes)
        return json_response(self.vs.to_api(doc))

    async def delete(self, request: Request) -> Response:
        vs_id = request.path_params["vs_id"]
        self.vs.delete_store(vs_id)
        await self.ctx.events.emit("vector_store.deleted", {"id": vs_id})
        return json_response({"id": vs_id, "object": "vector_store.deleted", "deleted": True})

    # ------------------------------------------------------------------ search
    async def search(self, request: Request) -> Response:
        body = await read_body(request, SearchRequest)
        vs_id = request.path_params["vs_id"]
        ranking = body.ranking_options
        hits = await self.vs.search([vs_id], body.text, limit=body.max_num_results,
                                    threshold=ranking.score_threshold if ranking else 0.0,
                                    filters=body.filters)
        data = []
        for hit in hits:
            doc = self.vs.db.file(hit.vs_id, hit.file_id) or {}
            try:
                filename = self.files.get(hit.file_id).filename
            except ApiError:
                continue  # the file was deleted while searching
            data.append({"file_id": hit.file_id, "filename": filename, "score": hit.score,
                         "attributes": doc.get("attributes") or {},
                         "content": [{"type": "text", "text": hit.text}]})
        query = body.query if isinstance(body.query, list) else [body.query]
        return json_response({"object": "vector_store.search_results.page",
                              "search_query": query, "data": data, "has_more": False,
                              "next_page": None})

    # ------------------------------------------------------------------ files
    async def add_file(self, request: Request) -> Response:
        body = await read_body(request, FileAdd)
        doc = self.vs.add_file(request.path_params["vs_id"], body.file_id,
                               attributes=body.attributes,
                               strategy=_dump(body.chunking_strategy))
        await self.ctx.events.emit("vector_store.file.created", doc)
        return json_response(doc)

    async def list_files(self, request: Request) -> Response:
        q = page_query(request)
        status = self._status_filter(request)
        page = self.vs.list_files(request.path_params["vs_id"], status=status, limit=q.limit,
                                  order=q.order, after=q.after, before=q.before)
        return json_response(page_to_api(page, lambda d: d))

    async def get_file(self, request: Request) -> Response:
        p = request.path_params
        return json_response(self.vs.file(p["vs_id"], p["file_id"]))

    async def update_file(self, request: Request) -> Response:
        body = await read_body(request, FileUpdate)
        p = request.path_params
        return json_response(self.vs.update_file(p["vs_id"], p["file_id"],
                                                 body.attributes or {}))

    async def remove_file(self, request: Request) -> Response:
        p = request.path_params
        self.vs.remove_file(p["vs_id"], p["file_id"])
        await self.ctx.events.emit("vector_store.file.deleted",
                                   {"id": p["file_id"], "vector_store_id": p["vs_id"]})
        return json_response({"id": p["file_id"], "object": "vector_store.file.deleted",
                              "deleted": True})

    async def file_content(self, request: Request) -> Response:
        p = request.path_params
        texts = self.vs.file_chunks(p["vs_id"], p["file_id"])
        return json_response({"object": "vector_store.file_content.page",
                              "data": [{"type": "text", "text": t} for t in texts],
                              "has_more": False, "next_page": None})

    # ------------------------------------------------------------------ batches
    async def create_batch(self, request: Request) -> Response:
        body = await read_body(request, BatchCreate)
        items = body.items()
        if not items:
            raise InvalidRequest("Give 'file_ids' or 'files' (at least one file)",
                                 param="file_ids")
        doc = self.vs.create_batch(request.path_params["vs_id"], items)
        api = self.vs.batch_to_api(doc)
        await self.ctx.events.emit("vector_store.file_batch.created", api)
        for item in self.vs.db.files(doc["vector_store_id"], batch_id=doc["id"]):
            await self.ctx.events.emit("vector_store.file.created", item)
        return json_response(api)

    async def get_batch(self, request: Request) -> Response:
        p = request.path_params
        return json_response(self.vs.batch_to_api(self.vs.batch(p["vs_id"], p["batch_id"])))

    async def cancel_batch(self, request: Request) -> Response:
        p = request.path_params
        return json_response(self.vs.batch_to_api(self.vs.cancel_batch(p["vs_id"],
                                                                       p["batch_id"])))

    async def batch_files(self, request: Request) -> Response:
        p = request.path_params
        self.vs.batch(p["vs_id"], p["batch_id"])
        q = page_query(request)
        page = self.vs.list_files(p["vs_id"], status=self._status_filter(request),
                                  batch_id=p["batch_id"], limit=q.limit, order=q.order,
                                  after=q.after, before=q.before)
        return json_response(page_to_api(page, lambda d: d))

    @staticmethod
    def _status_filter(request: Request) -> str | None:
        status = request.query_params.get("filter") or None
        if status is not None and status not in STATUSES:
            raise InvalidRequest(f"Invalid 'filter': must be one of {', '.join(STATUSES)}",
                                 param="filter")
        return status
