"""The index on PostgreSQL against the same index on SQLite, measured in the same run.

Both hold the same N chunks (default 20,000; 576-dim vectors and Zipf texts as in
``bench_files.py``), each with its own usearch graph. Printed side by side, with the ratio
PostgreSQL / SQLite:

- store alone: chunks per second written (rows, keyword index, graph);
- the per-search change check when nothing changed (SQLite: ``PRAGMA data_version``;
  PostgreSQL: the generations of the loaded stores, one query);
- hybrid search, keyword side alone (FTS5 bounded BM25 / ``tsvector``, IDF x ``ts_rank``);
- catching up after "another instance" added a file of 100 chunks (the first search after);
- how much the two keyword rankings agree (top-10 overlap).

The PostgreSQL server is a private cluster from Debian's packages (``tests/pg_fixtures.py``),
or ``--dsn`` (an empty database: the bench creates and drops its tables).

    python bench/bench_files_pg.py [--chunks 20000] [--queries 200] [--dsn DSN]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from bench_files import DIMS, corpus, load, pct

ROOT = Path(__file__).resolve().parent.parent
TABLES = ("files_chunks", "files_vs_files", "files_batches", "files_vector_stores",
          "files_generations", "files_uploads")


@contextlib.contextmanager
def server(dsn: str | None) -> Iterator[str]:
    if dsn:
        yield dsn
        return
    sys.path.insert(0, str(ROOT / "tests"))
    from pg_fixtures import started_cluster

    with started_cluster() as cluster:
        yield cluster.dsn


def fill(db: Any, graphs: Any, texts: list[str], vectors: np.ndarray) -> float:
    db.put_store({"id": "vs_bench", "created_at": 0}, "bench")
    start = time.perf_counter()
    for f, lo in enumerate(range(0, len(texts), 100)):
        db.put_file("vs_bench", {"id": f"file_{f}", "created_at": 0, "status": "in_progress"})
        ids = db.replace_chunks("vs_bench", f"file_{f}", "bench", texts[lo:lo + 100],
                                vectors[lo:lo + 100])
        graphs.add("vs_bench", "bench", ids, vectors[lo:lo + 100])
    return len(texts) / (time.perf_counter() - start)


def times(fn: Callable[[Any], Any], items: list[Any]) -> tuple[list[float], list[Any]]:
    spent, out = [], []
    for item in items:
        start = time.perf_counter()
        out.append(fn(item))
        spent.append(time.perf_counter() - start)
    return spent, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--chunks", type=int, default=20_000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--dsn", default=None, help="an empty PostgreSQL database to use")
    args = ap.parse_args()
    rng = np.random.default_rng(1)
    texts, vectors = corpus(args.chunks, rng)
    picks = rng.integers(0, args.chunks, args.queries)
    queries = vectors[picks] + (0.3 / DIMS ** 0.5) * rng.standard_normal(
        (args.queries, DIMS)).astype(np.float32)
    words = [" ".join([w for w in texts[i].split() if int(w[1:]) > 100][:3]) for i in picks]
    search, vec_mod = load("search"), load("vectors")
    with tempfile.TemporaryDirectory() as tmp, server(args.dsn) as dsn:
        pg = load("pg").Pg(dsn)
        pg.migrate()
        sides = {"sqlite": load("db").IndexDB(Path(tmp) / "lite" / "index.sqlite"),
                 "postgresql": load("pg_db").PgIndexDB(pg, "bench")}
        rows: dict[str, dict[str, Any]] = {}
        for name, db in sides.items():
            folder = Path(tmp) / name
            folder.mkdir(exist_ok=True)
            graphs = vec_mod.Graphs(folder, db)
            rate = fill(db, graphs, texts, vectors)
            if name == "postgresql":
                pg.q("ANALYZE files_chunks")  # as autovacuum would have by now: GIN plans
            searcher = search.Searcher(db, graphs)
            graphs.search("vs_bench", "bench", queries[0], 10)  # loaded and synced
            check, _ = times(lambda _i, g=graphs: g.refresh(), list(range(args.queries)))
            hybrid, _ = times(lambda i, s=searcher: s.hybrid(
                [("vs_bench", "bench")], words[i], queries[i], "bench", limit=10, threshold=0.0),
                list(range(args.queries)))
            keyword, found = times(lambda i, s=searcher: s.keyword.search(
                ["vs_bench"], words[i], 10), list(range(args.queries)))
            # Another instance (another connection) adds a file; the next search catches up.
            other = (load("db").IndexDB(Path(tmp) / "lite" / "index.sqlite")
                     if name == "sqlite" else load("pg_db").PgIndexDB(pg, "other"))
            other.put_file("vs_bench", {"id": "file_new", "created_at": 0,
                                        "status": "in_progress"})
            other.replace_chunks("vs_bench", "file_new", "bench", texts[:100], vectors[:100])
            catch_up, _ = times(lambda q, g=graphs: g.search("vs_bench", "bench", q, 10),
                                [queries[0]])
            rows[name] = {"rate": rate, "check": check, "hybrid": hybrid, "keyword": keyword,
                          "catch_up": catch_up[0], "found": [[c for c, _ in f] for f in found]}
        for table in TABLES:
            pg.q(f"DROP TABLE IF EXISTS {table}")
        pg.q("DELETE FROM schema_version WHERE component = 'files'")
        pg.close()
    report(args, rows)


def report(args: argparse.Namespace, rows: dict[str, dict[str, Any]]) -> None:
    lite, post = rows["sqlite"], rows["postgresql"]
    print(f"{args.chunks:,} chunks, {args.queries} queries, top 10")
    print(f"{'':40} {'sqlite':>10} {'postgresql':>11} {'pg/sqlite':>10}")
    print(f"{'store alone, chunks/s':40} {lite['rate']:10,.0f} {post['rate']:11,.0f} "
          f"{post['rate'] / lite['rate']:9.2f}x")
    for key, label in (("check", "change check, nothing changed"), ("hybrid", "hybrid search"),
                       ("keyword", "keyword side alone")):
        for q, tag in ((0.5, "p50"), (0.99, "p99")):
            a, b = pct(lite[key], q), pct(post[key], q)
            print(f"{label + ', ' + tag + ' ms':40} {a:10.3f} {b:11.3f} {b / a:9.2f}x")
    a, b = lite["catch_up"] * 1000, post["catch_up"] * 1000
    print(f"{'first search after +100 chunks elsewhere, ms':40} {a:10.2f} {b:11.2f} "
          f"{b / a:9.2f}x")
    overlap = [len(set(x) & set(y)) / len(x) for x, y in zip(lite["found"], post["found"],
                                                              strict=True) if x]
    print(f"keyword top-10 overlap, PostgreSQL (IDF x ts_rank) with FTS5 BM25: "
          f"{statistics.mean(overlap):.3f}")


if __name__ == "__main__":
    main()
