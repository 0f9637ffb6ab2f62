"""responses: OpenAI's Responses API and Conversations API over threads, messages and inference.

A conversation is a thread (same folder, same stores); stored responses are files under
``storage/responses/`` with a retention bound (settings ``max_stored_responses``,
``retention_days``). Services are looked up per request, so swapped providers apply at once.
"""

from __future__ import annotations

from typing import Any

from jan.sdk import Context, Extension, hookimpl

from .conversations import ConversationRoutes
from .routes import ResponseRoutes
from .store import ResponseStore


class ResponsesExtension(Extension):
    def activate(self, ctx: Context) -> None:
        self.ctx = ctx
        self.store = ResponseStore(
            ctx.storage,
            max_count=int(ctx.settings.get("max_stored_responses", 10000)),
            max_age_days=float(ctx.settings.get("retention_days", 30)), log=ctx.log)
        ctx.spawn(self._prune(), name="responses-prune")
        self.responses = ResponseRoutes(ctx, self.store)
        self.conversations = ConversationRoutes(ctx)

    async def _prune(self) -> None:
        import asyncio

        await asyncio.to_thread(self.store.prune)

    @hookimpl
    def register_routes(self, register: Any) -> None:
        for table in (self.responses.table(), self.conversations.table()):
            for path, endpoint, methods in table:
                register(path, endpoint, methods=methods)
