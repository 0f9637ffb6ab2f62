"""Where an assistant's output goes: ``<data>/logs/assistants/<id>.log`` and the server log.

The worker's stdout/stderr (``print()``, ``logging``, tracebacks) are written by the host (the
worker cannot write outside its workspace) into a per-assistant file that rotates at a fixed
size, keeping one ``.1`` file, so a chatty assistant never fills the disk. Server-log lines a
worker can cause (failing requests, refused topics) go through a per-worker rate limiter, so
assistant code cannot flood the server log either.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from jan.sdk.sandbox import assistant_log_path as log_path

__all__ = ["AssistantLog", "RateLimitedLog", "log_path"]


class AssistantLog:
    """Append-only, size-bounded: at ``max_bytes`` the file becomes ``<id>.log.1``."""

    def __init__(self, path: Path, max_bytes: int) -> None:
        self.path, self.max_bytes = path, max(4096, max_bytes)
        self._size: int | None = None

    def write(self, data: bytes) -> None:
        try:
            if self._size is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._size = self.path.stat().st_size if self.path.exists() else 0
            if self._size + len(data) > self.max_bytes:
                self._rotate()
            data = data[-self.max_bytes:]
            with open(self.path, "ab") as f:
                f.write(data)
            self._size += len(data)
        except OSError:
            self._size = None  # a full or read-only disk never fails the assistant's call

    def note(self, text: str) -> None:
        """A line from the host itself (run boundaries, errors), marked as such."""
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        self.write(f"[{stamp} jan] {text.rstrip()}\n".encode("utf-8", "replace"))

    def _rotate(self) -> None:
        self.path.replace(self.path.with_name(self.path.name + ".1"))
        self._size = 0


class RateLimitedLog:
    """A token bucket in front of the server log for one worker."""

    def __init__(self, log: logging.Logger, burst: int, every: float) -> None:
        self.log, self.burst, self.every = log, max(1, burst), max(0.01, every)
        self.tokens = float(self.burst)
        self.stamp = time.monotonic()
        self.dropped = 0

    def __call__(self, level: int, msg: str, *args: Any) -> None:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) / self.every)
        self.stamp = now
        if self.tokens < 1:
            self.dropped += 1
            return
        self.tokens -= 1
        if self.dropped:
            msg = f"{msg} ({self.dropped} similar lines from this assistant suppressed)"
            self.dropped = 0
        self.log.log(level, msg, *args)
