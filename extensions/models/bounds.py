"""Bounds on load settings, from the model itself and the memory budget.

Whatever a request, a ``model.json`` or a thread's settings ask for, a runner is only started
when its context fits what the model was trained for and its KV cache fits the memory budget
(``settings.json`` ``engine.memory_budget_mb``, default 75% of physical memory). Anything else is
a 400 naming the field, before a process is spawned.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from jan.sdk import InvalidRequest
from jan.sdk.inference import LoadSpec

from .gguf import GGUFInfo

MIN_CTX = 16
MAX_PARALLEL = 64  # llama.cpp's own sequence limit is 256; 64 is far beyond what 1 CPU serves
MAX_CTX_WITHOUT_METADATA = 131_072
KV_BYTES = 2  # f16 K and V entries


def budget_bytes(host_settings: Mapping[str, Any]) -> int:
    engine = host_settings.get("engine") if isinstance(host_settings, Mapping) else None
    mb = engine.get("memory_budget_mb") if isinstance(engine, Mapping) else None
    if isinstance(mb, int) and mb > 0:
        return mb * 2**20
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        total = 8 * 2**30
    return int(total * 0.75)


def kv_bytes_per_token(info: GGUFInfo | None) -> int | None:
    """K+V cache bytes per context token, from the GGUF's architecture metadata."""
    arch = info.architecture if info else None
    if info is None or arch is None:
        return None
    layers, embd = info.get(f"{arch}.block_count"), info.get(f"{arch}.embedding_length")
    heads, kv_heads = info.get(f"{arch}.attention.head_count"), info.get(
        f"{arch}.attention.head_count_kv")
    if not (isinstance(layers, int) and isinstance(embd, int) and layers > 0 and embd > 0):
        return None
    ratio = kv_heads / heads if isinstance(heads, int) and isinstance(kv_heads, int) and (
        heads > 0 and kv_heads > 0) else 1.0
    return int(2 * layers * embd * ratio * KV_BYTES)


def _bad(field: str, message: str) -> InvalidRequest:
    return InvalidRequest(f"Invalid '{field}': {message}", param=field)


def check_load_spec(spec: LoadSpec, info: GGUFInfo | None, budget: int) -> None:
    """Raise a 400 naming the first setting out of bounds."""
    max_ctx = (info.context_length if info else None) or MAX_CTX_WITHOUT_METADATA
    if not MIN_CTX <= spec.ctx_len <= max_ctx:
        raise _bad("ctx_len", f"must be between {MIN_CTX} and {max_ctx} (the context this "
                   f"model was trained for), got {spec.ctx_len}")
    if not 1 <= spec.n_parallel <= MAX_PARALLEL:
        raise _bad("n_parallel", f"must be between 1 and {MAX_PARALLEL}, got {spec.n_parallel}")
    cpus = os.cpu_count() or 1
    max_threads = max(16, 4 * cpus)
    if spec.cpu_threads is not None and not 1 <= spec.cpu_threads <= max_threads:
        raise _bad("cpu_threads", f"must be between 1 and {max_threads}, got {spec.cpu_threads}")
    if not -1 <= spec.ngl <= 10_000:
        raise _bad("ngl", f"must be -1 (all layers) or a layer count, got {spec.ngl}")
    per_token = kv_bytes_per_token(info)
    if per_token is None:
        return
    weights = info.file_size if info else 0
    need = weights + per_token * spec.ctx_len * spec.n_parallel
    if need > budget:
        field = "n_parallel" if spec.n_parallel > 1 else "ctx_len"
        raise _bad(field, f"ctx_len {spec.ctx_len} x n_parallel {spec.n_parallel} needs about "
                   f"{need // 2**20} MiB, beyond the memory budget of {budget // 2**20} MiB "
                   "(settings.json engine.memory_budget_mb)")
