"""``ThreadStore`` on PostgreSQL: one row per thread, Jan's extra fields kept in JSONB.

Known fields get columns (so ordering and paging use an index); every other field of
``thread.json`` lives in ``extra``, so a thread read back equals the one written.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import errors, sql
from psycopg.types.json import Jsonb

from jan.sdk.errors import Conflict, NotFound
from jan.sdk.events import THREAD_CREATED, THREAD_DELETED, THREAD_UPDATED
from jan.sdk.http import parse
from jan.sdk.models import Page, Thread, apply_changes
from jan.sdk.openai_shapes import deleted_to_api, thread_to_api
from jan.sdk.services import Order
from jan.sdk.storage import check_id

from .db import Database

COLUMNS = ("id", "created", "updated", "title", "assistants", "metadata", "extra")
SELECT = sql.SQL(", ").join(sql.Identifier(c) for c in COLUMNS)
FIXED = frozenset({"id", "object", "created"})  # never changed by an update (as in files)

MIGRATIONS: list[list[str]] = [
    [
        """CREATE TABLE threads (
            id text PRIMARY KEY,
            created bigint NOT NULL,
            updated bigint NOT NULL,
            title text NOT NULL DEFAULT '',
            assistants jsonb NOT NULL DEFAULT '[]',
            metadata jsonb NOT NULL DEFAULT '{}',
            extra jsonb NOT NULL DEFAULT '{}')""",
        "CREATE INDEX threads_created_id ON threads (created, id)",
        """CREATE TABLE events (
            id bigserial PRIMARY KEY,
            origin text NOT NULL,
            topic text NOT NULL,
            payload json,
            created_at timestamptz NOT NULL DEFAULT now())""",
    ],
]


def to_row(thread: Thread) -> tuple[Any, ...]:
    doc = thread.to_file()
    doc.pop("object", None)
    known = {k: doc.pop(k) for k in ("id", "created", "updated", "title", "assistants",
                                      "metadata")}
    return (known["id"], known["created"], known["updated"], known["title"],
            Jsonb(known["assistants"]), Jsonb(known["metadata"]), Jsonb(doc))


def from_row(row: tuple[Any, ...]) -> Thread:
    tid, created, updated, title, assistants, metadata, extra = row
    return Thread.model_validate({
        "id": tid, "object": "thread", "title": title, "assistants": assistants,
        "created": created, "updated": updated, "metadata": metadata, **extra,
    })


def merge(thread: Thread, changes: dict[str, Any]) -> Thread:
    """Shallow-merge ``changes`` and bump ``updated``; ``metadata`` merges key by key and a
    ``None`` value removes its key (the file store's rules)."""
    return parse(Thread, apply_changes(thread.to_file(), changes, frozen=FIXED))


def _not_found(thread_id: str) -> NotFound:
    return NotFound(f"No thread found with id '{thread_id}'", param="thread_id")


class PgThreadStore:
    """Implements ``jan.sdk.services.ThreadStore``."""

    def __init__(self, db: Database, events: Any) -> None:
        self.db, self.events = db, events

    async def _emit(self, topic: str, data: Any) -> None:
        await self.events.emit(topic, data)

    async def create(self, thread: Thread) -> Thread:
        placeholders = sql.SQL(", ").join(sql.Placeholder() * len(COLUMNS))
        query = sql.SQL("INSERT INTO threads ({cols}) VALUES ({vals})").format(
            cols=SELECT, vals=placeholders)
        # Ids become folder names in the file store: refuse what could never migrate back.
        check_id(thread.id, what="id")
        payload = thread_to_api(thread)
        try:
            async with self.db.transaction() as conn:
                await conn.execute(query, to_row(thread))
                await self.db.publish(conn, THREAD_CREATED, payload)
        except errors.UniqueViolation:
            raise Conflict(f"Thread '{thread.id}' already exists", param="id") from None
        await self._emit(THREAD_CREATED, payload)
        return thread

    async def get(self, thread_id: str) -> Thread:
        async with self.db.connection() as conn:
            return await self._get(conn, thread_id)

    async def _get(self, conn: psycopg.AsyncConnection, thread_id: str,
                   lock: bool = False) -> Thread:
        query = sql.SQL("SELECT {cols} FROM threads WHERE id = %s").format(cols=SELECT)
        if lock:
            query += sql.SQL(" FOR UPDATE")
        row = await (await conn.execute(query, (thread_id,))).fetchone()
        if row is None:
            raise _not_found(thread_id)
        return from_row(row)

    async def list(self, *, limit: int = 20, order: Order = "desc",
                   after: str | None = None, before: str | None = None) -> Page[Thread]:
        async with self.db.connection() as conn:
            rows, has_more = await self.db.fetch_page(
                conn, table="threads", columns=SELECT, key=("created", "id"), scope="TRUE",
                scope_params=(),
                limit=limit, order=order, after=after, before=before)
        return Page[Thread](data=[from_row(r) for r in rows], has_more=has_more)

    async def update(self, thread_id: str, changes: dict[str, Any]) -> Thread:
        async with self.db.transaction() as conn:
            current = await self._get(conn, thread_id, lock=True)
            thread = merge(current, changes)
            row = to_row(thread)
            await conn.execute(
                "UPDATE threads SET created = %s, updated = %s, title = %s, assistants = %s,"
                " metadata = %s, extra = %s WHERE id = %s", (*row[1:], thread_id))
            payload = thread_to_api(thread)
            await self.db.publish(conn, THREAD_UPDATED, payload)
        await self._emit(THREAD_UPDATED, payload)
        return thread

    async def delete(self, thread_id: str) -> None:
        """Delete the thread; its messages go with it (``ON DELETE CASCADE``)."""
        payload = deleted_to_api(thread_id, "thread")
        async with self.db.transaction() as conn:
            cur = await conn.execute("DELETE FROM threads WHERE id = %s", (thread_id,))
            if cur.rowcount == 0:
                raise _not_found(thread_id)
            await self.db.publish(conn, THREAD_DELETED, payload)
        await self._emit(THREAD_DELETED, payload)

    async def ids(self) -> set[str]:
        """Every thread id (for migration)."""
        async with self.db.connection() as conn:
            rows = await (await conn.execute("SELECT id FROM threads")).fetchall()
        return {r[0] for r in rows}
