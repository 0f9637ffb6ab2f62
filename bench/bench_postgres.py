"""Thread storage latency: the file stores vs threads-/messages-postgresql, side by side.

Each provider gets its own real `jan serve` process, measured one after the other in the same
run, over HTTP with one keep-alive client:

- message create: ``POST /v1/threads/{id}/messages`` into a thread that already holds
  ``--prefill`` messages;
- newest page: ``GET /v1/threads/{id}/messages?limit=20`` (what a chat UI loads first).

PostgreSQL is a private cluster started from Debian's packages with its default durability
(fsync on, like the file store's fsync per append), or the server in ``JAN_TEST_POSTGRES_DSN``.

    python bench/bench_postgres.py [--prefill 1000] [--creates 300] [--reads 300]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import pg_fixtures  # noqa: E402 - the same server helper the tests use

PG_MODULES = {"threads": "threads-postgresql", "messages": "messages-postgresql"}


@contextlib.contextmanager
def database() -> Iterator[str]:
    external = os.environ.get("JAN_TEST_POSTGRES_DSN")
    if external:
        with pg_fixtures.fresh_database(external) as dsn:
            yield dsn
        return
    with pg_fixtures.started_cluster(durable=True) as cluster, \
            pg_fixtures.fresh_database(cluster.dsn) as dsn:
        yield dsn


@contextlib.contextmanager
def serve(folder: Path, env: dict[str, str]) -> Iterator[str]:
    port = pg_fixtures.free_port()
    log = (folder.parent / f"{folder.name}.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jan.host.cli", "serve", "--data-folder", str(folder),
         "--port", str(port)], stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, **env})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"jan serve exited: see {log.name}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(20)
        log.close()


def timed(fn, n: int) -> list[float]:  # noqa: ANN001
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def measure(url: str, args: argparse.Namespace) -> dict[str, list[float]]:
    with httpx.Client(base_url=url + "/v1", timeout=60) as client:
        thread = client.post("/threads", json={"title": "bench"}).json()["id"]
        path = f"/threads/{thread}/messages"

        def create(i: int = 0) -> None:
            r = client.post(path, json={"role": "user", "content": f"message {i} " * 20})
            r.raise_for_status()

        with ThreadPoolExecutor(4) as pool:  # prefill is not measured
            list(pool.map(create, range(args.prefill)))
        for _ in range(20):  # warm up both paths
            create()
            client.get(path, params={"limit": 20})

        def newest() -> None:
            r = client.get(path, params={"limit": 20})
            r.raise_for_status()
            assert len(r.json()["data"]) == 20

        return {"create": timed(create, args.creates), "newest page": timed(newest, args.reads)}


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prefill", type=int, default=1000)
    parser.add_argument("--creates", type=int, default=300)
    parser.add_argument("--reads", type=int, default=300)
    args = parser.parse_args()
    results: dict[str, dict[str, list[float]]] = {}
    # Same file system for both (the cluster lives under /var/tmp when run as root): a
    # tmpfs /tmp would make the file store's fsync free and the comparison meaningless.
    base = "/var/tmp" if os.path.isdir("/var/tmp") else None
    with tempfile.TemporaryDirectory(prefix="jan-bench-pg-", dir=base) as tmp, \
            database() as dsn:
        for provider in ("files", "postgresql"):
            folder = Path(tmp) / provider
            folder.mkdir()
            env = {"JAN_POSTGRES_DSN": dsn}
            if provider == "postgresql":
                (folder / "settings.json").write_text(json.dumps({"modules": PG_MODULES}))
            with serve(folder, env) as url:
                results[provider] = measure(url, args)
    where = ("JAN_TEST_POSTGRES_DSN" if os.environ.get("JAN_TEST_POSTGRES_DSN")
             else "a private cluster, fsync on")
    print(f"prefill {args.prefill} messages; {args.creates} creates, {args.reads} reads "
          f"(ms, one client, keep-alive); PostgreSQL: {where}")
    print(f"{'operation':<13} {'provider':<11} {'p50':>8} {'p95':>8} {'mean':>8}")
    for op in ("create", "newest page"):
        for provider in ("files", "postgresql"):
            v = results[provider][op]
            print(f"{op:<13} {provider:<11} {pct(v, 50):8.2f} {pct(v, 95):8.2f} "
                  f"{statistics.fmean(v):8.2f}")
        ratio = pct(results["postgresql"][op], 50) / pct(results["files"][op], 50)
        print(f"{op:<13} {'pg / files':<11} {ratio:7.2f}x")


if __name__ == "__main__":
    main()
