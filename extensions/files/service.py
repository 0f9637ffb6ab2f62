"""Vector stores, their files and batches: the logic behind the routes and the ``files`` service.

Documents are kept in OpenAI's shapes (seconds) in ``db.py``; counts and statuses are derived
at read time, so they can never drift from the files' own statuses.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from jan.sdk import Context
from jan.sdk.errors import ApiError, InvalidRequest, NotFound
from jan.sdk.models import Page, new_id
from jan.sdk.openai_shapes import cursor_window

from . import search as hybrid_search
from .backend import Files, Index
from .chunking import AUTO_MAX_TOKENS, AUTO_OVERLAP
from .indexer import Embedder, Indexer
from .vectors import Graphs

AUTO_STRATEGY = {"type": "static", "static": {"max_chunk_size_tokens": AUTO_MAX_TOKENS,
                                              "chunk_overlap_tokens": AUTO_OVERLAP}}


def static_strategy(value: dict[str, Any] | None) -> dict[str, Any]:
    """OpenAI's ``chunking_strategy`` request value → the stored (static) strategy."""
    if not value or value.get("type") == "auto":
        return AUTO_STRATEGY
    static = value.get("static") or {}
    size, overlap = static.get("max_chunk_size_tokens"), static.get("chunk_overlap_tokens")
    if value.get("type") != "static" or not isinstance(size, int) or not isinstance(overlap, int):
        raise InvalidRequest("Invalid 'chunking_strategy': expected {type: 'auto'} or {type: "
                             "'static', static: {max_chunk_size_tokens, chunk_overlap_tokens}}",
                             param="chunking_strategy")
    if not 100 <= size <= 4096 or not 0 <= overlap <= size // 2:
        raise InvalidRequest("Invalid 'chunking_strategy': max_chunk_size_tokens must be "
                             "100..4096 and chunk_overlap_tokens at most half of it",
                             param="chunking_strategy")
    return {"type": "static", "static": {"max_chunk_size_tokens": size,
                                         "chunk_overlap_tokens": overlap}}


