"""A worker's process group and its pipes: spawn, freeze and thaw, drain output, kill.

The worker runs in its own session (process group), so killing it kills anything it managed to
start, and freezing it (SIGSTOP) stops all of it. Its stdout/stderr go to the assistant's log
file, and past ``max_output_bytes`` the worker is killed. Once killed, a worker is never reused:
every call waiting on it fails with the reason it was killed for.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import shutil
import signal
import sys
import time
from typing import Any

from jan.sdk.sandbox import SandboxError

from .config import SandboxSettings, bootstrap_path
from .logs import AssistantLog, RateLimitedLog
from .rpc import Channel
from .serving import describe_exit


class WorkerProcess:
    """Everything that ends with the worker: its processes, pipes, the host tasks reading
    them and the requests waiting for its answers."""

    def __init__(self, *, assistant_id: str, settings: SandboxSettings, logfile: AssistantLog,
                 host_log: RateLimitedLog) -> None:
        self.assistant_id, self.settings = assistant_id, settings
        self.logfile, self.host_log = logfile, host_log
        self.proc: asyncio.subprocess.Process | None = None
        self.channel: Channel | None = None
        self.failure: SandboxError | None = None
        self.output_tail: collections.deque[bytes] = collections.deque(maxlen=16)
        self.output_bytes = 0
        self.started_at = 0.0
        self.frozen = False
        self._pending: dict[str, asyncio.Future[Any]] = {}  # host requests awaiting answers
        self._tasks: set[asyncio.Task[Any]] = set()
        self._scratch: str | None = None

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None and self.failure is None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    async def _launch(self, env: dict[str, str], cwd: str) -> None:
        """Start ``bootstrap.py`` with a private pipe each way; drain its output."""
        to_worker_r, to_worker_w = os.pipe()
        from_worker_r, from_worker_w = os.pipe()
        try:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-I", str(bootstrap_path()), str(to_worker_r), str(from_worker_w),
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT, pass_fds=(to_worker_r, from_worker_w),
                env=env, cwd=cwd, start_new_session=True)
        finally:
            os.close(to_worker_r)
            os.close(from_worker_w)
        self.started_at = time.monotonic()
        self.channel = Channel(from_worker_r, to_worker_w,
                               max_bytes=self.settings.max_message_bytes,
                               buffer_bytes=self.settings.reply_buffer_bytes)
        await self.channel.open()
        self._spawn(self._drain_output())

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        # Retrieve every outcome here: no "Task exception was never retrieved" noise.
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.host_log(logging.WARNING, "assistant %s worker task failed: %r",
                          self.assistant_id, task.exception())

    # ------------------------------------------------------------------ freeze between calls
    def _signal_group(self, sig: signal.Signals) -> None:
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, sig)

    def freeze(self) -> None:
        """Stop every process of the worker until the next call (no CPU, no requests)."""
        self._signal_group(signal.SIGSTOP)
        self.frozen = True

    def thaw(self) -> None:
        self._signal_group(signal.SIGCONT)
        self.frozen = False

    # ------------------------------------------------------------------ output
    async def _drain_output(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        while chunk := await self.proc.stdout.read(65536):
            self.output_bytes += len(chunk)
            self.output_tail.append(chunk[-512:])
            self.logfile.write(chunk)
            if self.output_bytes > self.settings.max_output_bytes:
                await self.kill(SandboxError(
                    "output_limit", f"assistant code wrote more than "
                    f"{self.settings.max_output_bytes} bytes of output and was stopped"))
                return

    def output(self) -> str:
        return b"".join(self.output_tail).decode("utf-8", "replace")[-2000:]

    # ------------------------------------------------------------------ the end
    async def _exited(self) -> None:
        assert self.proc is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.proc.wait(), 2)
        tail = self.output().strip().splitlines()[-3:]
        detail = f": {' | '.join(tail)}" if tail else ""
        await self.kill(SandboxError(
            "crashed", f"assistant worker {describe_exit(self.proc.returncode)}{detail}"))

    async def kill(self, reason: SandboxError | None = None) -> None:
        """Kill the whole process group and fail everything pending with ``reason``."""
        if self.failure is None:
            self.failure = reason or SandboxError("crashed", "assistant worker was stopped")
        for fut in list(self._pending.values()):
            if not fut.done():
                fut.set_exception(self.failure)
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            with contextlib.suppress(TimeoutError, ProcessLookupError):
                await asyncio.wait_for(self.proc.wait(), 5)
        if self.channel is not None:
            self.channel.close()
        current = asyncio.current_task()
        for task in list(self._tasks):
            if task is not current:
                task.cancel()
        if self._scratch:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None

    async def stop(self, reason: str = "assistant worker was stopped") -> None:
        """Ask politely (bounded: a worker that does not read is not waited for), then kill."""
        if self.alive and self.channel is not None:
            self.thaw()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(
                    self.channel.send({"jsonrpc": "2.0", "method": "shutdown"}), 1)
                await asyncio.wait_for(self.proc.wait(), 1)  # type: ignore[union-attr]
        await self.kill(SandboxError("crashed", reason))
