"""Counters of the local engine, rendered in Prometheus' text format for ``GET /metrics``.

Per model: requests finished, prompt tokens, prompt tokens served from the KV cache (the slot's
own, restored from disk or copied from another sequence), of those restored from disk, of those
copied, and generated tokens; embedding inputs, their tokens, and of those the ones decoded once
for several inputs; plus the size of the on-disk KV cache.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

COUNTERS = {
    "requests": "Chat completions finished by the local engine.",
    "prompt_tokens": "Prompt tokens of finished requests.",
    "cached_tokens": "Prompt tokens reused from the KV cache instead of processed.",
    "restored_tokens": "Of the cached tokens, those restored from the on-disk KV cache.",
    "shared_tokens": "Of the cached tokens, those copied from another sequence's prefix.",
    "completion_tokens": "Tokens generated.",
    "embedding_inputs": "Inputs embedded by the local engine.",
    "embedding_tokens": "Tokens of the inputs embedded.",
    "embedding_shared_tokens": "Of the embedding tokens, those decoded once for several inputs "
                               "that open alike.",
}


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")


class EngineStats:
    def __init__(self, kv_dir: Path | None) -> None:
        self.kv_dir = kv_dir
        self.by_model: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(COUNTERS, 0))

    def finished(self, model_id: str, *, prompt: int, cached: int, restored: int,
                 shared: int, completion: int) -> None:
        c = self.by_model[model_id]
        c["requests"] += 1
        c["prompt_tokens"] += prompt
        c["cached_tokens"] += cached
        c["restored_tokens"] += restored
        c["shared_tokens"] += shared
        c["completion_tokens"] += completion

    def embedded(self, model_id: str, *, inputs: int, prompt: int, shared: int) -> None:
        c = self.by_model[model_id]
        c["embedding_inputs"] += inputs
        c["embedding_tokens"] += prompt
        c["embedding_shared_tokens"] += shared

    def kv_cache_bytes(self) -> int:
        if self.kv_dir is None or not self.kv_dir.is_dir():
            return 0
        total = 0
        for p in self.kv_dir.glob("*.kv"):
            try:
                total += p.stat().st_size
            except OSError:  # removed meanwhile by a runner
                pass
        return total

    def render(self) -> str:
        lines: list[str] = []
        for name, help_text in COUNTERS.items():
            lines += [f"# HELP jan_engine_{name}_total {help_text}",
                      f"# TYPE jan_engine_{name}_total counter"]
            for model, c in sorted(self.by_model.items()):
                lines.append(f'jan_engine_{name}_total{{model="{_label(model)}"}} {c[name]}')
        lines += ["# HELP jan_engine_kv_cache_bytes Size of the on-disk KV state cache.",
                  "# TYPE jan_engine_kv_cache_bytes gauge",
                  f"jan_engine_kv_cache_bytes {self.kv_cache_bytes()}"]
        return "\n".join(lines) + "\n"
