"""files: ``/v1/files``, ``/v1/vector_stores`` and the ``files`` retrieval service.

Uploaded files are plain files in the data folder (``files/<id>/`` or a thread's ``files/``);
the search index (SQLite with FTS5 for BM25, usearch HNSW graphs for vectors) lives in
``<data>/vector_stores/``. Other extensions reach retrieval through
``ctx.services.get("files")`` (see ``retrieval.Retrieval``).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from jan.sdk import Context, Extension, hookimpl

from . import cli
from .db import IndexDB
from .file_routes import FileRoutes
from .retrieval import Retrieval
from .service import VectorStores
from .store import FileStore
from .vectors import Graphs
from .vs_routes import VectorStoreRoutes


class FilesExtension(Extension):
    def activate(self, ctx: Context) -> Retrieval:
        self.ctx = ctx
        folder = ctx.data.sub("vector_stores")
        self.db = IndexDB(folder.path("index.sqlite"))
        self.graphs = Graphs(folder.root, self.db)
        files = FileStore(ctx.data, max_bytes=int(ctx.settings.get("max_file_bytes")
                                                  or 512 * 1024 * 1024))
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

    async def _thread_deleted(self, _topic: str, _data: Any) -> None:
        await asyncio.to_thread(self.retrieval.forget_missing)

    def deactivate(self) -> None:
        with contextlib.suppress(Exception):
            self.graphs.save()
        self.db.close()

    @hookimpl
    def register_routes(self, register: Any) -> None:
        for routes in self.routes:
            for path, endpoint, methods in routes.table():
                register(path, endpoint, methods=methods)

    @hookimpl
    def register_commands(self, register: Any) -> None:
        for name, help_text, configure, run in cli.COMMANDS:
            register(name, help_text, configure=configure, run=run)
