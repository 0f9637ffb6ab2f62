"""The keyword side of search ranks a bounded number of rows: what it keeps and what it drops.

The budget is shrunk here so a dozen chunks play the role of 100,000 (see keyword.py)."""

from __future__ import annotations

import numpy as np
import pytest
from threads_fixtures import load_module

TEXTS = {
    "heron_river": "A heron stood by the river at dusk.",
    "heron": "The heron flew over the marsh.",
    **{f"river{i}": f"The river ran past farm number {i}." for i in range(6)},
    "river_valley_a": "The river carved the valley.",
    "river_valley_b": "A valley with a river and a mill.",
    "valley": "A quiet valley of orchards.",
    **{f"filler{i}": f"Bread dough number {i} rests overnight." for i in range(30)},
}


@pytest.fixture
def index(tmp_path):
    db_mod, kw = load_module("files", "db"), load_module("files", "keyword")
    db = db_mod.IndexDB(tmp_path / "index.sqlite")
    db.put_store({"id": "vs_a", "created_at": 0}, "m")
    names = list(TEXTS)
    ids = db.replace_chunks("vs_a", "file_a", "m", [TEXTS[n] for n in names],
                            np.zeros((len(names), 4), dtype=np.float32))
    by_id = dict(zip(ids, names, strict=True))
    yield kw, kw.KeywordIndex(db), by_id
    db.close()


def ranked(keywords, by_id, query: str) -> list[str]:
    return [by_id[cid] for cid, _ in keywords.search(["vs_a"], query, 10)]


def test_small_index_is_plain_bm25(index):
    _, keywords, by_id = index
    found = ranked(keywords, by_id, "heron river")
    assert found[:2] == ["heron_river", "heron"]
    assert len(found) == 10  # every chunk holding either word (8 river + 2 heron)


def test_common_words_only_reweight_chunks_with_rare_ones(index, monkeypatch):
    kw, keywords, by_id = index
    monkeypatch.setattr(kw, "BUDGET", 2)
    monkeypatch.setattr(kw, "COUNT_CAP", 8)
    # "heron" (2 chunks) fits the budget, "river" (9) and "valley" (3) do not: only heron chunks
    # are ranked, and the one that also says "river" comes first.
    assert ranked(keywords, by_id, "heron river") == ["heron_river", "heron"]
    assert ranked(keywords, by_id, "river heron")[0] == "heron_river"
    # Every word common: the chunks holding all of them, when they fit the budget ...
    assert sorted(ranked(keywords, by_id, "river valley")) == ["river_valley_a",
                                                                "river_valley_b"]
    # ... and nothing from the keyword side for one very common word (vectors rank alone).
    assert ranked(keywords, by_id, "river") == []


def test_stopwords_syntax_and_unknown_words(index):
    _, keywords, by_id = index
    assert sorted(ranked(keywords, by_id, 'the "heron" AND (NEAR')) == ["heron", "heron_river"]
    assert ranked(keywords, by_id, "zebra") == []
    assert ranked(keywords, by_id, "") == []
