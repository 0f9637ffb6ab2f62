"""Start-up: process start to the first 200 on /health, for `jan serve` on a fresh data folder.

Peer measured in the same run: a bare `python -c "import uvicorn, starlette"` process start,
so the ratio shows what the host adds over merely starting Python with its web stack.
Usage: python bench/bench_startup.py [runs]
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from conftest import start_server  # noqa: E402


def time_server(folder: Path) -> float:
    started = time.monotonic()
    server = start_server(folder)
    elapsed = time.monotonic() - started
    server.stop()
    return elapsed


def time_bare_python() -> float:
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", "import uvicorn, starlette, pydantic"], check=True)
    return time.monotonic() - started


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    ours, bare = [], []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "data"
            folder.mkdir()
            ours.append(time_server(folder))
        bare.append(time_bare_python())
    med_ours, med_bare = statistics.median(ours), statistics.median(bare)
    print(f"{'measure':<40} {'median s':>9} {'worst s':>9}")
    print(f"{'jan serve: start → /health 200':<40} {med_ours:>9.3f} {max(ours):>9.3f}")
    print(f"{'python + uvicorn/starlette import':<40} {med_bare:>9.3f} {max(bare):>9.3f}")
    print(f"ratio (ours / bare python import): {med_ours / med_bare:.2f}x over {runs} runs")


if __name__ == "__main__":
    main()
