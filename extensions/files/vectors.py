"""Approximate nearest neighbours: one usearch HNSW graph per vector store, saved beside the DB.

The graph is a cache of the chunk vectors held in SQLite: keys are chunk ids, so a hit whose
chunk was deleted meanwhile is simply dropped by the caller, and a graph whose size disagrees
with the database (a crash before a save, a model change) is rebuilt from the rows on load.
"""

from __future__ import annotations

import contextlib
import re
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # numpy and usearch load on first use (seconds at startup otherwise)
    import numpy as np

from .db import IndexDB

_ID = re.compile(r"^vs_[0-9A-Za-z_]{1,60}$")


def _new_graph(dims: int) -> Any:
    # f16 cosine: half the memory of f32 for the same ranking (the bench reports recall@10
    # against exact search; int8 lost about a tenth of the true neighbours there).
    from usearch.index import Index

    return Index(ndim=dims, metric="cos", dtype="f16", connectivity=16, expansion_add=64,
                 expansion_search=64)


class Graphs:
    def __init__(self, folder: Path, db: IndexDB) -> None:
        self.folder, self.db = folder, db
        self.loaded: dict[str, tuple[str, Any]] = {}  # vs_id -> (model, graph)
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
            expected = self.db.chunk_count(vs_id, model)
            if graph.ndim != dims or len(graph) != expected:
                graph = _new_graph(dims)
                for ids, vecs in self.db.iter_vectors(vs_id, model):
                    if vecs.shape[1] == dims:
                        graph.add(ids, vecs)
                self.dirty.add(vs_id)
            self.loaded[vs_id] = (model, graph)
            return graph

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
            graph = self.get(vs_id, model, query.shape[0])
            if len(graph) == 0:
                return []
            matches = graph.search(query.astype(np.float32), min(count, len(graph)))
        return [(int(k), 1.0 - float(d)) for k, d in zip(matches.keys, matches.distances,
                                                         strict=True)]

    def drop(self, vs_id: str) -> None:
        with self.lock:
            self.loaded.pop(vs_id, None)
            self.dirty.discard(vs_id)
            self._path(vs_id).unlink(missing_ok=True)

    def save(self) -> None:
        """Write the graphs that changed (called off the event loop, and on unload)."""
        with self.lock:
            for vs_id in list(self.dirty):
                have = self.loaded.get(vs_id)
                if have is not None:
                    tmp = self._path(vs_id).with_suffix(".tmp")
                    have[1].save(str(tmp))
                    tmp.replace(self._path(vs_id))
                self.dirty.discard(vs_id)
