"""Measurements and the results table for bench_inference.py."""

from __future__ import annotations

import statistics
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from jan.sdk.inference import Delta, Done


@dataclass
class Stream:
    """One streamed generation, timed from the request to its last token."""

    t0: float = field(default_factory=time.perf_counter)
    ttft: float | None = None
    end: float = 0.0
    tokens: int = 0
    chunks: int = 0
    error: str | None = None  # the stream broke off (e.g. a server that cuts streams)

    def on_text(self, text: str) -> None:
        if text:
            if self.ttft is None:
                self.ttft = time.perf_counter() - self.t0
            self.chunks += 1

    def finish(self, tokens: int | None) -> Stream:
        self.end = time.perf_counter()
        self.tokens = tokens if tokens is not None else self.chunks
        return self


@dataclass
class Run:
    """One measurement: ``n`` streams started together."""

    streams: list[Stream]

    @property
    def wall(self) -> float:
        return max(s.end for s in self.streams) - min(s.t0 for s in self.streams)

    @property
    def tokens(self) -> int:
        return sum(s.tokens for s in self.streams)

    @property
    def tps(self) -> float:
        return self.tokens / self.wall if self.wall > 0 else 0.0

    @property
    def ttfts(self) -> list[float]:
        return [s.ttft for s in self.streams if s.ttft is not None]

    @property
    def failed(self) -> int:
        return sum(s.error is not None for s in self.streams)


@dataclass
class Row:
    target: str
    streams: int
    runs: list[Run] = field(default_factory=list)

    @property
    def tps(self) -> float:
        return statistics.median(r.tps for r in self.runs)

    @property
    def ttft_median(self) -> float:
        return statistics.median([t for r in self.runs for t in r.ttfts] or [float("nan")])

    @property
    def ttft_worst(self) -> float:
        return max([t for r in self.runs for t in r.ttfts] or [float("nan")])

    @property
    def tokens(self) -> float:
        return statistics.median(r.tokens / len(r.streams) for r in self.runs)

    @property
    def failed(self) -> str:
        return f"{sum(r.failed for r in self.runs)}/{sum(len(r.streams) for r in self.runs)}"


def table(rows: list[Row], baseline: str) -> str:
    """Markdown table; single-stream ratios against ``baseline``, multi-stream against the same
    target's single stream."""
    singles = {r.target: r.tps for r in rows if r.streams == 1}
    base = singles.get(baseline)
    out = ["| target | streams | tokens/stream | tokens/s | TTFT median | TTFT worst | broken "
           "streams | ratio |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r.streams == 1:
            ratio = f"{r.tps / base:.2f}x {baseline}" if base and r.target != baseline else "-"
        else:
            one = singles.get(r.target)
            ratio = f"{r.tps / one:.2f}x own single" if one else "-"
        out.append(f"| {r.target} | {r.streams} | {r.tokens:.0f} | {r.tps:.1f} | "
                   f"{r.ttft_median * 1000:.0f} ms | {r.ttft_worst * 1000:.0f} ms | {r.failed} | "
                   f"{ratio} |")
    return "\n".join(out)


async def timed(events: AsyncIterator[Any]) -> tuple[Stream, Any]:
    """Time an engine's generation events (``Delta``/``Done``); the stream and its usage."""
    s = Stream()
    usage = None
    async for ev in events:
        if isinstance(ev, Delta):
            s.on_text(ev.text)
        elif isinstance(ev, Done):
            usage = ev.usage
    return s.finish(usage.completion_tokens if usage else None), usage
