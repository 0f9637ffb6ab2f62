"""threads: the file-based ``threads`` service and the ``/v1/threads`` routes."""

from __future__ import annotations

from typing import Any

from jan.sdk import Context, Extension, hookimpl
from jan.sdk.events import MESSAGE_CREATED

from . import cli
from .routes import ThreadRoutes
from .store import FileThreadStore
from .titles import AutoTitler


class ThreadsExtension(Extension):
    store: FileThreadStore | None = None

    def activate(self, ctx: Context) -> None:
        self.ctx = ctx
        self.store = FileThreadStore(ctx.data, ctx.events, ctx.log,
                                     index_snapshot=ctx.storage.path("index.json"))
        ctx.services.provide("threads", self.store)
        ctx.on_dispose(self.store.close)
        self.routes = ThreadRoutes(ctx)
        ctx.events.on(MESSAGE_CREATED, AutoTitler(ctx.services, ctx.log))

    @hookimpl
    def register_routes(self, register: Any) -> None:
        for path, endpoint, methods in self.routes.table():
            register(path, endpoint, methods=methods)

    @hookimpl
    def register_commands(self, register: Any) -> None:
        register("threads list", "List threads, most recently active first, with message counts",
                 configure=cli.configure_list, run=cli.run_list)
        register("threads show", "Print a thread's messages",
                 configure=cli.configure_show, run=cli.run_show)
        register("threads rm", "Delete threads and their messages",
                 configure=cli.configure_rm, run=cli.run_rm)
        register("threads rename", "Give a thread a new title",
                 configure=cli.configure_rename, run=cli.run_rename)
        register("threads export", "Print a thread and its messages as JSON or Markdown",
                 configure=cli.configure_export, run=cli.run_export)
        register("threads import", "Import a thread exported as JSON (prints its id)",
                 configure=cli.configure_import, run=cli.run_import)
