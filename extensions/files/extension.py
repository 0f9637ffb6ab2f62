"""files: ``/v1/files``, ``/v1/vector_stores`` and the ``files`` retrieval service.

Uploaded files are plain files in the data folder (``files/<id>/`` or a thread's ``files/``);
the search index (SQLite with FTS5 for BM25, usearch HNSW graphs for vectors) lives in
``<data>/vector_stores/``. With ``"backend": "postgresql"`` files and the index's rows live in
PostgreSQL instead, shared by every instance on it (``backend.py``); graphs stay local caches.
Other extensions reach retrieval through ``ctx.services.get("files")``
(see ``retrieval.Retrieval``).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from jan.sdk import Context, Extension, hookimpl

from . import cli
from .backend import open_backend
from .file_routes import FileRoutes
from .retrieval import Retrieval
from .service import VectorStores
from .vectors import Graphs
from .vs_routes import VectorStoreRoutes

SWEEP_EVERY = 30.0  # seconds between looks for in-progress files no instance is indexing


class FilesExtension(Extension):
    def activate(self, ctx: Context) -> Retrieval:
        self.ctx = ctx
        self.backend = open_backend(ctx)
        self.db, files = self.backend.db, self.backend.files
        self.graphs = Graphs(ctx.data.sub("vector_stores").root, self.db)
        self.files = files
        self.stores = VectorStores(ctx, self.db, self.graphs, files)
        self.retrieval = Retrieval(ctx, files, self.stores)
        ctx.services.provide("files", self.retrieval)
        self.routes = [FileRoutes(ctx, files, self.retrieval),
                       VectorStoreRoutes(ctx, files, self.stores)]
        ctx.events.on("thread.deleted", self._thread_deleted)
        self.stores.indexer.start()
        ctx.spawn(self._resume(), name="files resume")
        return self.retrieval

    async def _resume(self) -> None:
        """Finish what an earlier process left in progress; re-index after a model change."""
        for doc in self.db.stores():
            for item in self.db.files(doc["id"], status="in_progress"):
                self.stores.indexer.submit(doc["id"], item["id"])
        with contextlib.suppress(Exception):  # no model yet: checked again on the next start
            await self.stores.reindex_stale()
        while self.db.shared:  # files another instance left (it died, or its queue is long)
            await asyncio.sleep(SWEEP_EVERY)
            try:
                for vs_id, file_id in await asyncio.to_thread(self.db.unclaimed):
                    self.stores.indexer.submit(vs_id, file_id)
            except Exception as exc:  # noqa: BLE001 - the database is down: try again later
                self.ctx.log.warning("files: looking for unclaimed work failed: %s", exc)

    async def _thread_deleted(self, _topic: str, data: Any) -> None:
        thread_id = data.get("id") if isinstance(data, dict) else None
        if isinstance(thread_id, str):
            await asyncio.to_thread(self.files.thread_deleted, thread_id)
        await asyncio.to_thread(self.retrieval.forget_missing)

    def deactivate(self) -> None:
        with contextlib.suppress(Exception):
            self.graphs.save()
        self.backend.close()

    @hookimpl
    def register_routes(self, register: Any) -> None:
        for routes in self.routes:
            for path, endpoint, methods in routes.table():
                register(path, endpoint, methods=methods)

    @hookimpl
    def register_commands(self, register: Any) -> None:
        for name, help_text, configure, run in cli.COMMANDS:
            register(name, help_text, configure=configure, run=run)
