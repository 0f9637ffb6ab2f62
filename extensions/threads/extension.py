"""threads: the file-based ``threads`` service and the ``/v1/threads`` routes."""

from __future__ import annotations

from typing import Any

from jan.sdk import Context, Extension, hookimpl

from . import cli
from .routes import ThreadRoutes
from .store import FileThreadStore


class ThreadsExtension(Extension):
    store: FileThreadStore | None = None

    def activate(self, ctx: Context) -> None:
        self.ctx = ctx
        self.store = FileThreadStore(ctx.data, ctx.events, ctx.log,
                                     index_snapshot=ctx.storage.path("index.json"))
        ctx.services.provide("threads", self.store)
        ctx.on_dispose(self.store.close)
        self.routes = ThreadRoutes(ctx)

    @hookimpl
    def register_routes(self, register: Any) -> None:
        for path, endpoint, methods in self.routes.table():
            register(path, endpoint, methods=methods)

    @hookimpl
    def register_commands(self, register: Any) -> None:
        register("threads list", "List threads, newest first",
                 configure=cli.configure_list, run=cli.run_list)
        register("threads export", "Print a thread and its messages as JSON or Markdown",
                 configure=cli.configure_export, run=cli.run_export)
        register("threads import", "Import a thread exported as JSON (prints its id)",
                 configure=cli.configure_import, run=cli.run_import)
