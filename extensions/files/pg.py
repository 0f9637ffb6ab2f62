"""The PostgreSQL connection the files extension uses when ``"backend": "postgresql"``.

Synchronous psycopg 3 (the driver ``threads-postgresql`` uses), pooled: the index's calls are
short and are made both from the event loop and from worker threads, exactly like the SQLite
``IndexDB`` they stand in for. The schema is versioned in the ``schema_version`` table that
``threads-postgresql`` also uses (component ``files``), under the same advisory lock, so
instances starting together never race. A database that is down is a 503, never a traceback.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from jan.sdk.errors import InvalidRequest, Unavailable

ENV_DSN = "JAN_POSTGRES_DSN"

MIGRATIONS: list[list[str]] = [[
    "CREATE TABLE IF NOT EXISTS files_vector_stores (id text PRIMARY KEY, doc text NOT NULL,"
    " model text, created_at bigint NOT NULL)",
    "CREATE TABLE IF NOT EXISTS files_vs_files (vs_id text NOT NULL, file_id text NOT NULL,"
    " doc text NOT NULL, status text NOT NULL, batch_id text, created_at bigint NOT NULL,"
    " claimed_by text, claimed_at timestamptz, PRIMARY KEY (vs_id, file_id))",
    "CREATE INDEX IF NOT EXISTS files_vs_files_file ON files_vs_files (file_id)",
    "CREATE TABLE IF NOT EXISTS files_batches (id text PRIMARY KEY, vs_id text NOT NULL,"
    " doc text NOT NULL, created_at bigint NOT NULL)",
    # The keyword side: a stored tsvector (English stemming, like FTS5's porter) under GIN.
    "CREATE TABLE IF NOT EXISTS files_chunks (id bigserial PRIMARY KEY, vs_id text NOT NULL,"
    " file_id text NOT NULL, seq integer NOT NULL, text text NOT NULL, model text NOT NULL,"
    " vector bytea NOT NULL,"
    " tsv tsvector GENERATED ALWAYS AS (to_tsvector('english', text)) STORED)",
    "CREATE INDEX IF NOT EXISTS files_chunks_vs_file ON files_chunks (vs_id, file_id)",
    "CREATE INDEX IF NOT EXISTS files_chunks_vs_model ON files_chunks (vs_id, model)",
    "CREATE INDEX IF NOT EXISTS files_chunks_tsv ON files_chunks USING gin (tsv)",
    "CREATE TABLE IF NOT EXISTS files_generations (vs_id text PRIMARY KEY,"
    " gen bigint NOT NULL)",
    # Uploaded files themselves, so any instance can serve, index and cite them.
    "CREATE TABLE IF NOT EXISTS files_uploads (id text PRIMARY KEY, record text NOT NULL,"
    " purpose text NOT NULL, thread_id text, created_at bigint NOT NULL,"
    " content bytea NOT NULL)",
    "CREATE INDEX IF NOT EXISTS files_uploads_thread ON files_uploads (thread_id)",
]]


class PgConfigError(Exception):
    """A start-up problem: no DSN, a DSN that does not connect, a schema too new."""


def resolve_dsn(own: str, host_settings: dict[str, Any]) -> str:
    """``JAN_POSTGRES_DSN`` wins, then the files ``dsn`` setting, then threads-postgresql's."""
    shared = ((host_settings.get("extensions") or {}).get("threads-postgresql") or {})
    for dsn in (os.environ.get(ENV_DSN, ""), own, shared.get("dsn") or ""):
        if str(dsn).strip():
            return str(dsn).strip()
    raise PgConfigError(f'"backend": "postgresql" needs a DSN: set {ENV_DSN}, or settings.json '
                        '"extensions": {"files": {"dsn": ...}} (or threads-postgresql\'s)')


class Pg:
    """A small pool plus the error mapping every query goes through.

    Queries are synchronous, some on the event loop: while the database is down, waiting
    ``timeout`` for a connection on every request would stall the whole server. So the first
    failure opens a breaker: requests answer 503 at once while a background thread probes the
    database every ``PROBE_EVERY`` seconds, and the first probe that connects closes it.
    """

    PROBE_EVERY = 0.5

    def __init__(self, dsn: str, *, max_size: int = 4, timeout: float = 5.0) -> None:
        self.dsn = dsn
        self.down = threading.Event()
        self.closed = False
        try:
            psycopg.connect(dsn, connect_timeout=5).close()
        except psycopg.Error as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
            raise PgConfigError(f"files: cannot connect to PostgreSQL: {reason}") from None
        self.pool = ConnectionPool(dsn, min_size=1, max_size=max_size, timeout=timeout,
                                   kwargs={"autocommit": True, "connect_timeout": 5},
                                   check=ConnectionPool.check_connection, reconnect_timeout=0.0,
                                   open=True, name="jan-files")

    def close(self) -> None:
        self.closed = True
        self.pool.close()

    def _unavailable(self) -> Unavailable:
        return Unavailable("The database is unavailable right now; retry shortly",
                           headers={"Retry-After": "1"})

    def _trip(self) -> None:
        if self.down.is_set():
            return
        self.down.set()
        threading.Thread(target=self._probe, name="jan-files-pg-probe", daemon=True).start()

    def _probe(self) -> None:
        while not self.closed:
            try:
                psycopg.connect(self.dsn, connect_timeout=5).close()
            except psycopg.Error:
                time.sleep(self.PROBE_EVERY)
                continue
            self.down.clear()
            return

    @contextlib.contextmanager
    def conn(self, *, transaction: bool = False) -> Iterator[psycopg.Connection]:
        if self.down.is_set():
            raise self._unavailable()
        try:
            with self.pool.connection() as conn:
                if transaction:
                    with conn.transaction():
                        yield conn
                else:
                    yield conn
        except (psycopg.OperationalError, PoolTimeout):
            self._trip()
            raise self._unavailable() from None
        except psycopg.DataError as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise InvalidRequest(f"The database cannot store this value: {first}") from None

    def q(self, sql: str, args: Any = ()) -> list[tuple[Any, ...]]:
        with self.conn() as conn:
            cur = conn.execute(sql, args)
            return cur.fetchall() if cur.description else []

    def migrate(self) -> None:
        with self.conn(transaction=True) as conn:
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('jan.schema'))")
            conn.execute("CREATE TABLE IF NOT EXISTS schema_version ("
                         " component text PRIMARY KEY, version integer NOT NULL,"
                         " migrated_at timestamptz NOT NULL DEFAULT now())")
            row = conn.execute("SELECT version FROM schema_version WHERE component = 'files'"
                               ).fetchone()
            current = row[0] if row else 0
            if current > len(MIGRATIONS):
                raise PgConfigError(f"the database's files schema is version {current}, newer "
                                    f"than this extension knows ({len(MIGRATIONS)}): upgrade jan")
            for step in MIGRATIONS[current:]:
                for statement in step:
                    conn.execute(statement)
            conn.execute("INSERT INTO schema_version (component, version) VALUES ('files', %s) "
                         "ON CONFLICT (component) DO UPDATE SET version = EXCLUDED.version, "
                         "migrated_at = now()", (len(MIGRATIONS),))
