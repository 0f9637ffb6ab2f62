"""The index's source of truth on PostgreSQL: what ``db.IndexDB`` does, shared by instances.

Same tables as the SQLite file (``files_`` prefixed, documents as JSON text), vectors as
``bytea`` (no pgvector: Debian does not package it), and a stored ``tsvector`` under GIN for
the keyword side (``pg_keyword.py``). Every change of a store's chunks bumps its row in
``files_generations`` in the same transaction; each instance keeps its own usearch graphs
(``vectors.Graphs``) and, before a search, compares the generations of the stores it holds
(one query) to re-sync a graph another instance changed.

Indexing is claimed per file (``claim``): an instance indexes a file only after setting
``claimed_by`` on its ``in_progress`` row, so two instances never index the same file twice; a
claim not renewed for ``STALE`` (its instance died) may be taken over.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .pg import Pg

if TYPE_CHECKING:
    import numpy as np

    from .pg_keyword import PgKeyword

STALE = "5 minutes"  # a claim not renewed for this long belongs to an instance that died
SWEEP_AGE = 60  # seconds an unclaimed in_progress file waits for its own instance


class PgIndexDB:
    shared = True  # other instances write the same tables: sweep for unclaimed work

    def __init__(self, pg: Pg, owner: str) -> None:
        self.pg, self.owner = pg, owner
        self.writes = 0

    def close(self) -> None:
        """The pool is closed by whoever opened it (it also serves the file store)."""

    def _docs(self, sql: str, args: Any = ()) -> list[dict[str, Any]]:
        return [json.loads(r[0]) for r in self.pg.q(sql, args)]

    # ------------------------------------------------------------------ documents
    def put_store(self, doc: dict[str, Any], model: str | None) -> None:
        self.pg.q("INSERT INTO files_vector_stores (id, doc, model, created_at) VALUES "
                  "(%s,%s,%s,%s) ON CONFLICT (id) DO UPDATE SET doc=excluded.doc, "
                  "model=excluded.model", (doc["id"], json.dumps(doc), model, doc["created_at"]))

    def store(self, vs_id: str) -> tuple[dict[str, Any], str | None] | None:
        rows = self.pg.q("SELECT doc, model FROM files_vector_stores WHERE id=%s", (vs_id,))
        return (json.loads(rows[0][0]), rows[0][1]) if rows else None

    def stores(self) -> list[dict[str, Any]]:
        return self._docs("SELECT doc FROM files_vector_stores ORDER BY created_at, id")

    def delete_store(self, vs_id: str) -> None:
        # The files' rows first: that waits for an instance swapping a file's chunks (it holds
        # the row), so the chunk delete after it sees, and deletes, what that swap committed.
        with self.pg.conn(transaction=True) as conn:
            for table, col in (("files_vs_files", "vs_id"), ("files_chunks", "vs_id"),
                               ("files_batches", "vs_id"), ("files_vector_stores", "id")):
                conn.execute(f"DELETE FROM {table} WHERE {col}=%s", (vs_id,))
            self._bump(conn, vs_id)

    def put_file(self, vs_id: str, doc: dict[str, Any], batch_id: str | None = None) -> None:
        # A claim lasts while the file stays in progress; any other status releases it.
        self.pg.q("INSERT INTO files_vs_files (vs_id, file_id, doc, status, batch_id, created_at)"
                  " VALUES (%s,%s,%s,%s,%s,%s) ON CONFLICT (vs_id, file_id) DO UPDATE SET "
                  "doc=excluded.doc, status=excluded.status, "
                  "batch_id=coalesce(excluded.batch_id, files_vs_files.batch_id), "
                  "claimed_by=CASE WHEN excluded.status='in_progress' AND "
                  "files_vs_files.status='in_progress' THEN files_vs_files.claimed_by END",
                  (vs_id, doc["id"], json.dumps(doc), doc["status"], batch_id,
                   doc["created_at"]))

    def file(self, vs_id: str, file_id: str) -> dict[str, Any] | None:
        docs = self._docs("SELECT doc FROM files_vs_files WHERE vs_id=%s AND file_id=%s",
                          (vs_id, file_id))
        return docs[0] if docs else None

    def batch_of(self, vs_id: str, file_id: str) -> str | None:
        rows = self.pg.q("SELECT batch_id FROM files_vs_files WHERE vs_id=%s AND file_id=%s",
                         (vs_id, file_id))
        return rows[0][0] if rows else None

    def files(self, vs_id: str, *, status: str | None = None,
              batch_id: str | None = None) -> list[dict[str, Any]]:
        return self._docs("SELECT doc FROM files_vs_files WHERE vs_id=%s AND "
                          "(%s::text IS NULL OR status=%s) AND (%s::text IS NULL OR batch_id=%s) "
                          "ORDER BY created_at, file_id",
                          (vs_id, status, status, batch_id, batch_id))

    def file_counts(self, vs_id: str, batch_id: str | None = None) -> dict[str, int]:
        counts = dict.fromkeys(("in_progress", "completed", "failed", "cancelled"), 0)
        for status, n in self.pg.q("SELECT status, count(*) FROM files_vs_files WHERE vs_id=%s "
                                   "AND (%s::text IS NULL OR batch_id=%s) GROUP BY status",
                                   (vs_id, batch_id, batch_id)):
            counts[status] = n
        counts["total"] = sum(counts.values())
        return counts

    def indexed_files(self) -> list[str]:
        return [r[0] for r in self.pg.q("SELECT DISTINCT file_id FROM files_vs_files")]

    def stores_of_file(self, file_id: str) -> list[str]:
        return [r[0] for r in self.pg.q("SELECT vs_id FROM files_vs_files WHERE file_id=%s",
                                        (file_id,))]

    def remove_file(self, vs_id: str, file_id: str) -> list[int]:
        with self.pg.conn(transaction=True) as conn:  # the row first, as in delete_store
            conn.execute("DELETE FROM files_vs_files WHERE vs_id=%s AND file_id=%s",
                         (vs_id, file_id))
            ids = [r[0] for r in conn.execute(
                "DELETE FROM files_chunks WHERE vs_id=%s AND file_id=%s RETURNING id",
                (vs_id, file_id))]
            self._bump(conn, vs_id)
        return ids

    def put_batch(self, vs_id: str, doc: dict[str, Any]) -> None:
        self.pg.q("INSERT INTO files_batches (id, vs_id, doc, created_at) VALUES (%s,%s,%s,%s) "
                  "ON CONFLICT (id) DO UPDATE SET doc=excluded.doc",
                  (doc["id"], vs_id, json.dumps(doc), doc["created_at"]))

    def batch(self, vs_id: str, batch_id: str) -> dict[str, Any] | None:
        docs = self._docs("SELECT doc FROM files_batches WHERE id=%s AND vs_id=%s",
                          (batch_id, vs_id))
        return docs[0] if docs else None

    # ------------------------------------------------------------------ claims
    def claim(self, vs_id: str, file_id: str) -> bool:
        """Take this file's indexing for this instance (False: another one has it)."""
        return bool(self.pg.q(
            "UPDATE files_vs_files SET claimed_by=%s, claimed_at=now() WHERE vs_id=%s AND "
            f"file_id=%s AND status='in_progress' AND (claimed_by IS NULL OR claimed_by=%s OR "
            f"claimed_at < now() - interval '{STALE}') RETURNING 1",
            (self.owner, vs_id, file_id, self.owner)))

    def renew(self, vs_id: str, file_id: str) -> None:
        self.pg.q("UPDATE files_vs_files SET claimed_at=now() WHERE vs_id=%s AND file_id=%s "
                  "AND claimed_by=%s", (vs_id, file_id, self.owner))

    def unclaimed(self) -> list[tuple[str, str]]:
        """In-progress files nobody is indexing: left by an instance that died, or waiting
        longer than ``SWEEP_AGE`` in another instance's queue (their claim decides)."""
        return [(r[0], r[1]) for r in self.pg.q(
            "SELECT vs_id, file_id FROM files_vs_files WHERE status='in_progress' AND "
            f"((claimed_by IS NULL AND created_at < extract(epoch FROM now()) - {SWEEP_AGE}) "
            f"OR claimed_at < now() - interval '{STALE}') ORDER BY created_at")]

    # ------------------------------------------------------------------ chunks
    def replace_chunks(self, vs_id: str, file_id: str, model: str, texts: list[str],
                       vectors: np.ndarray) -> list[int] | None:
        """Swap a file's chunks for new ones in one transaction; ``None`` when the file is no
        longer in progress (removed or cancelled meanwhile, possibly on another instance)."""
        import numpy as np

        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        with self.pg.conn(transaction=True) as conn:
            if not conn.execute("SELECT 1 FROM files_vs_files WHERE vs_id=%s AND file_id=%s AND "
                                "status='in_progress' FOR UPDATE", (vs_id, file_id)).fetchall():
                return None
            conn.execute("DELETE FROM files_chunks WHERE vs_id=%s AND file_id=%s",
                         (vs_id, file_id))
            rows = conn.execute(
                "INSERT INTO files_chunks (vs_id, file_id, seq, text, model, vector) "
                "SELECT %s, %s, s, t, %s, v FROM unnest(%s::integer[], %s::text[], %s::bytea[]) "
                "AS u(s, t, v) RETURNING id, seq",
                (vs_id, file_id, model, list(range(len(texts))),
                 [t.replace("\x00", "") for t in texts],  # text cannot hold NUL
                 [v.tobytes() for v in vectors])).fetchall()
            self._bump(conn, vs_id)
        return [cid for cid, _ in sorted(rows, key=lambda r: r[1])]

    def _bump(self, conn: Any, vs_id: str) -> None:
        self.writes += 1
        conn.execute("INSERT INTO files_generations (vs_id, gen) VALUES (%s, 1) ON CONFLICT "
                     "(vs_id) DO UPDATE SET gen = files_generations.gen + 1", (vs_id,))

    def data_version(self) -> int | None:
        """No database-wide change counter here: callers compare per-store generations."""
        return None

    def generations(self, vs_ids: list[str] | None = None) -> dict[str, int]:
        if vs_ids is None:
            return dict(self.pg.q("SELECT vs_id, gen FROM files_generations"))
        if not vs_ids:
            return {}
        return dict(self.pg.q("SELECT vs_id, gen FROM files_generations WHERE vs_id = ANY(%s)",
                              (vs_ids,)))

    def chunk_ids(self, vs_id: str, model: str) -> np.ndarray:
        import numpy as np

        rows = self.pg.q("SELECT id FROM files_chunks WHERE vs_id=%s AND model=%s",
                         (vs_id, model))
        return np.fromiter((r[0] for r in rows), dtype=np.uint64, count=len(rows))

    def chunk_count(self, vs_id: str | None = None, model: str | None = None) -> int:
        return int(self.pg.q("SELECT count(*) FROM files_chunks WHERE (%s::text IS NULL OR "
                             "vs_id=%s) AND (%s::text IS NULL OR model=%s)",
                             (vs_id, vs_id, model, model))[0][0])

    def file_texts(self, vs_id: str, file_id: str) -> list[str]:
        return [r[0] for r in self.pg.q("SELECT text FROM files_chunks WHERE vs_id=%s AND "
                                        "file_id=%s ORDER BY seq", (vs_id, file_id))]

    def iter_vectors(self, vs_id: str, model: str, *, file_ids: list[str] | None = None,
                     batch: int = 5000) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        import numpy as np

        with self.pg.conn() as conn:
            cur = conn.execute("SELECT id, vector FROM files_chunks WHERE vs_id=%s AND model=%s "
                               "AND (%s::text[] IS NULL OR file_id = ANY(%s))",
                               (vs_id, model, file_ids, file_ids))
            while rows := cur.fetchmany(batch):
                yield (np.fromiter((r[0] for r in rows), dtype=np.uint64, count=len(rows)),
                       np.stack([np.frombuffer(r[1], dtype=np.float32) for r in rows]))

    def vectors_of(self, ids: list[int]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        import numpy as np

        for start in range(0, len(ids), 2000):
            rows = self.pg.q("SELECT id, vector FROM files_chunks WHERE id = ANY(%s)",
                             (ids[start:start + 2000],))
            if rows:
                yield (np.fromiter((r[0] for r in rows), dtype=np.uint64, count=len(rows)),
                       np.stack([np.frombuffer(r[1], dtype=np.float32) for r in rows]))

    def chunks(self, ids: list[int]) -> dict[int, tuple[str, str, str]]:
        if not ids:
            return {}
        return {cid: (vs_id, file_id, text) for cid, vs_id, file_id, text in self.pg.q(
            "SELECT id, vs_id, file_id, text FROM files_chunks WHERE id = ANY(%s)", (ids,))}

    def keyword_index(self) -> PgKeyword:
        from .pg_keyword import PgKeyword

        return PgKeyword(self.pg)
