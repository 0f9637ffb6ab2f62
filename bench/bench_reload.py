"""Reload latency: extension file saved → new behaviour served by a running `jan serve`.

Peer measured in the same run: a full restart of `jan serve` (process start to the first 200
on the new route), which is what a host without hot reload makes you do.
Usage: python bench/bench_reload.py [edits]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from conftest import start_server  # noqa: E402
from host_fixtures import VERSIONED_ROUTE, write_extension  # noqa: E402


def wait_for(url: str, version: int, timeout: float = 10.0) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            r = httpx.get(url, timeout=2)
            if r.status_code == 200 and r.json().get("version") == version:
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.005)
    raise TimeoutError(f"version {version} not served within {timeout}s")


def main() -> None:
    edits = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "data"
        folder.mkdir()
        ext = write_extension(folder / "extensions", "live", body=VERSIONED_ROUTE.format(version=0))
        server = start_server(folder)
        url = server.url + "/x/live"
        try:
            wait_for(url, 0)
            reloads = []
            for version in range(1, edits + 1):
                source = textwrap.dedent(VERSIONED_ROUTE.format(version=version))
                (ext / "main.py").write_text(source)
                reloads.append(wait_for(url, version))
                time.sleep(0.1)
        finally:
            server.stop()
        restarts = []
        for _ in range(3):
            started = time.monotonic()
            server = start_server(folder)
            wait_for(server.url + "/x/live", edits)
            restarts.append(time.monotonic() - started)
            server.stop()
    med, worst = statistics.median(reloads), max(reloads)
    med_restart = statistics.median(restarts)
    print(f"{'measure':<44} {'median s':>9} {'worst s':>9}")
    label = f"hot reload: save → new response (n={edits})"
    print(f"{label:<44} {med:>9.3f} {worst:>9.3f}")
    print(f"{'full restart: start → new response (n=3)':<44} {med_restart:>9.3f} "
          f"{max(restarts):>9.3f}")
    print(f"ratio (reload / restart): {med / med_restart:.2f}x; target median < 0.5 s: "
          f"{'met' if med < 0.5 else 'NOT met'}")


if __name__ == "__main__":
    main()
