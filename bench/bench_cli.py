"""CLI start-up: `jan --help` and `jan models list` against a bare `python -c pass`.

All three are run interleaved in the same run, with the same interpreter (the one next to the
`jan` script), so the ratios show what the CLI adds over merely starting Python; the medians
are printed too. Target: `jan --help` under 3x a bare interpreter start.
Usage: python bench/bench_cli.py [--runs N] [--jan PATH]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def timed(cmd: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env=env)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--jan", default=str(Path(sys.executable).parent / "jan"),
                        help="the jan script to measure (default: next to this python)")
    opts = parser.parse_args()
    python = str(Path(opts.jan).parent / "python")
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "JAN_DATA_FOLDER": str(Path(tmp) / "data")}
        cases = {
            "python -c pass": [python, "-c", "pass"],
            "jan --help": [opts.jan, "--help"],
            "jan models list": [opts.jan, "models", "list"],
        }
        timed(cases["jan models list"], env)  # first start: creates the data folder, imports
        times: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(opts.runs):
            for name, cmd in cases.items():  # interleaved: machine noise hits all alike
                times[name].append(timed(cmd, env))
    bare = statistics.median(times["python -c pass"])
    print(f"{'command':<18} {'median ms':>10} {'x python -c pass':>17}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:<18} {median * 1000:>10.1f} {median / bare:>17.2f}")


if __name__ == "__main__":
    main()
