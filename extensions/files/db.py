"""The index's source of truth: one SQLite file in the data folder.

Vector stores, their files (status, last error, attributes), batches and every chunk (text,
embedding model, vector) live here, with an FTS5 table over chunk text for BM25. The HNSW
graphs (``vectors.py``) are caches rebuilt from these rows whenever they disagree, so deleting
a file is one transaction here and can never leave a result behind.

Several processes share the file (a server and ``jan files add``): every change of a store's
chunks bumps its row in ``generations`` in the same transaction, and ``PRAGMA data_version``
tells, for the price of a read of the header, whether another connection committed anything,
so a running server notices new chunks without a restart (``vectors.Graphs.refresh``).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # numpy is imported when first used: it costs seconds at startup
    import numpy as np

    from .keyword import KeywordIndex

SCHEMA = """
PRAGMA journal_mode=WAL;
PRAGMA synchronous=NORMAL;
CREATE TABLE IF NOT EXISTS vector_stores (
    id TEXT PRIMARY KEY, doc TEXT NOT NULL, model TEXT, created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS vs_files (
    vs_id TEXT NOT NULL, file_id TEXT NOT NULL, doc TEXT NOT NULL, status TEXT NOT NULL,
    batch_id TEXT, created_at INTEGER NOT NULL, PRIMARY KEY (vs_id, file_id));
CREATE INDEX IF NOT EXISTS vs_files_file ON vs_files(file_id);
CREATE TABLE IF NOT EXISTS batches (
    id TEXT PRIMARY KEY, vs_id TEXT NOT NULL, doc TEXT NOT NULL, created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY AUTOINCREMENT, vs_id TEXT NOT NULL, file_id TEXT NOT NULL,
    seq INTEGER NOT NULL, text TEXT NOT NULL, model TEXT NOT NULL, vector BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS chunks_vs_file ON chunks(vs_id, file_id);
-- covers "this store's chunk ids of this model" without reading rows (each holds a vector)
CREATE INDEX IF NOT EXISTS chunks_vs_model ON chunks(vs_id, model);
CREATE TABLE IF NOT EXISTS generations (vs_id TEXT PRIMARY KEY, gen INTEGER NOT NULL);
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(
    text, content='chunks', content_rowid='id', tokenize='porter unicode61');
CREATE TRIGGER IF NOT EXISTS chunks_ai AFTER INSERT ON chunks BEGIN
    INSERT INTO chunks_fts(rowid, text) VALUES (new.id, new.text); END;
CREATE TRIGGER IF NOT EXISTS chunks_ad AFTER DELETE ON chunks BEGIN
    INSERT INTO chunks_fts(chunks_fts, rowid, text) VALUES ('delete', old.id, old.text); END;
"""


class IndexDB:
    """All SQL in one place. Calls are short; a lock makes them safe from worker threads."""

    shared = False  # one machine: no other instance leaves work to sweep up

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self.lock = threading.RLock()
        self.writes = 0  # chunk changes made through this connection (caches key on it)
        self.conn.executescript(SCHEMA)

    def close(self) -> None:
        with self.lock:
            self.conn.close()

    def _q(self, sql: str, args: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        with self.lock:
            return self.conn.execute(sql, tuple(args)).fetchall()

    # ------------------------------------------------------------------ documents
    def put_store(self, doc: dict[str, Any], model: str | None) -> None:
        self._q("INSERT INTO vector_stores(id, doc, model, created_at) VALUES (?,?,?,?) "
                "ON CONFLICT(id) DO UPDATE SET doc=excluded.doc, model=excluded.model",
                (doc["id"], json.dumps(doc), model, doc["created_at"]))

    def store(self, vs_id: str) -> tuple[dict[str, Any], str | None] | None:
        rows = self._q("SELECT doc, model FROM vector_stores WHERE id=?", (vs_id,))
        return (json.loads(rows[0][0]), rows[0][1]) if rows else None

    def stores(self) -> list[dict[str, Any]]:
        return [json.loads(r[0]) for r in self._q(
            "SELECT doc FROM vector_stores ORDER BY created_at, id")]

    def delete_store(self, vs_id: str) -> None:
        with self.lock, self.conn:
            self.conn.execute("BEGIN")
            for table, col in (("chunks", "vs_id"), ("vs_files", "vs_id"), ("batches", "vs_id"),
                               ("vector_stores", "id")):
                self.conn.execute(f"DELETE FROM {table} WHERE {col}=?", (vs_id,))
            self._bump(vs_id)

    def put_file(self, vs_id: str, doc: dict[str, Any], batch_id: str | None = None) -> None:
        self._q("INSERT INTO vs_files(vs_id, file_id, doc, status, batch_id, created_at) "
                "VALUES (?,?,?,?,?,?) ON CONFLICT(vs_id, file_id) DO UPDATE SET "
                "doc=excluded.doc, status=excluded.status, "
                "batch_id=coalesce(excluded.batch_id, vs_files.batch_id)",
                (vs_id, doc["id"], json.dumps(doc), doc["status"], batch_id, doc["created_at"]))

    def file(self, vs_id: str, file_id: str) -> dict[str, Any] | None:
        rows = self._q("SELECT doc FROM vs_files WHERE vs_id=? AND file_id=?", (vs_id, file_id))
        return json.loads(rows[0][0]) if rows else None

    def batch_of(self, vs_id: str, file_id: str) -> str | None:
        rows = self._q("SELECT batch_id FROM vs_files WHERE vs_id=? AND file_id=?",
                       (vs_id, file_id))
        return rows[0][0] if rows else None

    def files(self, vs_id: str, *, status: str | None = None,
              batch_id: str | None = None) -> list[dict[str, Any]]:
        sql, args = "SELECT doc FROM vs_files WHERE vs_id=?", [vs_id]
        if status:
            sql, args = sql + " AND status=?", [*args, status]
        if batch_id:
            sql, args = sql + " AND batch_id=?", [*args, batch_id]
        return [json.loads(r[0]) for r in self._q(sql + " ORDER BY created_at, file_id", args)]

    def file_counts(self, vs_id: str, batch_id: str | None = None) -> dict[str, int]:
        sql, args = "SELECT status, count(*) FROM vs_files WHERE vs_id=?", [vs_id]
        if batch_id:
            sql, args = sql + " AND batch_id=?", [*args, batch_id]
        counts = dict.fromkeys(("in_progress", "completed", "failed", "cancelled"), 0)
        for status, n in self._q(sql + " GROUP BY status", args):
            counts[status] = n
        counts["total"] = sum(counts.values())
        return counts

    def indexed_files(self) -> list[str]:
        return [r[0] for r in self._q("SELECT DISTINCT file_id FROM vs_files")]

    def stores_of_file(self, file_id: str) -> list[str]:
        return [r[0] for r in self._q("SELECT vs_id FROM vs_files WHERE file_id=?", (file_id,))]

    def remove_file(self, vs_id: str, file_id: str) -> list[int]:
        """Drop one file from one store (its row and chunks); returns the chunk ids removed."""
        with self.lock, self.conn:
            self.conn.execute("BEGIN")
            ids = [r[0] for r in self.conn.execute(
                "SELECT id FROM chunks WHERE vs_id=? AND file_id=?", (vs_id, file_id))]
            self.conn.execute("DELETE FROM chunks WHERE vs_id=? AND file_id=?", (vs_id, file_id))
            self.conn.execute("DELETE FROM vs_files WHERE vs_id=? AND file_id=?",
                              (vs_id, file_id))
            self._bump(vs_id)
        return ids

    def put_batch(self, vs_id: str, doc: dict[str, Any]) -> None:
        self._q("INSERT INTO batches(id, vs_id, doc, created_at) VALUES (?,?,?,?) "
                "ON CONFLICT(id) DO UPDATE SET doc=excluded.doc",
                (doc["id"], vs_id, json.dumps(doc), doc["created_at"]))

    def batch(self, vs_id: str, batch_id: str) -> dict[str, Any] | None:
        rows = self._q("SELECT doc FROM batches WHERE id=? AND vs_id=?", (batch_id, vs_id))
        return json.loads(rows[0][0]) if rows else None

    # ------------------------------------------------------------------ claims
    def claim(self, vs_id: str, file_id: str) -> bool:
        """One machine: the file's status (checked by the indexer) is claim enough."""
        return True

    def renew(self, vs_id: str, file_id: str) -> None:
        pass

    def unclaimed(self) -> list[tuple[str, str]]:
        return []

    # ------------------------------------------------------------------ chunks
    def replace_chunks(self, vs_id: str, file_id: str, model: str, texts: list[str],
                       vectors: np.ndarray) -> list[int] | None:
        """Swap a file's chunks for new ones in one transaction; returns the new chunk ids.

        (``PgIndexDB`` returns ``None`` for a file no longer in progress; here the indexer's
        check just before suffices: one process writes a store's files at a time.)"""
        import numpy as np

        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        with self.lock, self.conn:
            self.conn.execute("BEGIN")
            self.conn.execute("DELETE FROM chunks WHERE vs_id=? AND file_id=?", (vs_id, file_id))
            ids = []
            for seq, (text, vec) in enumerate(zip(texts, vectors, strict=True)):
                cur = self.conn.execute(
                    "INSERT INTO chunks(vs_id, file_id, seq, text, model, vector) "
                    "VALUES (?,?,?,?,?,?)", (vs_id, file_id, seq, text, model, vec.tobytes()))
                ids.append(int(cur.lastrowid))
            self._bump(vs_id)
        return ids

    def _bump(self, vs_id: str) -> None:
        """Inside a write transaction: the store's chunks changed (other processes look)."""
        self.writes += 1
        self.conn.execute("INSERT INTO generations(vs_id, gen) VALUES (?, 1) ON CONFLICT(vs_id) "
                          "DO UPDATE SET gen = gen + 1", (vs_id,))

    def data_version(self) -> int | None:
        """Changes whenever another connection (another process) commits to the file."""
        return int(self._q("PRAGMA data_version")[0][0])

    def generations(self, vs_ids: list[str] | None = None) -> dict[str, int]:
        found = dict(self._q("SELECT vs_id, gen FROM generations"))
        return found if vs_ids is None else {v: found[v] for v in vs_ids if v in found}

    def file_texts(self, vs_id: str, file_id: str) -> list[str]:
        return [r[0] for r in self._q("SELECT text FROM chunks WHERE vs_id=? AND file_id=? "
                                      "ORDER BY seq", (vs_id, file_id))]

    def keyword_index(self) -> KeywordIndex:
        from .keyword import KeywordIndex

        return KeywordIndex(self)

    def chunk_ids(self, vs_id: str, model: str) -> np.ndarray:
        import numpy as np

        rows = self._q("SELECT id FROM chunks WHERE vs_id=? AND model=?", (vs_id, model))
        return np.fromiter((r[0] for r in rows), dtype=np.uint64, count=len(rows))

    def chunk_count(self, vs_id: str | None = None, model: str | None = None) -> int:
        if vs_id is None:
            return int(self._q("SELECT count(*) FROM chunks")[0][0])
        if model is None:
            return int(self._q("SELECT count(*) FROM chunks WHERE vs_id=?", (vs_id,))[0][0])
        return int(self._q("SELECT count(*) FROM chunks WHERE vs_id=? AND model=?",
                           (vs_id, model))[0][0])

    def iter_vectors(self, vs_id: str, model: str, *, file_ids: list[str] | None = None,
                     batch: int = 5000) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(ids, vectors) in batches, for rebuilding a graph or an exact search."""
        import numpy as np

        sql, args = "SELECT id, vector FROM chunks WHERE vs_id=? AND model=?", [vs_id, model]
        if file_ids is not None:
            sql += f" AND file_id IN ({','.join('?' * len(file_ids))})"
            args += file_ids
        with self.lock:
            cur = self.conn.execute(sql, args)
            while rows := cur.fetchmany(batch):
                ids = np.fromiter((r[0] for r in rows), dtype=np.uint64, count=len(rows))
                yield ids, np.stack([np.frombuffer(r[1], dtype=np.float32) for r in rows])

    def vectors_of(self, ids: list[int]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(ids, vectors) of these chunks, in batches (a graph catching up with the rows)."""
        import numpy as np

        for start in range(0, len(ids), 500):
            part = ids[start:start + 500]
            rows = self._q(f"SELECT id, vector FROM chunks WHERE id IN "
                           f"({','.join('?' * len(part))})", part)
            if rows:
                yield (np.fromiter((r[0] for r in rows), dtype=np.uint64, count=len(rows)),
                       np.stack([np.frombuffer(r[1], dtype=np.float32) for r in rows]))

    def chunks(self, ids: list[int]) -> dict[int, tuple[str, str, str]]:
        """``{chunk id: (vs_id, file_id, text)}`` for the ids that still exist."""
        out: dict[int, tuple[str, str, str]] = {}
        for start in range(0, len(ids), 500):
            part = ids[start:start + 500]
            for cid, vs_id, file_id, text in self._q(
                    f"SELECT id, vs_id, file_id, text FROM chunks WHERE id IN "
                    f"({','.join('?' * len(part))})", part):
                out[cid] = (vs_id, file_id, text)
        return out
