"""messages-postgresql: the ``messages`` service on PostgreSQL.

It uses the database of ``threads-postgresql`` (its dependency) through
``ctx.exports("threads-postgresql")`` and never imports it. Messages reference threads with a
foreign key, so when chosen for ``messages`` it requires ``threads-postgresql`` for
``threads`` too. It also contributes ``jan threads migrate``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jan.sdk import Context, Extension, hookimpl

from . import migrate
from .store import MIGRATIONS, PgMessageStore


class ModulesMismatch(Exception):
    """``modules`` picks messages-postgresql but not threads-postgresql."""


@dataclass
class MessagesExports:
    messages: PgMessageStore


class MessagesPostgresExtension(Extension):
    async def activate(self, ctx: Context) -> MessagesExports:
        self.ctx = ctx
        modules = ctx.host_settings.get("modules") or {}
        chosen = modules.get("messages") == ctx.id
        if chosen and modules.get("threads") != "threads-postgresql":
            raise ModulesMismatch(
                'settings.json "modules" chooses messages-postgresql for "messages", which '
                'needs "threads": "threads-postgresql" too (messages reference their thread)')
        shared: Any = ctx.exports("threads-postgresql")
        await shared.db.migrate("messages", MIGRATIONS)
        store = PgMessageStore(shared.db, ctx.events)
        if chosen:
            ctx.services.provide("messages", store)
        return MessagesExports(messages=store)

    @hookimpl
    def register_commands(self, register: Any) -> None:
        register("threads migrate",
                 "Copy all threads and messages to PostgreSQL or back to files "
                 "(idempotent, resumable, verifies counts)",
                 configure=migrate.configure, run=migrate.run)
