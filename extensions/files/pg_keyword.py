"""The keyword side of search on PostgreSQL: full text (``tsvector`` + GIN) ranked like BM25.

Stands in for FTS5's BM25 (``keyword.py``). ``ts_rank`` alone weighs every query word the
same, so a chunk holding a common word often would beat one holding the rare word the user
is after; BM25's strength is the rare word. So each word gets BM25's IDF, from its document
frequency (counted through the GIN index, up to ``COUNT_CAP``), and a chunk scores
``sum(idf(word) * ts_rank(tsv, word))`` over the query words it holds (``ts_rank`` grows with
each further occurrence less, as BM25's term frequency saturates). No length normalisation:
``ts_rank``'s (``1 + log(length)``) lets a three-word chunk saying the common word twice beat
the rare word's chunk, and the chunker packs chunks to similar sizes anyway. The GIN index
finds the chunks holding any word. Search fuses ranks, not scores, so the two engines' scales do not
matter. Each word is quoted as a ``tsquery`` lexeme; it is ``\\w+`` only, so no query syntax
ever comes from the user.
"""

from __future__ import annotations

import math

import psycopg

from jan.sdk.errors import InvalidRequest

from .keyword import terms
from .pg import Pg

COUNT_CAP = 3200  # document frequencies are counted up to here (rarer words' IDF is exact)


def _lexeme(word: str) -> str:
    return f"'{word}'"


class PgKeyword:
    def __init__(self, pg: Pg) -> None:
        self.pg = pg

    def search(self, vs_ids: list[str], query: str, limit: int) -> list[tuple[int, float]]:
        """``(chunk id, score)`` best first (higher is better here)."""
        words = terms(query)
        if not words or not vs_ids:
            return []
        try:
            return self._search(vs_ids, words, limit)
        except (psycopg.Error, InvalidRequest):
            return []  # a query the parser refuses ranks nothing by keyword

    def _search(self, vs_ids: list[str], words: list[str], limit: int
                ) -> list[tuple[int, float]]:
        freq = self._doc_freq(words)
        words = [w for w in words if freq.get(w)]  # stop-words of the parser count 0 too
        if not words:
            return []
        total = self._total(max(freq.values()))
        score = " + ".join("%s * ts_rank(c.tsv, to_tsquery('english', %s))" for _ in words)
        args: list[object] = []
        for word in words:
            args += [_idf(total, freq[word]), _lexeme(word)]
        rows = self.pg.q(
            f"SELECT c.id, {score} AS r FROM files_chunks c WHERE c.vs_id = ANY(%s) AND "
            "c.tsv @@ to_tsquery('english', %s) ORDER BY r DESC, c.id LIMIT %s",
            [*args, vs_ids, " | ".join(_lexeme(w) for w in words), limit])
        return [(int(cid), float(r)) for cid, r in rows]

    def _doc_freq(self, words: list[str]) -> dict[str, int]:
        """How many chunks hold each word (all stores, like FTS5's), in one round trip."""
        rows = self.pg.q(
            "SELECT w, (SELECT count(*) FROM (SELECT 1 FROM files_chunks "
            "WHERE tsv @@ to_tsquery('english', l) LIMIT %s) s) "
            "FROM unnest(%s::text[], %s::text[]) AS u(w, l)",
            (COUNT_CAP, words, [_lexeme(w) for w in words]))
        return {w: int(n) for w, n in rows}

    def _total(self, at_least: int) -> int:
        """Chunks in the index: the planner's estimate when the table is big (a count would
        read it all), the exact count while it is small."""
        estimate = int(self.pg.q("SELECT greatest(reltuples, 0)::bigint FROM pg_class "
                                 "WHERE oid = 'files_chunks'::regclass")[0][0])
        if estimate < 5_000:
            estimate = int(self.pg.q("SELECT count(*) FROM files_chunks")[0][0])
        return max(estimate, at_least)


def _idf(total: int, freq: int) -> float:
    """BM25's IDF, floored like FTS5's ``bm25()``."""
    return max(1e-6, math.log((total - freq + 0.5) / (freq + 0.5)))
