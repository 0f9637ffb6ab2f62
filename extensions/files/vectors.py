"""Approximate nearest neighbours: one usearch HNSW graph per vector store, saved beside the DB.

The graph is a cache of the chunk vectors held in the index (SQLite, or PostgreSQL shared
with other instances): keys are chunk ids, so a hit whose
chunk was deleted meanwhile is simply dropped by the caller. On load, and whenever another
process changed the store (``refresh``), the graph is synced with the rows: ids it lacks are
added, ids no longer in the database removed (a crash before a save, ``jan files add`` while a
server runs); a graph of another model or size is rebuilt.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # numpy and usearch load on first use (seconds at startup otherwise)
    import numpy as np

from .backend import Index

_ID = re.compile(r"^vs_[0-9A-Za-z_]{1,60}$")


def _new_graph(dims: int) -> Any:
    # f16 cosine: half the memory of f32 for the same ranking (the bench reports recall@10
    # against exact search; int8 lost about a tenth of the true neighbours there).
    from usearch.index import Index

    return Index(ndim=dims, metric="cos", dtype="f16", connectivity=16, expansion_add=64,
                 expansion_search=64)


class Graphs:
    def __init__(self, folder: Path, db: Index) -> None:
        self.folder, self.db = folder, db
        self.loaded: dict[str, tuple[str, Any]] = {}  # vs_id -> (model, graph)
        self.synced: dict[str, int | None] = {}  # vs_id -> generation the graph last matched
        self.version: int | None = None  # the DB's data_version when last looked at
        self.dirty: set[str] = set()
        self.lock = threading.RLock()

    def _path(self, vs_id: str) -> Path:
        if not _ID.match(vs_id):  # ids come from URLs: never let one name another path
            raise ValueError(f"not a vector store id: {vs_id!r}")
        return self.folder / f"{vs_id}.usearch"

    def get(self, vs_id: str, model: str, dims: int) -> Any:
        with self.lock:
            have = self.loaded.get(vs_id)
            if have is not None and have[0] == model and have[1].ndim == dims:
                return have[1]
            graph = _new_graph(dims)
            path = self._path(vs_id)
            if path.is_file():
                with contextlib.suppress(Exception):  # unreadable: rebuilt below
                    graph.load(str(path))
            if graph.ndim != dims:
                graph = _new_graph(dims)
            self.loaded[vs_id] = (model, graph)
            self._sync(vs_id)
            return graph

    def refresh(self) -> None:
        """Catch up with chunks another process (``jan files add``) added or removed.

        SQLite: one ``PRAGMA data_version`` per search when nothing changed; after a foreign
        commit, the stores whose generation moved are synced with their rows. PostgreSQL has
        no such counter: one query reads the generations of the stores this process holds.
        """
        with self.lock:
            version = self.db.data_version()
            if version is not None and version == self.version:
                return
            self.version = version
            generations = self.db.generations(list(self.loaded))
            for vs_id in list(self.loaded):
                if generations.get(vs_id) != self.synced.get(vs_id):
                    self._sync(vs_id, generations.get(vs_id))

    def _sync(self, vs_id: str, generation: int | None = None) -> None:
        """Make the graph hold exactly the store's chunk ids (the rows are the truth)."""
        import numpy as np

        model, graph = self.loaded[vs_id]
        if generation is None:
            generation = self.db.generations([vs_id]).get(vs_id)
        want = self.db.chunk_ids(vs_id, model)
        have = np.asarray(graph.keys, dtype=np.uint64) if len(graph) else want[:0]
        gone = np.setdiff1d(have, want, assume_unique=True)
        new = np.setdiff1d(want, have, assume_unique=True)
        if len(gone):
            graph.remove(gone)
        for ids, vecs in self.db.vectors_of([int(k) for k in new]):
            if vecs.shape[1] == graph.ndim:
                graph.add(ids, vecs)
        if len(gone) or len(new):
            self.dirty.add(vs_id)
        self.synced[vs_id] = generation

    def add(self, vs_id: str, model: str, ids: list[int], vectors: np.ndarray) -> None:
        if not ids:
            return
        import numpy as np

        with self.lock:
            graph = self.get(vs_id, model, vectors.shape[1])
            keys = np.asarray(ids, dtype=np.uint64)
            present = [k for k in keys if graph.contains(int(k))]
            if present:  # the graph was rebuilt from rows that already hold these chunks
                mask = ~np.isin(keys, np.asarray(present, dtype=np.uint64))
                keys, vectors = keys[mask], vectors[mask]
            if len(keys):
                graph.add(keys, np.ascontiguousarray(vectors, dtype=np.float32))
            self.dirty.add(vs_id)

    def remove(self, vs_id: str, ids: list[int]) -> None:
        with self.lock:
            have = self.loaded.get(vs_id)
            if have is not None and ids:
                for key in ids:
                    have[1].remove(int(key))
                self.dirty.add(vs_id)

    def search(self, vs_id: str, model: str, query: np.ndarray, count: int
               ) -> list[tuple[int, float]]:
        """``(chunk id, cosine similarity)`` best first."""
        import numpy as np

        with self.lock:
            self.refresh()
            graph = self.get(vs_id, model, query.shape[0])
            if len(graph) == 0:
                return []
            matches = graph.search(query.astype(np.float32), min(count, len(graph)))
        return [(int(k), 1.0 - float(d)) for k, d in zip(matches.keys, matches.distances,
                                                         strict=True)]

    def drop(self, vs_id: str) -> None:
        with self.lock:
            self.loaded.pop(vs_id, None)
            self.synced.pop(vs_id, None)
            self.dirty.discard(vs_id)
            self._path(vs_id).unlink(missing_ok=True)

    def save(self) -> None:
        """Write the graphs that changed (called off the event loop, and on unload)."""
        with self.lock:
            for vs_id in list(self.dirty):
                have = self.loaded.get(vs_id)
                if have is not None:
                    # per process: a server and ``jan files add`` may save the same graph
                    tmp = self._path(vs_id).with_suffix(f".{os.getpid()}.tmp")
                    have[1].save(str(tmp))
                    tmp.replace(self._path(vs_id))
                self.dirty.discard(vs_id)
