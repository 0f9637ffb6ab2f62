"""Per-upstream counts and first-byte latency in Prometheus' text format (``GET /metrics``,
served by the host from every service that reports metrics)."""

from __future__ import annotations

from typing import Any


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")


def render(describe: dict[str, list[dict[str, Any]]]) -> str:
    lines = [
        "# HELP jan_upstream_requests_total Requests sent to the upstream.",
        "# TYPE jan_upstream_requests_total counter",
        "# HELP jan_upstream_failures_total Upstream failures (before the first byte or health).",
        "# TYPE jan_upstream_failures_total counter",
        "# HELP jan_upstream_in_flight Requests in flight now.",
        "# TYPE jan_upstream_in_flight gauge",
        "# HELP jan_upstream_healthy 1 when the upstream takes requests.",
        "# TYPE jan_upstream_healthy gauge",
        "# HELP jan_upstream_first_byte_ms_mean Mean milliseconds to the first byte.",
        "# TYPE jan_upstream_first_byte_ms_mean gauge",
    ]
    for engine, ups in describe.items():
        for u in ups:
            lab = f'{{engine="{_label(engine)}",upstream="{_label(u["url"])}"}}'
            lines += [f"jan_upstream_requests_total{lab} {u['requests']}",
                      f"jan_upstream_failures_total{lab} {u['failures']}",
                      f"jan_upstream_in_flight{lab} {u['in_flight']}",
                      f"jan_upstream_healthy{lab} {int(u['healthy'])}"]
            if u["mean_first_byte_ms"] is not None:
                lines.append(f"jan_upstream_first_byte_ms_mean{lab} {u['mean_first_byte_ms']}")
    return "\n".join(lines) + "\n"