class VectorStores:
    def __init__(self, ctx: Context, db: Index, graphs: Graphs, files: Files) -> None:
        self.ctx, self.db, self.graphs, self.files = ctx, db, graphs, files
        self.embedder = Embedder(ctx)
        self.searcher = hybrid_search.Searcher(db, graphs)
        self.indexer = Indexer(ctx, db, graphs, files, self.embedder, self._file_done)
        self.reindexing = False

    # ------------------------------------------------------------------ stores
    def create_store(self, *, name: str | None, metadata: dict[str, str] | None,
                     expires_after: dict[str, Any] | None, description: str | None = None
                     ) -> dict[str, Any]:
        now = int(time.time())
        doc = {"id": new_id("vs"), "object": "vector_store", "created_at": now, "name": name or "",
               "metadata": metadata or {}, "expires_after": expires_after,
               "last_active_at": now, "description": description}
        self.db.put_store(doc, None)
        return doc

    def store(self, vs_id: str) -> dict[str, Any]:
        found = self.db.store(vs_id) if isinstance(vs_id, str) else None
        if found is None:
            raise NotFound(f"No vector store found with id '{vs_id}'", param="vector_store_id")
        return found[0]

    def to_api(self, doc: dict[str, Any]) -> dict[str, Any]:
        counts = self.db.file_counts(doc["id"])
        usage = sum(int(f.get("usage_bytes") or 0) for f in self.db.files(doc["id"]))
        after = doc.get("expires_after")
        expires_at = doc["last_active_at"] + int(after["days"]) * 86400 if after else None
        status = "expired" if expires_at and expires_at < time.time() else (
            "in_progress" if counts["in_progress"] else "completed")
        found = self.db.store(doc["id"])
        out = {**doc, "usage_bytes": usage, "file_counts": counts, "status": status,
               "expires_at": expires_at, "metadata": doc.get("metadata") or {},
               "embedding_model": found[1] if found else None}  # Jan: whose vectors these are
        if out.get("description") is None:
            out.pop("description", None)
        return out

    def list_stores(self, **page: Any) -> Page[dict[str, Any]]:
        return _page(self.db.stores(), **page)

    def modify_store(self, vs_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        doc = self.store(vs_id)
        doc.update({k: v for k, v in changes.items() if v is not None})
        self.db.put_store(doc, self.db.store(vs_id)[1])  # type: ignore[index]
        return doc

    def delete_store(self, vs_id: str) -> None:
        self.store(vs_id)
        self.db.delete_store(vs_id)
        self.graphs.drop(vs_id)

    # ------------------------------------------------------------------ files in stores
    def add_file(self, vs_id: str, file_id: str, *, attributes: dict[str, Any] | None = None,
                 strategy: dict[str, Any] | None = None, batch_id: str | None = None
                 ) -> dict[str, Any]:
        chunking = static_strategy(strategy)
        self.store(vs_id)
        self.files.get(file_id)  # 404 for an unknown file, before anything is stored
        doc = {"id": file_id, "object": "vector_store.file", "created_at": int(time.time()),
               "vector_store_id": vs_id, "status": "in_progress", "last_error": None,
               "usage_bytes": 0, "chunking_strategy": chunking,
               "attributes": attributes or {}}
        self.db.put_file(vs_id, doc, batch_id)
        self.indexer.submit(vs_id, file_id)
        return doc

    def file(self, vs_id: str, file_id: str) -> dict[str, Any]:
        self.store(vs_id)
        doc = self.db.file(vs_id, file_id)
        if doc is None:
            raise NotFound(f"No file '{file_id}' in vector store '{vs_id}'", param="file_id")
        return doc

    def list_files(self, vs_id: str, *, status: str | None = None, batch_id: str | None = None,
                   **page: Any) -> Page[dict[str, Any]]:
        self.store(vs_id)
        return _page(self.db.files(vs_id, status=status, batch_id=batch_id), **page)

    def update_file(self, vs_id: str, file_id: str, attributes: dict[str, Any]) -> dict[str, Any]:
        doc = {**self.file(vs_id, file_id), "attributes": attributes}
        self.db.put_file(vs_id, doc)
        return doc

    def remove_file(self, vs_id: str, file_id: str) -> None:
        self.file(vs_id, file_id)
        self.graphs.remove(vs_id, self.db.remove_file(vs_id, file_id))

    def forget_file(self, file_id: str) -> list[str]:
        """The file was deleted: take its chunks out of every store."""
        stores = self.db.stores_of_file(file_id)
        for vs_id in stores:
            self.graphs.remove(vs_id, self.db.remove_file(vs_id, file_id))
        return stores

    def file_chunks(self, vs_id: str, file_id: str) -> list[str]:
        self.file(vs_id, file_id)
        return self.db.file_texts(vs_id, file_id)

    # ------------------------------------------------------------------ batches
    def create_batch(self, vs_id: str, files: list[dict[str, Any]]) -> dict[str, Any]:
        self.store(vs_id)
        for item in files:
            self.files.get(item["file_id"])
        doc = {"id": new_id("vsfb"), "object": "vector_store.files_batch",
               "created_at": int(time.time()), "vector_store_id": vs_id, "cancelled": False}
        self.db.put_batch(vs_id, doc)
        for item in files:
            self.add_file(vs_id, item["file_id"], attributes=item.get("attributes"),
                          strategy=item.get("chunking_strategy"), batch_id=doc["id"])
        return doc

    def batch(self, vs_id: str, batch_id: str) -> dict[str, Any]:
        self.store(vs_id)
        doc = self.db.batch(vs_id, batch_id)
        if doc is None:
            raise NotFound(f"No file batch '{batch_id}' in vector store '{vs_id}'",
                           param="batch_id")
        return doc

    def batch_to_api(self, doc: dict[str, Any]) -> dict[str, Any]:
        counts = self.db.file_counts(doc["vector_store_id"], doc["id"])
        status = "cancelled" if doc.get("cancelled") else (
            "in_progress" if counts["in_progress"] else
            "failed" if counts["total"] and counts["failed"] == counts["total"] else "completed")
        out = {k: v for k, v in doc.items() if k != "cancelled"}
        return {**out, "status": status, "file_counts": counts}

    def cancel_batch(self, vs_id: str, batch_id: str) -> dict[str, Any]:
        doc = self.batch(vs_id, batch_id)
        for item in self.db.files(vs_id, status="in_progress", batch_id=batch_id):
            self.db.put_file(vs_id, {**item, "status": "cancelled"})
        if self.db.file_counts(vs_id, batch_id)["cancelled"]:
            doc["cancelled"] = True
            self.db.put_batch(vs_id, doc)
        return doc

    async def _file_done(self, vs_id: str, doc: dict[str, Any]) -> None:
        await self.ctx.events.emit(f"vector_store.file.{doc['status']}", doc)
        batch_id = self.db.batch_of(vs_id, doc["id"])
        batch = self.db.batch(vs_id, batch_id) if batch_id else None
        if batch is not None and not self.db.file_counts(vs_id, batch_id)["in_progress"]:
            api = self.batch_to_api(batch)
            await self.ctx.events.emit(f"vector_store.file_batch.{api['status']}", api)

    # ------------------------------------------------------------------ search
    async def search(self, vs_ids: list[str], query: str, *, limit: int = 10,
                     threshold: float = 0.0, filters: dict[str, Any] | None = None
                     ) -> list[hybrid_search.Hit]:
        stores = []
        for vs_id in vs_ids:
            doc = self.store(vs_id)
            model = self.db.store(vs_id)[1]  # type: ignore[index]
            if doc.get("last_active_at") != (now := int(time.time())):
                self.db.put_store({**doc, "last_active_at": now}, model)  # a write: only if new
            stores.append((vs_id, model))
        vector, model = None, None
        if any(m for _, m in stores) and query.strip():
            try:
                model, vectors = await self.embedder.embed([query])
                vector = vectors[0]
            except ApiError as exc:  # no model right now: keyword ranking still answers
                self.ctx.log.warning("search without vectors: %s", exc.message)
            if model and any(m and m != model for _, m in stores) and not self.reindexing:
                self.reindexing = True  # the embedding model changed since these were indexed
                self.ctx.spawn(self.reindex_stale(), name="files re-index")
        allowed, subset = None, None
        if filters:
            attrs = {(v, f["id"]): f.get("attributes") or {} for v, _ in stores
                     for f in self.db.files(v, status="completed")}
            keep = {key for key, a in attrs.items() if hybrid_search.matches(filters, a)}
            allowed = lambda v, f: (v, f) in keep  # noqa: E731
            subset = {v: [f for vv, f in keep if vv == v] for v, _ in stores}
        # Off the event loop: a graph catching up with another process's chunks takes a while.
        return await asyncio.to_thread(
            self.searcher.hybrid, stores, query, vector, model, limit=limit,
            threshold=threshold, allowed=allowed, subset=subset)

    async def reindex_stale(self) -> int:
        """Re-queue every store whose vectors came from another model than the current one."""
        try:
            return self._requeue_stale(await self.embedder.model_id())
        finally:
            self.reindexing = False

    def _requeue_stale(self, current: str) -> int:
        count = 0
        for doc in self.db.stores():
            model = self.db.store(doc["id"])[1]  # type: ignore[index]
            if model is None or model == current:
                continue
            for item in self.db.files(doc["id"], status="completed"):
                self.db.put_file(doc["id"], {**item, "status": "in_progress"})
                self.indexer.submit(doc["id"], item["id"])
                count += 1
        return count


def _page(items: list[dict[str, Any]], *, limit: int = 20, order: str = "desc",
          after: str | None = None, before: str | None = None) -> Page[dict[str, Any]]:
    index = {item["id"]: i for i, item in enumerate(items)}
    positions, more = cursor_window(len(items), index.get, limit=limit, order=order,
                                    after=after, before=before)
    return Page(data=[items[i] for i in positions], has_more=more)
