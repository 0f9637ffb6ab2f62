"""Uploaded files in PostgreSQL (``"backend": "postgresql"``): what ``store.FileStore`` does,
shared by every instance on the database.

The record is the same ``FileRecord`` (OpenAI's file object) as JSON text; the bytes are a
``bytea`` value, so a file uploaded on one instance can be listed, read, indexed, cited and
deleted on any other. A ``bytea`` value is read and written whole, so uploads are capped at
``MAX_BYTES`` here whatever ``max_file_bytes`` says.
"""

from __future__ import annotations

from jan.sdk.errors import NotFound
from jan.sdk.models import Page

from .pg import Pg
from .store import FileRecord, check_id, new_record, page_of

MAX_BYTES = 256 * 1024 * 1024


class PgFileStore:
    def __init__(self, pg: Pg, *, max_bytes: int) -> None:
        self.pg = pg
        self.max_bytes = min(max_bytes, MAX_BYTES)

    def create(self, filename: str, data: bytes, purpose: str,
               thread_id: str | None = None) -> FileRecord:
        record = new_record(filename, data, purpose, self.max_bytes, thread_id)
        self.pg.q("INSERT INTO files_uploads (id, record, purpose, thread_id, created_at, "
                  "content) VALUES (%s,%s,%s,%s,%s,%s)",
                  (record.id, record.model_dump_json(), purpose, thread_id, record.created_at,
                   data))
        return record

    def get(self, file_id: str) -> FileRecord:
        rows = self.pg.q("SELECT record FROM files_uploads WHERE id=%s", (check_id(file_id),))
        if not rows:
            raise NotFound(f"No file found with id '{file_id}'", param="file_id")
        return FileRecord.model_validate_json(rows[0][0])

    def read(self, file_id: str) -> bytes:
        rows = self.pg.q("SELECT content FROM files_uploads WHERE id=%s", (check_id(file_id),))
        if not rows:
            raise NotFound(f"No file found with id '{file_id}'", param="file_id")
        return bytes(rows[0][0])

    def all(self) -> list[FileRecord]:
        return [FileRecord.model_validate_json(r[0]) for r in self.pg.q(
            "SELECT record FROM files_uploads ORDER BY created_at, id")]

    def list(self, *, purpose: str | None = None, limit: int = 100, order: str = "desc",
             after: str | None = None, before: str | None = None) -> Page[FileRecord]:
        return page_of(self.all(), purpose=purpose, limit=limit, order=order, after=after,
                       before=before)

    def delete(self, file_id: str) -> None:
        if not self.pg.q("DELETE FROM files_uploads WHERE id=%s RETURNING 1",
                         (check_id(file_id),)):
            raise NotFound(f"No file found with id '{file_id}'", param="file_id")

    def move_to_thread(self, file_id: str, thread_id: str) -> None:
        """Remember the thread a file is attached to (deleted with it); a file already
        attached to some thread stays with that one."""
        record = self.get(file_id)
        if record.thread_id is None:
            moved = record.model_copy(update={"thread_id": thread_id})
            self.pg.q("UPDATE files_uploads SET record=%s, thread_id=%s WHERE id=%s",
                      (moved.model_dump_json(), thread_id, file_id))

    def count(self) -> int:
        return int(self.pg.q("SELECT count(*) FROM files_uploads")[0][0])

    def thread_deleted(self, thread_id: str) -> None:
        """The thread is gone: so are the files attached to it (as its folder would take
        them along)."""
        self.pg.q("DELETE FROM files_uploads WHERE thread_id=%s", (thread_id,))
