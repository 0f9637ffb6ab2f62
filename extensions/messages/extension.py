"""messages: the file-based ``messages`` service and the thread messages routes."""

from __future__ import annotations

from typing import Any

from jan.sdk import Context, Extension, hookimpl

from .routes import MessageRoutes
from .store import FileMessageStore


class MessagesExtension(Extension):
    def activate(self, ctx: Context) -> None:
        self.ctx = ctx
        self.store = FileMessageStore(ctx.data, ctx.events, ctx.log,
                                      threads=lambda: ctx.services.get("threads"))
        ctx.services.provide("messages", self.store)
        self.routes = MessageRoutes(ctx)

    @hookimpl
    def register_routes(self, register: Any) -> None:
        for path, endpoint, methods in self.routes.table():
            register(path, endpoint, methods=methods)
