"""threads-postgresql: the ``threads`` service on PostgreSQL, and the shared database handle.

Activated when ``settings.json`` ``modules`` chooses it (or as a dependency of
``messages-postgresql``, e.g. for ``jan threads migrate``). It provides the ``threads``
service only when chosen, so a configured DSN alone never silently replaces the file store.
Its ``activate`` returns a ``PostgresExports``; ``messages-postgresql`` reaches the database
through ``ctx.exports("threads-postgresql")``.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any

from jan.sdk import Context, Extension

from .db import ENV_DSN, SETTING_DSN, Database, DatabaseConfigError, load_settings, resolve_dsn
from .relay import Relay
from .store import MIGRATIONS, PgThreadStore


@dataclass
class PostgresExports:
    """What ``messages-postgresql`` (and tests through it) may use."""

    db: Database
    threads: PgThreadStore
    relay: Relay


class ThreadsPostgresExtension(Extension):
    db: Database | None = None
    _relay_task: asyncio.Task[Any] | None = None

    async def activate(self, ctx: Context) -> PostgresExports:
        self.ctx = ctx
        settings = load_settings(ctx.settings)
        dsn, source = resolve_dsn(settings)
        if dsn is None:
            raise DatabaseConfigError(
                f"no PostgreSQL DSN configured: set {ENV_DSN} or {SETTING_DSN}")
        db = Database(dsn, source=source, settings=settings, log=ctx.log)
        await db.open()
        try:
            await db.migrate("threads", MIGRATIONS)
        except BaseException:
            await db.close()
            raise
        self.db = db
        store = PgThreadStore(db, ctx.events)
        relay = Relay(db, ctx.events, ctx.log)
        modules = ctx.host_settings.get("modules") or {}
        if modules.get("threads") == ctx.id:
            ctx.services.provide("threads", store)
            messages = modules.get("messages")
            if messages != "messages-postgresql":
                ctx.log.warning('settings.json "modules" keeps "messages": %r while threads are '
                                'in PostgreSQL; choose "messages-postgresql" too', messages)
        self._relay_task = ctx.spawn(relay.run(), name="threads-postgresql:relay")
        # Events written by other instances must reach us before we say we are ready.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(relay.listening.wait(), 5)
        return PostgresExports(db=db, threads=store, relay=relay)

    async def deactivate(self) -> None:
        if self._relay_task is not None:
            self._relay_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._relay_task
        if self.db is not None:
            await self.db.close()
