"""``MessageStore`` on PostgreSQL, in the database ``threads-postgresql`` manages.

Every write is one transaction that also queues its NOTIFY, so a request either leaves a whole
message (and tells other instances) or nothing. ``content`` is stored as ``json`` rather than
``jsonb`` because ``jsonb`` cannot hold ``\\u0000`` and content is arbitrary user text;
``metadata`` and Jan's extra fields are ``jsonb``.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import errors, sql
from psycopg.types.json import Json, Jsonb

from jan.sdk.errors import Conflict, InvalidRequest, NotFound
from jan.sdk.events import MESSAGE_CREATED, MESSAGE_DELETED, MESSAGE_UPDATED
from jan.sdk.http import parse
from jan.sdk.models import Message, Page, apply_changes
from jan.sdk.openai_shapes import deleted_to_api, message_to_api
from jan.sdk.services import Order

COLUMNS = ("thread_id", "id", "created", "updated", "role", "status", "assistant_id", "run_id",
           "content", "metadata", "extra")
SELECT = sql.SQL(", ").join(sql.Identifier(c) for c in COLUMNS)
INSERT = sql.SQL("INSERT INTO messages ({cols}) VALUES ({vals})").format(
    cols=SELECT, vals=sql.SQL(", ").join(sql.Placeholder() * len(COLUMNS)))
GET = sql.SQL("SELECT {cols} FROM messages WHERE thread_id = %s AND id = %s").format(cols=SELECT)
FIXED = frozenset({"id", "object", "thread_id", "created"})  # as in the file store

MIGRATIONS: list[list[str]] = [
    [
        """CREATE TABLE messages (
            thread_id text NOT NULL REFERENCES threads (id) ON DELETE CASCADE,
            id text NOT NULL,
            seq bigint GENERATED ALWAYS AS IDENTITY,
            created bigint NOT NULL,
            updated bigint NOT NULL,
            role text NOT NULL,
            status text NOT NULL,
            assistant_id text,
            run_id text,
            content json NOT NULL,
            metadata jsonb NOT NULL DEFAULT '{}',
            extra jsonb NOT NULL DEFAULT '{}',
            PRIMARY KEY (thread_id, id))""",
        # Listing order is insertion order (the file store's line order): page by seq.
        "CREATE INDEX messages_thread_seq ON messages (thread_id, seq)",
    ],
]


def to_row(message: Message) -> tuple[Any, ...]:
    doc = message.to_file()
    doc.pop("object", None)
    known = [doc.pop(k) for k in COLUMNS[:-1]]
    known[8] = Json(known[8])
    known[9] = Jsonb(known[9])
    return (*known, Jsonb(doc))


def from_row(row: tuple[Any, ...]) -> Message:
    *known, extra = row
    doc = dict(zip(COLUMNS[:-1], known, strict=True))
    return Message.model_validate({"object": "thread.message", **doc, **extra})


def merge(message: Message, changes: dict[str, Any]) -> Message:
    """Shallow-merge ``changes`` (``metadata`` key by key) and bump ``updated``."""
    return parse(Message, apply_changes(message.to_file(), changes, frozen=FIXED))


def thread_not_found(thread_id: str) -> NotFound:
    return NotFound(f"No thread found with id '{thread_id}'", param="thread_id")


def message_not_found(message_id: str) -> NotFound:
    return NotFound(f"No message found with id '{message_id}'", param="message_id")


class PgMessageStore:
    """Implements ``jan.sdk.services.MessageStore``."""

    def __init__(self, db: Any, events: Any) -> None:
        self.db, self.events = db, events

    async def _missing(self, conn: psycopg.AsyncConnection, thread_id: str,
                       message_id: str) -> NotFound:
        """Which 404: the thread's, or (the thread exists) the message's."""
        row = await (await conn.execute(
            "SELECT 1 FROM threads WHERE id = %s", (thread_id,))).fetchone()
        return message_not_found(message_id) if row else thread_not_found(thread_id)

    async def create(self, message: Message) -> Message:
        payload = message_to_api(message)
        try:
            async with self.db.transaction() as conn:
                await conn.execute(INSERT, to_row(message))
                await self.db.publish(conn, MESSAGE_CREATED, payload)
        except errors.ForeignKeyViolation:
            raise thread_not_found(message.thread_id) from None
        except errors.UniqueViolation:
            raise Conflict(f"A message with id '{message.id}' already exists",
                           param="id") from None
        await self.events.emit(MESSAGE_CREATED, payload)
        return message

    async def get(self, thread_id: str, message_id: str) -> Message:
        async with self.db.connection() as conn:
            row = await (await conn.execute(GET, (thread_id, message_id))).fetchone()
            if row is None:
                raise await self._missing(conn, thread_id, message_id)
        return from_row(row)

    async def list(self, thread_id: str, *, limit: int = 20, order: Order = "desc",
                   after: str | None = None, before: str | None = None) -> Page[Message]:
        async with self.db.connection() as conn:
            try:
                rows, has_more = await self.db.fetch_page(
                    conn, table="messages", columns=SELECT, key=("seq",),
                    scope="thread_id = %s", scope_params=(thread_id,), limit=limit,
                    order=order, after=after, before=before)
            except InvalidRequest as exc:
                # An unknown cursor in an unknown thread: the thread's 404 comes first.
                if exc.param in ("after", "before"):
                    await self._check_thread(conn, thread_id)
                raise
            if not rows:  # an empty page: is it an empty thread or no thread at all?
                await self._check_thread(conn, thread_id)
        return Page[Message](data=[from_row(r) for r in rows], has_more=has_more)

    @staticmethod
    async def _check_thread(conn: psycopg.AsyncConnection, thread_id: str) -> None:
        row = await (await conn.execute(
            "SELECT 1 FROM threads WHERE id = %s", (thread_id,))).fetchone()
        if row is None:
            raise thread_not_found(thread_id)

    async def update(self, thread_id: str, message_id: str,
                     changes: dict[str, Any]) -> Message:
        async with self.db.transaction() as conn:
            row = await (await conn.execute(GET + sql.SQL(" FOR UPDATE"),
                                            (thread_id, message_id))).fetchone()
            if row is None:
                raise await self._missing(conn, thread_id, message_id)
            message = merge(from_row(row), changes)
            values = to_row(message)
            await conn.execute(
                "UPDATE messages SET created = %s, updated = %s, role = %s, status = %s,"
                " assistant_id = %s, run_id = %s, content = %s, metadata = %s, extra = %s"
                " WHERE thread_id = %s AND id = %s", (*values[2:], thread_id, message_id))
            payload = message_to_api(message)
            await self.db.publish(conn, MESSAGE_UPDATED, payload)
        await self.events.emit(MESSAGE_UPDATED, payload)
        return message

    async def delete(self, thread_id: str, message_id: str) -> None:
        payload = deleted_to_api(message_id, "thread.message")
        async with self.db.transaction() as conn:
            cur = await conn.execute("DELETE FROM messages WHERE thread_id = %s AND id = %s",
                                     (thread_id, message_id))
            if cur.rowcount == 0:
                raise await self._missing(conn, thread_id, message_id)
            await self.db.publish(conn, MESSAGE_DELETED, payload)
        await self.events.emit(MESSAGE_DELETED, payload)
