"""runs: assistant runs over threads; code assistants go through the host's sandbox."""

from __future__ import annotations

from typing import Any

from jan.sdk import Context, Extension, hookimpl
from jan.sdk.events import THREAD_DELETED

from . import cli
from .routes import RunRoutes
from .runner import Runner
from .store import RunStore


class RunsExtension(Extension):
    def activate(self, ctx: Context) -> None:
        self.ctx = ctx
        self.store = RunStore(ctx.data, ctx.storage, ctx.log)
        self.runner = Runner(ctx, self.store)
        self.routes = RunRoutes(self.runner)
        ctx.events.on(THREAD_DELETED, self._thread_deleted)

    async def _thread_deleted(self, _topic: str, data: Any) -> None:
        thread_id = data.get("id") if isinstance(data, dict) else None
        if isinstance(thread_id, str):
            await self.runner.forget_thread(thread_id)

    @hookimpl
    def register_routes(self, register: Any) -> None:
        for path, endpoint, methods in self.routes.table():
            register(path, endpoint, methods=methods)

    @hookimpl
    def register_commands(self, register: Any) -> None:
        register("assistants new", "Create an assistant folder (--code: with a runnable index.py)",
                 configure=cli.configure_new, run=cli.run_new)
        register("assistants list", "List assistants (and which run custom code)",
                 configure=None, run=cli.run_list)
        register("assistants install", "Install an assistant's requirements.txt into its own "
                 "environment", configure=cli.configure_install, run=cli.run_install)
        register("sandbox probe", "Show the isolation assistant code gets on this machine",
                 configure=cli.configure_probe, run=cli.run_probe)
