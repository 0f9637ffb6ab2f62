"""Per-model bookkeeping in the manager (one ``ModelSlot`` per load key, kept across runner
restarts), the memory estimate, and the mapping of runner failures to API errors."""

from __future__ import annotations

import asyncio
import os
import time

from jan.sdk.errors import ApiError, InvalidRequest
from jan.sdk.inference import LoadSpec

from .process import RunnerProcess
from .protocol import Failed


class ModelSlot:
    """Everything the manager keeps per load key; survives runner restarts."""

    def __init__(self, spec: LoadSpec) -> None:
        self.spec = spec
        self.runner: RunnerProcess | None = None
        self.gate = asyncio.Semaphore(max(1, spec.n_parallel))  # FIFO: admission order
        self.start_lock = asyncio.Lock()
        self.waiting = 0
        self.active = 0
        self.last_used = time.monotonic()
        self.mem_estimate = estimate_bytes(spec)

    @property
    def live(self) -> bool:
        return self.runner is not None and self.runner.alive

    @property
    def idle(self) -> bool:
        return self.active == 0 and self.waiting == 0

    def memory(self) -> int:
        rss = self.runner.memory_bytes() if self.live and self.runner else None
        return max(self.mem_estimate, rss or 0)


def estimate_bytes(spec: LoadSpec) -> int:
    """Before loading: the weights (file size) plus a margin for KV cache and buffers."""
    try:
        size = os.path.getsize(spec.path)
    except OSError:
        size = 0
    return int(size * 1.2) + 64 * 2**20


def api_error(ev: Failed) -> ApiError:
    if ev.status == 400:
        return InvalidRequest(ev.message, code=ev.code, param=ev.param)
    return ApiError(ev.message, status=ev.status, code=ev.code, param=ev.param)
