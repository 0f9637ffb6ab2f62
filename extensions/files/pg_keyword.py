"""The keyword side of search on PostgreSQL: full text (``tsvector`` + GIN, ``ts_rank_cd``).

Stands in for FTS5's BM25 (``keyword.py``): the same query words (stop-words dropped, at most
32) are OR-ed into a ``tsquery``, the GIN index finds the chunks holding any of them, and
``ts_rank_cd`` (cover density, normalised by document length) orders them. Search fuses ranks,
not scores, so the two engines' different scales do not matter. Each word is quoted as a
``tsquery`` lexeme: it is ``\\w+`` only, so no query syntax ever comes from the user.
"""

from __future__ import annotations

import psycopg

from jan.sdk.errors import InvalidRequest

from .keyword import terms
from .pg import Pg

# ts_rank_cd normalisation 1: divide by 1 + log(document length), as BM25 damps long chunks.
NORMALISE = 1


class PgKeyword:
    def __init__(self, pg: Pg) -> None:
        self.pg = pg

    def search(self, vs_ids: list[str], query: str, limit: int) -> list[tuple[int, float]]:
        """``(chunk id, score)`` best first (higher is better here)."""
        words = terms(query)
        if not words or not vs_ids:
            return []
        tsquery = " | ".join(f"'{w}'" for w in words)
        try:
            rows = self.pg.q(
                "SELECT c.id, ts_rank_cd(c.tsv, q, %s) AS r FROM files_chunks c, "
                "to_tsquery('english', %s) q WHERE c.vs_id = ANY(%s) AND c.tsv @@ q "
                "ORDER BY r DESC, c.id LIMIT %s", (NORMALISE, tsquery, vs_ids, limit))
        except (psycopg.Error, InvalidRequest):
            return []  # a query the parser refuses ranks nothing by keyword
        return [(int(cid), float(r)) for cid, r in rows]
