"""The keyword side of search: BM25 (SQLite FTS5) at a bounded cost per query.

FTS5 computes BM25 for every row a query matches before it can sort them (a look-up of the
row's length and its positions, ~10-20 µs a row here), so an OR of words that thousands of
chunks contain costs tens of milliseconds at 100,000 chunks. Each query therefore ranks at
most ``BUDGET`` rows, chosen the way Lucene's "common terms" query does:

- each word's document frequency is counted (up to a cap, cached until the index changes);
- the rarest words, as many as fit together in ``BUDGET`` rows, form the ranked OR query: the
  words that tell chunks apart (names, codes, numbers) are exactly these;
- a word too common to fit still counts for the chunks found: each found chunk that also holds
  it gains that word's BM25 weight (its IDF, at an average length and one occurrence), from an
  unranked ``found AND word`` query that costs no more than the found rows;
- when even the rarest word is too common, the chunks holding *all* words are ranked if they fit
  the budget; otherwise keyword ranking says nothing and the vector side ranks alone (a word in
  thousands of chunks hardly ranks anything by BM25 either).

On a small index every word fits and this is plain BM25 over the OR of all query words.
"""

from __future__ import annotations

import math
import re
import sqlite3

from .db import IndexDB

BUDGET = 800  # rows FTS5 ranks per query, at most
COUNT_CAP = 4 * BUDGET  # document frequencies are counted up to here (IDF of rarer words exact)
MAX_COMMON = 4  # common words scored per query (each costs one unranked query)
STOPWORDS = set("""a an and are as at be by for from has have how i in is it its of on or that
the this to was were what when where which who why will with does did do about into than then
there these those you your we our they their them he she his her can could would should""".split())
_WORD = re.compile(r"\w+", re.UNICODE)


def terms(query: str) -> list[str]:
    """The query's meaningful words, once each (stop-words dropped unless nothing else is left)."""
    words = [w.lower() for w in _WORD.findall(query)]
    keep = [w for w in words if w not in STOPWORDS] or words
    return list(dict.fromkeys(keep))[:32]


def _any(words: list[str]) -> str:
    return " OR ".join(f'"{w}"' for w in words)  # quoted: no FTS5 syntax from the user


class KeywordIndex:
    """BM25 over ``chunks_fts`` for one ``IndexDB``; keeps the document-frequency cache."""

    def __init__(self, db: IndexDB) -> None:
        self.db = db
        self.freq: dict[str, int] = {}
        self.freq_key: tuple[int, int] | None = None
        self.total: int | None = None  # rows in the index, when the cache was filled

    def doc_freq(self, words: list[str]) -> dict[str, int]:
        key = (self.db.data_version(), self.db.writes)  # any change, here or elsewhere
        if key != self.freq_key or len(self.freq) > 50_000:
            self.freq, self.freq_key, self.total = {}, key, None
        for word in words:
            if word not in self.freq:
                self.freq[word] = self._count(f'"{word}"', COUNT_CAP)
        return {w: self.freq[w] for w in words}

    def _count(self, match: str, cap: int) -> int:
        return int(self.db._q("SELECT count(*) FROM (SELECT rowid FROM chunks_fts WHERE "
                              "chunks_fts MATCH ? LIMIT ?)", (match, cap))[0][0])

    def _ranked(self, match: str, vs_ids: list[str], limit: int, bound: int
                ) -> list[tuple[int, float]]:
        """The best ``limit`` matches in ``vs_ids``; ``bound``: at most this many rows match."""
        if self._everything(vs_ids):  # the usual case: no other store's chunks to skip
            return self.db._q("SELECT rowid, rank FROM chunks_fts WHERE chunks_fts MATCH ? "
                              "ORDER BY rank LIMIT ?", (match, limit))
        marks = ",".join("?" * len(vs_ids))
        # FTS5 sorts ``ORDER BY rank LIMIT n`` itself (its fast path): the best few, then keep
        # those in the wanted stores ...
        rows = self.db._q(
            "SELECT c.id, r.rank FROM (SELECT rowid, rank FROM chunks_fts WHERE chunks_fts "
            f"MATCH ? ORDER BY rank LIMIT ?) r JOIN chunks c ON c.id = r.rowid "
            f"WHERE c.vs_id IN ({marks}) ORDER BY r.rank", [match, limit * 4, *vs_ids])
        if len(rows) >= min(limit, bound):
            return rows[:limit]
        # ... and only when chunks of other stores crowded them out, every match in them.
        return self.db._q(
            "SELECT c.id, bm25(chunks_fts) AS s FROM chunks_fts JOIN chunks c "
            f"ON c.id = chunks_fts.rowid WHERE chunks_fts MATCH ? AND c.vs_id IN ({marks}) "
            "ORDER BY s LIMIT ?", [match, *vs_ids, limit])

    def _everything(self, vs_ids: list[str]) -> bool:
        """Do these stores hold every chunk? (Each chunk belongs to a store that exists.)"""
        return set(vs_ids) >= {r[0] for r in self.db._q("SELECT id FROM vector_stores")}

    def search(self, vs_ids: list[str], query: str, limit: int) -> list[tuple[int, float]]:
        """``(chunk id, BM25 score)`` best first (FTS5's sign: lower is better)."""
        words = terms(query)
        if not words or not vs_ids:
            return []
        try:
            return self._search(vs_ids, words, limit)
        except sqlite3.OperationalError:
            return []  # a query FTS5 cannot parse ranks nothing by keyword

    def _search(self, vs_ids: list[str], words: list[str], limit: int
                ) -> list[tuple[int, float]]:
        freq = self.doc_freq(words)
        words = sorted((w for w in words if freq[w]), key=lambda w: freq[w])
        rare: list[str] = []
        for word in words:
            if sum(freq[w] for w in rare) + freq[word] > BUDGET:
                break
            rare.append(word)
        if not rare:  # every word is common: the chunks holding all of them, if few enough
            every = " AND ".join(f'"{w}"' for w in words)
            matches = self._count(every, BUDGET + 1) if len(words) > 1 else BUDGET + 1
            return self._ranked(every, vs_ids, limit, matches) if matches <= BUDGET else []
        common = words[len(rare):][:MAX_COMMON]
        bound = sum(freq[w] for w in rare)
        if not common:
            return self._ranked(_any(rare), vs_ids, limit, bound)
        found = self._ranked(_any(rare), vs_ids, bound, bound)  # all: common words reorder
        if found:
            scores = dict(found)
            if self.total is None:  # a scan of the (small) length table, once per change
                self.total = int(self.db._q("SELECT count(*) FROM chunks_fts_docsize")[0][0])
            total = self.total
            for word in common:
                weight = _idf(total, freq[word])
                for (cid,) in self.db._q("SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH ?",
                                         (f'({_any(rare)}) AND "{word}"',)):
                    if cid in scores:
                        scores[cid] -= weight
            found = sorted(scores.items(), key=lambda x: (x[1], x[0]))
        return found[:limit]


def _idf(total: int, freq: int) -> float:
    """FTS5's BM25 IDF (``bm25()`` floors it the same way)."""
    return max(1e-6, math.log((total - freq + 0.5) / (freq + 0.5)))
