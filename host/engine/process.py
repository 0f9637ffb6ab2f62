"""The manager's handle on one runner subprocess: spawn, pipes, event dispatch, crash, stop.

Everything here runs on the event loop and never blocks it: pipes are read and written through
asyncio transports. Events are routed by request id to per-request queues; when the runner's
event pipe closes (exit or crash), every open request gets a ``Crashed`` marker.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from jan.sdk.errors import Unavailable
from jan.sdk.inference import LoadSpec

from .protocol import EVENT, MAX_LINE, Fatal, Load, Ready, Shutdown, encode


@dataclass
class Crashed:
    """Put on every open request queue when the runner goes away."""

    message: str


class RunnerProcess:
    def __init__(self, spec: LoadSpec, *, prompt_chunk: int, log: logging.Logger,
                 on_crash: Callable[[RunnerProcess], None] | None = None,
                 options: dict[str, Any] | None = None) -> None:
        self.spec, self.prompt_chunk, self.log = spec, prompt_chunk, log
        self.options = options or {}  # more ``Load`` fields (step budget, sharing, KV cache)
        self.on_crash = on_crash
        self.proc: asyncio.subprocess.Process | None = None
        self.info: Ready | None = None
        self.dead = False
        self.stopping = False
        self.started_at = 0.0
        self._ids = itertools.count(1)
        self._streams: dict[int, asyncio.Queue] = {}
        self._ready: asyncio.Future[Ready] | None = None
        self._writer: asyncio.WriteTransport | None = None
        self._outbox: list[bytes] = []
        self._tasks: list[asyncio.Task] = []
        self.exited = asyncio.Event()

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def alive(self) -> bool:
        return self.info is not None and not self.dead

    async def start(self, timeout: float) -> Ready:
        loop = asyncio.get_running_loop()
        cmd_r, cmd_w = os.pipe()
        evt_r, evt_w = os.pipe()
        try:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "jan.host.engine.runner", str(cmd_r), str(evt_w),
                pass_fds=(cmd_r, evt_w), stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
                start_new_session=True,  # a Ctrl-C in the terminal goes to the host only
            )
        except BaseException:
            for fd in (cmd_w, evt_r):
                os.close(fd)
            raise
        finally:
            os.close(cmd_r)
            os.close(evt_w)
        self.started_at = time.monotonic()
        reader = asyncio.StreamReader(limit=MAX_LINE)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader),
                                     os.fdopen(evt_r, "rb", 0))
        self._writer, _ = await loop.connect_write_pipe(asyncio.Protocol,
                                                        os.fdopen(cmd_w, "wb", 0))
        self._ready = loop.create_future()
        self._tasks = [asyncio.create_task(self._read_events(reader)),
                       asyncio.create_task(self._read_stderr())]
        self.send(Load(spec=self.spec, prompt_chunk=self.prompt_chunk, **self.options))
        try:
            self.info = await asyncio.wait_for(asyncio.shield(self._ready), timeout)
        except BaseException as exc:
            self._ready.cancel()
            await self.stop(grace=0)
            if isinstance(exc, TimeoutError):
                raise Unavailable(f"Model '{self.spec.model_id}' did not load within {timeout}s",
                                  code="model_load_timeout") from None
            raise
        return self.info

    def send(self, msg) -> None:  # noqa: ANN001 - any protocol command
        """Queue a command; everything sent in one event-loop turn goes out in one write, so
        the runner sees requests that arrived together at once (and admits them together)."""
        if self.dead:
            return
        self._outbox.append(encode(msg))
        if len(self._outbox) == 1:
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        data, self._outbox = b"".join(self._outbox), []
        if data and self._writer is not None and not self._writer.is_closing() and not self.dead:
            self._writer.write(data)

    def open_stream(self) -> tuple[int, asyncio.Queue]:
        if not self.alive:
            raise Unavailable(f"the runner for model {self.spec.model_id!r} is not running")
        rid = next(self._ids)
        q: asyncio.Queue = asyncio.Queue()
        self._streams[rid] = q
        return rid, q

    def close_stream(self, rid: int) -> None:
        self._streams.pop(rid, None)

    @property
    def in_flight(self) -> int:
        return len(self._streams)

    async def _read_events(self, reader: asyncio.StreamReader) -> None:
        buf = b""
        try:
            while chunk := await reader.read(1 << 16):
                buf += chunk
                if len(buf) > MAX_LINE:
                    self.log.error("runner %s sent an oversized line; stopping it", self.pid)
                    break
                *lines, buf = buf.split(b"\n")
                for line in lines:
                    self._dispatch(line)
            if self.proc is not None:  # its pipe closed: give the exit code a moment to arrive
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.proc.wait(), 1.0)
        finally:
            self._gone()

    def _dispatch(self, line: bytes) -> None:
        try:
            ev = EVENT.validate_json(line)
        except ValidationError as exc:
            self.log.warning("runner %s: bad event ignored: %s", self.pid, exc)
            return
        if isinstance(ev, Ready | Fatal):
            if self._ready is not None and not self._ready.done():
                if isinstance(ev, Ready):
                    self._ready.set_result(ev)
                else:
                    self._ready.set_exception(Unavailable(
                        f"model {self.spec.model_id!r} failed to load: {ev.message}",
                        code="model_load_failed"))
            return
        q = self._streams.get(ev.id)
        if q is not None:  # else: a cancelled request's late events
            q.put_nowait(ev)

    def _gone(self) -> None:
        """The runner is gone (or going): fail whatever still waits on it. Idempotent."""
        if self.exited.is_set():
            return
        self.dead = True
        code = self.proc.returncode if self.proc else None
        why = "was unloaded" if self.stopping else f"stopped unexpectedly (exit code {code})"
        msg = f"the runner for model {self.spec.model_id!r} {why}"
        if self._ready is not None and not self._ready.done():
            self._ready.set_exception(Unavailable(msg, code="model_load_failed"))
        for q in self._streams.values():
            q.put_nowait(Crashed(msg))
        self._streams.clear()
        if self._writer is not None:
            self._writer.close()
        if self.proc is not None and self.proc.returncode is None and not self.stopping:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()  # it closed its pipe but lingers: it is of no use any more
        self.exited.set()
        if not self.stopping and self.info is not None and self.on_crash is not None:
            self.log.warning("%s", msg)
            self.on_crash(self)

    async def _read_stderr(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        while line := await self.proc.stderr.readline():
            self.log.info("runner %s: %s", self.pid, line.decode(errors="replace").rstrip())

    async def stop(self, grace: float = 12.0) -> None:
        """Ask the runner to exit; kill it if it does not within ``grace`` seconds."""
        self.stopping = True
        self.send(Shutdown())
        self._flush()
        if self._writer is not None:
            self._writer.close()  # EOF on its command pipe also tells it to go
        proc = self.proc
        if proc is not None and proc.returncode is None:
            try:
                await asyncio.wait_for(proc.wait(), grace)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.exited.wait(), 2)
        for t in self._tasks:
            t.cancel()
        self._gone()

    def memory_bytes(self) -> int | None:
        """The runner's resident memory (Linux), for the memory budget."""
        try:
            with open(f"/proc/{self.pid}/statm") as f:
                return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, IndexError):
            return None
