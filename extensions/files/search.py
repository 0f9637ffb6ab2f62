"""Hybrid search: vector similarity (HNSW, or exact over a filtered subset) fused with BM25.

The two rankings are fused by reciprocal rank (each list contributes ``1 / (K + rank)``), which
needs no calibration between cosine similarities and BM25 scores; the fused score is scaled so
a chunk ranked first by every list scores 1.0, and ``score_threshold`` applies to that.
The keyword side (``keyword.py``) ranks a bounded number of rows per query; texts are read
for the winners only. Attribute filters are OpenAI's comparison (``eq ne gt gte lt lte in
nin``) and compound (``and or``) filters over each file's ``attributes``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

from .backend import Index
from .keyword import terms
from .vectors import Graphs

K = 10
EXACT_LIMIT = 20_000  # a filtered subset this small is searched exactly (no graph, no misses)


@dataclass
class Hit:
    chunk_id: int
    vs_id: str
    file_id: str
    text: str
    score: float


def _compare(op: str, have: Any, want: Any) -> bool:
    if op in ("in", "nin"):
        found = isinstance(want, list) and have in want
        return found if op == "in" else not found
    if op == "eq":
        return have == want
    if op == "ne":
        return have != want
    if have is None or isinstance(have, bool) != isinstance(want, bool):
        return False
    try:
        return {"gt": have > want, "gte": have >= want, "lt": have < want,
                "lte": have <= want}[op]
    except TypeError:
        return False


def matches(flt: dict[str, Any] | None, attributes: dict[str, Any]) -> bool:
    if not flt:
        return True
    kind = flt.get("type")
    if kind in ("and", "or"):
        results = (matches(f, attributes) for f in flt.get("filters") or [])
        return all(results) if kind == "and" else any(results)
    return _compare(str(kind), attributes.get(str(flt.get("key"))), flt.get("value"))


def check_filter(flt: Any, depth: int = 0) -> None:
    """Raise ``ValueError`` naming what is wrong with a filter object."""
    if depth > 8 or not isinstance(flt, dict):
        raise ValueError("a filter must be an object (nested at most 8 deep)")
    kind = flt.get("type")
    if kind in ("and", "or"):
        if not isinstance(flt.get("filters"), list) or not flt["filters"]:
            raise ValueError(f"'{kind}' filter needs a non-empty 'filters' list")
        for item in flt["filters"]:
            check_filter(item, depth + 1)
    elif kind in ("eq", "ne", "gt", "gte", "lt", "lte", "in", "nin"):
        if not isinstance(flt.get("key"), str):
            raise ValueError("comparison filter needs a string 'key'")
        if "value" not in flt:
            raise ValueError("comparison filter needs a 'value'")
    else:
        raise ValueError(f"unknown filter type {kind!r}")


def _exact(db: Index, vs_id: str, model: str, files: list[str], query: np.ndarray,
           count: int) -> list[tuple[int, float]]:
    import numpy as np

    best: list[tuple[int, float]] = []
    for ids, vecs in db.iter_vectors(vs_id, model, file_ids=files):
        if vecs.shape[1] != query.shape[0]:
            continue
        norms = np.linalg.norm(vecs, axis=1) * (np.linalg.norm(query) or 1.0)
        sims = vecs @ query / np.where(norms == 0, 1.0, norms)
        top = np.argsort(-sims)[:count]
        best += [(int(ids[i]), float(sims[i])) for i in top]
    return sorted(best, key=lambda x: -x[1])[:count]


class Searcher:
    """Hybrid search over one index; holds what queries reuse (the keyword side's caches)."""

    def __init__(self, db: Index, graphs: Graphs) -> None:
        self.db, self.graphs = db, graphs
        self.keyword = db.keyword_index()  # FTS5 BM25, or PostgreSQL full text

    def hybrid(self, stores: list[tuple[str, str | None]], query: str, vector: np.ndarray | None,
               model: str | None, *, limit: int, threshold: float,
               allowed: Callable[[str, str], bool] | None = None,
               subset: dict[str, list[str]] | None = None) -> list[Hit]:
        """The best ``limit`` chunks of ``stores`` ((vs_id, model) pairs) for ``query``.

        ``allowed(vs_id, file_id)`` filters; ``subset`` lists each store's allowed files when a
        filter is active (a small subset is searched exactly).
        """
        for _ in range(3):
            hits, vanished = self._ranked(stores, query, vector, model, limit=limit,
                                          threshold=threshold, allowed=allowed, subset=subset)
            if not vanished:  # else a file was re-indexed between ranking and reading: again
                break
        return hits

    def _ranked(self, stores: list[tuple[str, str | None]], query: str,
                vector: np.ndarray | None, model: str | None, *, limit: int, threshold: float,
                allowed: Callable[[str, str], bool] | None,
                subset: dict[str, list[str]] | None) -> tuple[list[Hit], bool]:
        pool = max(50, limit * 5)
        lists: list[list[int]] = []
        if vector is not None:
            lists.append(self._vector(stores, vector, model, pool, allowed, subset))
        if terms(query):  # a list that finds nothing still counts: 1.0 = first in both
            lists.append([c for c, _ in self.keyword.search([s for s, _ in stores], query, pool)])
        found: dict[int, tuple[str, str, str]] | None = None
        if allowed is not None:  # ranks count allowed chunks only: look every candidate up
            found = self.db.chunks(sorted({cid for ids in lists for cid in ids}))
            lists = [[c for c in ids if c in found and allowed(*found[c][:2])] for ids in lists]
        scores: dict[int, float] = {}
        for ids in lists:
            for rank, cid in enumerate(ids, 1):
                scores[cid] = scores.get(cid, 0.0) + 1.0 / (K + rank)
        top = (len(lists) or 1) / (K + 1)
        ranked = sorted(((round(s / top, 6), cid) for cid, s in scores.items()
                         if s / top >= threshold), key=lambda x: (-x[0], x[1]))
        hits: list[Hit] = []
        vanished = False
        for start in range(0, len(ranked), limit):  # texts of the winners only
            window = ranked[start:start + limit]
            rows = found if found is not None else self.db.chunks([c for _, c in window])
            hits += [Hit(cid, *rows[cid], score=score) for score, cid in window if cid in rows]
            vanished = vanished or any(cid not in rows for _, cid in window)
            if len(hits) >= limit:
                break
        return hits[:limit], vanished

    def _vector(self, stores: list[tuple[str, str | None]], vector: np.ndarray,
                model: str | None, pool: int, allowed: Callable[[str, str], bool] | None,
                subset: dict[str, list[str]] | None) -> list[int]:
        ranked: list[tuple[int, float]] = []
        for vs_id, vs_model in stores:
            if vs_model != model or model is None:
                continue  # other embedding space (re-indexing): keyword ranking only
            files = subset.get(vs_id) if subset is not None else None
            if files is not None and len(files) == 0:
                continue
            if files is not None and self.db.chunk_count(vs_id, model) > EXACT_LIMIT:
                files = None  # a big subset: the graph, oversampled, then filtered
            if files is not None:
                ranked += _exact(self.db, vs_id, model, files, vector, pool)
            else:
                ranked += self.graphs.search(vs_id, model, vector, pool * (4 if allowed else 1))
        return [cid for cid, _ in sorted(ranked, key=lambda x: -x[1])]
