"""Where files and the index live: the data folder (default) or PostgreSQL.

``settings.json`` ``"extensions": {"files": {"backend": "postgresql"}}`` puts uploaded files,
vector stores, their files, batches and chunks (texts, attributes, vectors) in PostgreSQL, so
several ``jan serve`` instances on one database share them; the DSN is ``JAN_POSTGRES_DSN``,
else the files ``dsn`` setting, else threads-postgresql's. The default (``"files"``) keeps
everything in the data folder. The usearch graphs stay local caches either way.

``Index`` is what the rest of the extension uses of the index's source of truth; ``IndexDB``
(SQLite) and ``PgIndexDB`` both provide it. ``Files`` is the same for uploaded files.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from jan.sdk import Context

from .settings import files_settings
from .store import FileRecord, FileStore

if TYPE_CHECKING:
    import numpy as np



class KeywordSearch(Protocol):
    def search(self, vs_ids: list[str], query: str, limit: int) -> list[tuple[int, float]]: ...


class Index(Protocol):
    shared: bool  # other instances write it too (sweep for work they left unclaimed)
    writes: int

    def close(self) -> None: ...
    def put_store(self, doc: dict[str, Any], model: str | None) -> None: ...
    def store(self, vs_id: str) -> tuple[dict[str, Any], str | None] | None: ...
    def stores(self) -> list[dict[str, Any]]: ...
    def delete_store(self, vs_id: str) -> None: ...
    def put_file(self, vs_id: str, doc: dict[str, Any], batch_id: str | None = None
                 ) -> None: ...
    def file(self, vs_id: str, file_id: str) -> dict[str, Any] | None: ...
    def batch_of(self, vs_id: str, file_id: str) -> str | None: ...
    def files(self, vs_id: str, *, status: str | None = None,
              batch_id: str | None = None) -> list[dict[str, Any]]: ...
    def file_counts(self, vs_id: str, batch_id: str | None = None) -> dict[str, int]: ...
    def indexed_files(self) -> list[str]: ...
    def stores_of_file(self, file_id: str) -> list[str]: ...
    def remove_file(self, vs_id: str, file_id: str) -> list[int]: ...
    def put_batch(self, vs_id: str, doc: dict[str, Any]) -> None: ...
    def batch(self, vs_id: str, batch_id: str) -> dict[str, Any] | None: ...
    def claim(self, vs_id: str, file_id: str) -> bool: ...
    def renew(self, vs_id: str, file_id: str) -> None: ...
    def unclaimed(self) -> list[tuple[str, str]]: ...
    def replace_chunks(self, vs_id: str, file_id: str, model: str, texts: list[str],
                       vectors: np.ndarray) -> list[int] | None: ...
    def data_version(self) -> int | None: ...
    def generations(self, vs_ids: list[str] | None = None) -> dict[str, int]: ...
    def chunk_ids(self, vs_id: str, model: str) -> np.ndarray: ...
    def chunk_count(self, vs_id: str | None = None, model: str | None = None) -> int: ...
    def file_texts(self, vs_id: str, file_id: str) -> list[str]: ...
    def iter_vectors(self, vs_id: str, model: str, *, file_ids: list[str] | None = None,
                     batch: int = 5000) -> Iterator[tuple[np.ndarray, np.ndarray]]: ...
    def vectors_of(self, ids: list[int]) -> Iterator[tuple[np.ndarray, np.ndarray]]: ...
    def chunks(self, ids: list[int]) -> dict[int, tuple[str, str, str]]: ...
    def keyword_index(self) -> KeywordSearch: ...


class Files(Protocol):
    max_bytes: int

    def create(self, filename: str, data: bytes, purpose: str,
               thread_id: str | None = None) -> FileRecord: ...
    def get(self, file_id: str) -> FileRecord: ...
    def read(self, file_id: str) -> bytes: ...
    def all(self) -> list[FileRecord]: ...
    def list(self, *, purpose: str | None = None, limit: int = 100, order: str = "desc",
             after: str | None = None, before: str | None = None) -> Any: ...
    def delete(self, file_id: str) -> None: ...
    def move_to_thread(self, file_id: str, thread_id: str) -> None: ...
    def count(self) -> int: ...
    def thread_deleted(self, thread_id: str) -> None: ...


class BackendError(Exception):
    """A setting that cannot work (unknown backend, no DSN, database unreachable)."""


@dataclass
class Backend:
    db: Index
    files: Files
    close: Callable[[], None]


def open_backend(ctx: Context) -> Backend:
    settings = files_settings(ctx)
    max_bytes, kind = settings.max_file_bytes, settings.backend
    folder = ctx.data.sub("vector_stores")
    if kind == "files":
        from .db import IndexDB

        db = IndexDB(folder.path("index.sqlite"))
        return Backend(db, FileStore(ctx.data, max_bytes=max_bytes), db.close)
    try:
        from .pg import Pg, PgConfigError, resolve_dsn
        from .pg_db import PgIndexDB
        from .pg_store import PgFileStore
    except ImportError as exc:
        raise BackendError(f'files: "backend": "postgresql" needs psycopg ({exc}): '
                           "pip install 'jan-py[postgresql]'") from None

    try:
        pg = Pg(resolve_dsn(settings.dsn, ctx.host_settings or {}), timeout=settings.db_timeout)
    except PgConfigError as exc:
        raise BackendError(str(exc)) from None
    try:
        pg.migrate()
    except BaseException:
        pg.close()
        raise
    return Backend(PgIndexDB(pg, _instance_id(folder.path("instance.id"))),
                   PgFileStore(pg, max_bytes=max_bytes), pg.close)


def _instance_id(path: Any) -> str:
    """This data folder's id on the database: a restarted instance resumes its own claims."""
    try:
        found = path.read_text().strip()
        if found:
            return found
    except OSError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    made = uuid.uuid4().hex
    path.write_text(made)
    return made
