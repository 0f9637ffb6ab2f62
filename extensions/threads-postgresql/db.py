"""The shared database handle: pool, error mapping, versioned migrations, event publishing.

``threads-postgresql`` creates one ``Database`` and exports it; ``messages-postgresql`` uses
that same object (it never imports this module). Every failure a client could see is mapped
to ``jan.sdk.errors``: the database being down or restarting is a 503 ``Unavailable``, data
PostgreSQL cannot hold (NUL characters, out-of-range numbers) is a 400.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

import psycopg
from psycopg.types.json import Json
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from jan.sdk.errors import ApiError, InvalidRequest, Unavailable

from .paging import fetch_page

ENV_DSN = "JAN_POSTGRES_DSN"
SETTING_DSN = 'settings.json "extensions": {"threads-postgresql": {"dsn": ...}}'
CHANNEL = "jan_events"
NOTIFY_LIMIT = 7500  # pg_notify payloads must stay under 8000 bytes


class DatabaseConfigError(Exception):
    """A start-up problem (no DSN, bad DSN, unreachable server, schema too new)."""


class PgSettings(BaseModel):
    """``settings.json`` ``"extensions": {"threads-postgresql": {...}}``."""

    model_config = ConfigDict(extra="ignore")

    dsn: str = ""
    pool_min_size: int = Field(default=1, ge=0)
    pool_max_size: int = Field(default=10, ge=1)
    timeout: float = Field(default=5.0, gt=0)
    """Seconds a request waits for a connection before answering 503."""
    connect_timeout: int = Field(default=5, ge=1)


def load_settings(raw: dict[str, Any]) -> PgSettings:
    try:
        return PgSettings.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err.get("loc", ()))
        raise DatabaseConfigError(
            f'invalid setting "extensions": {{"threads-postgresql": {{"{field}": ...}}}} '
            f"in settings.json: {err.get('msg')}") from None


def resolve_dsn(settings: PgSettings) -> tuple[str | None, str]:
    """The DSN and where it came from: ``JAN_POSTGRES_DSN`` wins over the extension setting."""
    env = os.environ.get(ENV_DSN, "").strip()
    if env:
        return env, ENV_DSN
    return (settings.dsn.strip() or None), SETTING_DSN


def redact(dsn: str) -> str:
    """The DSN without its password, for messages and logs."""
    try:
        params = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.Error:
        return "<unparsable DSN>"
    params.pop("password", None)
    return " ".join(f"{k}={v}" for k, v in params.items())


def _client_error(exc: psycopg.Error) -> ApiError | None:
    """Map a psycopg error to what the client should see, or ``None`` (a bug: 500)."""
    if isinstance(exc, psycopg.OperationalError | PoolTimeout):
        return Unavailable("The database is unavailable right now; retry shortly",
                           headers={"Retry-After": "1"})
    if isinstance(exc, psycopg.DataError):
        # NUL characters (jsonb/text cannot hold them), numbers out of range...
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return InvalidRequest(f"The database cannot store this value: {first_line}")
    return None


class Database:
    """A psycopg 3 async pool plus what both stores share."""

    def __init__(self, dsn: str, *, source: str, settings: PgSettings,
                 log: logging.Logger) -> None:
        self.dsn, self.source, self.log = dsn, source, log
        self.connect_timeout = settings.connect_timeout
        self.origin = uuid.uuid4().hex  # tags our NOTIFYs so we never re-emit our own events
        self.pool = AsyncConnectionPool(
            dsn,
            min_size=settings.pool_min_size,
            max_size=max(settings.pool_max_size, settings.pool_min_size),
            timeout=settings.timeout,
            kwargs={"autocommit": True, "connect_timeout": settings.connect_timeout},
            # A checkout checks the connection, so a database restart costs no request.
            check=AsyncConnectionPool.check_connection,
            # Never keep retrying a failed connection in the background with a growing
            # backoff: the next request tries afresh, so service resumes as soon as the
            # database is back.
            reconnect_timeout=0.0,
            open=False,
            name="jan-postgresql",
        )

    async def open(self) -> None:
        """Connect once directly (for a clear error), then open the pool."""
        try:
            conn = await psycopg.AsyncConnection.connect(
                self.dsn, connect_timeout=self.connect_timeout)
        except psycopg.Error as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
            raise DatabaseConfigError(
                f"cannot connect to PostgreSQL using {self.source} ({redact(self.dsn)}): "
                f"{reason}") from None
        await conn.close()
        await self.pool.open(wait=False)

    async def close(self) -> None:
        await self.pool.close()

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection]:
        """A pooled autocommit connection; database failures become API errors."""
        try:
            async with self.pool.connection() as conn:
                yield conn
        except (psycopg.Error, PoolTimeout) as exc:
            mapped = _client_error(exc)
            if mapped is None:
                raise
            if isinstance(mapped, Unavailable):
                self.log.warning("database unavailable: %s", str(exc).strip() or repr(exc))
            raise mapped from None

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[psycopg.AsyncConnection]:
        """A connection inside one transaction: all of the block's writes or none."""
        async with self.connection() as conn, conn.transaction():
            yield conn

    async def migrate(self, component: str, steps: Sequence[Sequence[str]]) -> int:
        """Bring ``component``'s tables to ``len(steps)``; return the version reached.

        Each missing step (1-based) runs once; all of them and the ``schema_version`` bump form
        one transaction (DDL is transactional in PostgreSQL), under an advisory lock so several
        instances starting together never race.
        """
        try:
            async with self.transaction() as conn:
                await conn.execute("SELECT pg_advisory_xact_lock(hashtext('jan.schema'))")
                await conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_version ("
                    " component text PRIMARY KEY, version integer NOT NULL,"
                    " migrated_at timestamptz NOT NULL DEFAULT now())")
                row = await (await conn.execute(
                    "SELECT version FROM schema_version WHERE component = %s", (component,)
                )).fetchone()
                current = row[0] if row else 0
                if current > len(steps):
                    raise DatabaseConfigError(
                        f"the database's {component} schema is version {current}, newer than "
                        f"this extension knows ({len(steps)}): upgrade jan")
                for version in range(current + 1, len(steps) + 1):
                    for statement in steps[version - 1]:
                        await conn.execute(statement)
                    self.log.info("migrated %s schema to version %d", component, version)
                await conn.execute(
                    "INSERT INTO schema_version (component, version) VALUES (%s, %s) "
                    "ON CONFLICT (component) DO UPDATE SET version = EXCLUDED.version, "
                    "migrated_at = now()", (component, len(steps)))
        except ApiError as exc:
            raise DatabaseConfigError(f"cannot migrate the {component} schema: {exc}") from None
        return len(steps)

    async def publish(self, conn: psycopg.AsyncConnection, topic: str, data: Any) -> None:
        """Tell other instances about ``topic`` once the current transaction commits.

        Small payloads ride in the NOTIFY itself; larger ones go through the ``events`` table
        (NOTIFY carries the row id), since a NOTIFY payload is limited to 8000 bytes.
        """
        body = json.dumps({"o": self.origin, "t": topic, "d": data},
                          ensure_ascii=False, separators=(",", ":"))
        if len(body.encode()) > NOTIFY_LIMIT:
            row = await (await conn.execute(
                "INSERT INTO events (origin, topic, payload) VALUES (%s, %s, %s) RETURNING id",
                (self.origin, topic, Json(data)))).fetchone()
            body = json.dumps({"o": self.origin, "t": topic, "ref": row[0]})
            await conn.execute(
                "DELETE FROM events WHERE created_at < now() - interval '10 minutes'")
        await conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, body))

    # Keyset paging over (created, id), shared with messages-postgresql through the exports.
    fetch_page = staticmethod(fetch_page)

    async def load_event(self, ref: int) -> Any:
        async with self.connection() as conn:
            row = await (await conn.execute(
                "SELECT payload FROM events WHERE id = %s", (ref,))).fetchone()
        return row[0] if row else None
