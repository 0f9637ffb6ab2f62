"""One sandboxed worker's conversation with the host: start, calls, and the worker's requests.

The host asks (``init``, then one ``call`` at a time) under deadlines and a workspace quota; the
worker asks back (model, thread, events) only while a call is active, and the relay answers. Any
failure (crash, deadline, protocol violation, output flood, a pipe it stopped reading, a
workspace over quota) fails the pending call with a ``SandboxError`` carrying a clear message,
and the worker is never reused (see ``process.py``).

Between calls the whole process group is frozen (SIGSTOP, SIGCONT at the next call) and every
host request it still had in flight is cancelled: nothing an assistant started (a background
thread calling the model, a spinning loop) outlives the run that started it. Requests that
arrive while no call is active are refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import tempfile
from pathlib import Path
from typing import Any

from jan.sdk.inference import Usage
from jan.sdk.sandbox import WORKSPACE, SandboxError

from .config import SandboxSettings, worker_config
from .logs import AssistantLog, RateLimitedLog, log_path
from .process import WorkerProcess
from .quota import INTERVAL, over_quota
from .rpc import ProtocolError, WorkerRequest, WorkerResponse
from .serving import Chunk, Handler, RelayError, answer

__all__ = ["Chunk", "RelayError", "Worker"]


class Worker(WorkerProcess):
    def __init__(self, *, assistant_id: str, folder: Path, data_root: Path,
                 settings: SandboxSettings, site_dirs: list[str], handler: Handler,
                 log: logging.Logger) -> None:
        super().__init__(
            assistant_id=assistant_id, settings=settings,
            logfile=AssistantLog(log_path(data_root, assistant_id), settings.log_file_bytes),
            host_log=RateLimitedLog(log, settings.host_log_burst, settings.host_log_every))
        self.folder, self.data_root, self.site_dirs = folder, data_root, site_dirs
        self.handler, self.log = handler, log
        self.info: dict[str, Any] = {}
        self.context: dict[str, Any] = {}
        self.busy = False  # in init or a call: only then may the worker ask the host anything
        self.model_calls = 0  # in flight (relay)
        self.tokens_used = 0  # by the current call (relay)
        self.usage = Usage()  # the current call's model usage, summed (relay)
        self._ids = itertools.count(1)
        self._serving: set[asyncio.Task[Any]] = set()  # the worker's requests being answered
        self._workspace: Path | None = None

    async def start(self, *, probe: bool = False) -> dict[str, Any]:
        workspace = self.folder / WORKSPACE
        if not probe:
            workspace.mkdir(parents=True, exist_ok=True)
            self._workspace = workspace
        self._scratch = tempfile.mkdtemp(prefix=f"jan-sandbox-{self.assistant_id[:40]}-")
        cfg = worker_config(self.settings, data_root=self.data_root,
                            assistant_id=self.assistant_id, folder=self.folder,
                            workspace=workspace if not probe else Path(self._scratch),
                            scratch=Path(self._scratch), site_dirs=self.site_dirs)
        cfg["probe"] = probe
        await self._launch(cfg["env"], self._scratch)
        self._spawn(self._read_loop())
        self.busy = True
        try:
            self.info = await asyncio.wait_for(self.request("init", cfg),
                                               self.settings.start_timeout)
        except TimeoutError:
            await self.kill(SandboxError("timeout", "assistant worker did not start in time"))
            raise self.failure from None  # type: ignore[misc]
        except SandboxError:
            await self.kill(self.failure or SandboxError("crashed", "worker failed to start"))
            raise
        finally:
            self.busy = False
        if not probe:
            self._end_call()  # whatever index.py started while loading ends here too
        return self.info

    # ------------------------------------------------------------------ calls
    def _end_call(self) -> None:
        """The call returned: cancel what it left running at the host, then freeze."""
        self.busy = False
        for task in list(self._serving):
            task.cancel()
        if self.alive:
            self.freeze()

    async def request(self, method: str, params: dict[str, Any]) -> Any:
        if self.failure is not None:
            raise self.failure
        rid = f"h{next(self._ids)}"
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[rid] = fut
        try:
            assert self.channel is not None
            await self.channel.send({"jsonrpc": "2.0", "id": rid, "method": method,
                                     "params": params})
            return await fut
        except (BrokenPipeError, ConnectionError):
            raise self.failure or SandboxError("crashed", "assistant worker is gone") from None
        finally:
            self._pending.pop(rid, None)

    async def call(self, topic: str, data: Any, context: dict[str, Any],
                   timeout: float) -> Any:
        """Run the handlers for ``topic``; kill the whole worker if it overruns ``timeout``."""
        why = await asyncio.to_thread(self._quota_check)
        if why:
            raise SandboxError("quota", why)
        self.context, self.output_bytes, self.tokens_used = context, 0, 0
        self.usage = Usage()
        what = context.get("run_id") or f"event {topic} from {context.get('source', 'host')}"
        self.logfile.note(f"--- {what}")
        self.busy = True
        self.thaw()
        watch = self._spawn(self._watch_quota())
        try:
            reply = await asyncio.wait_for(
                self.request("call", {"topic": topic, "data": data, "context": context}), timeout)
        except TimeoutError:
            await self.kill(SandboxError(
                "timeout", f"assistant code exceeded the {timeout:g}s time limit and was stopped"))
            raise self.failure from None  # type: ignore[misc]
        except asyncio.CancelledError:
            # The handler may still be running: this worker cannot be trusted to be idle.
            await asyncio.shield(self.kill(SandboxError("crashed", "the call was cancelled")))
            raise
        except SandboxError as exc:
            self.logfile.note(f"failed: {exc.message}")
            raise
        finally:
            watch.cancel()
            self.context = {}
            self._end_call()
        return reply.get("value") if isinstance(reply, dict) else None

    # ------------------------------------------------------------------ workspace quota
    def _quota_check(self) -> str | None:
        roots = [p for p in (self._workspace, Path(self._scratch) if self._scratch else None)
                 if p is not None]
        if not roots:
            return None
        return over_quota(roots, self.settings.workspace_mb * 1024 * 1024,
                          self.settings.workspace_files)

    async def _watch_quota(self) -> None:
        while self.alive:
            await asyncio.sleep(INTERVAL)
            why = await asyncio.to_thread(self._quota_check)
            if why:
                await self.kill(SandboxError("quota", f"stopped: {why}"))
                return

    async def _read_loop(self) -> None:
        assert self.channel is not None
        try:
            while (msg := await self.channel.read()) is not None:
                if isinstance(msg, WorkerResponse):
                    self._resolve(msg)
                elif not self.busy:
                    self._refuse(msg, "assistant code may only call the host while it handles "
                                 "a run or an event (the call has returned)")
                else:
                    # Backpressure: past the cap, stop reading until one request is done.
                    while len(self._serving) >= self.settings.max_pending_requests:
                        await asyncio.wait(set(self._serving),
                                           return_when=asyncio.FIRST_COMPLETED)
                    task = self._spawn(self._serve(msg))
                    self._serving.add(task)
                    task.add_done_callback(self._serving.discard)
            await self._exited()
        except ProtocolError as exc:
            await self.kill(SandboxError("protocol", f"assistant worker broke the protocol: {exc}"))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - any reader failure ends this worker
            await self.kill(SandboxError("crashed", f"assistant worker channel failed: {exc}"))

    def _resolve(self, msg: WorkerResponse) -> None:
        fut = self._pending.get(msg.id)
        if fut is None or fut.done():
            return
        if msg.error is not None:
            fut.set_exception(SandboxError("handler_error", msg.error.message))
            detail = msg.error.data.get("traceback") if isinstance(msg.error.data, dict) else None
            self.logfile.note(str(detail or msg.error.message))
        else:
            fut.set_result(msg.result)

    async def _serve(self, req: WorkerRequest) -> None:
        async def chunk(text: str) -> None:
            await self._send({"jsonrpc": "2.0", "method": "chunk",
                              "params": {"id": req.id, "text": text}})

        try:
            reply = await answer(self.handler, self, req, chunk)
        except asyncio.CancelledError:
            # The call that made this request returned: tell the waiting thread, then stop.
            self._refuse(req, "cancelled: the run or event that made this request has ended")
            raise
        except Exception as exc:  # noqa: BLE001 - the worker gets a message, never a traceback
            self.host_log(logging.ERROR, "sandbox relay %s for assistant %s failed: %r",
                          req.method, self.assistant_id, exc)
            reply = {"error": {"code": -32000, "message": f"host error: {type(exc).__name__}"}}
        await self._send({"jsonrpc": "2.0", "id": req.id, **reply})

    def _refuse(self, req: WorkerRequest, message: str) -> None:
        """Answer without waiting: the worker is (about to be) frozen and cannot read now."""
        if self.channel is not None and self.failure is None:
            with contextlib.suppress(BrokenPipeError, ConnectionError, RuntimeError):
                self.channel.send_nowait({"jsonrpc": "2.0", "id": req.id,
                                          "error": {"code": -32000, "message": message}})

    async def _send(self, obj: dict[str, Any]) -> None:
        if self.channel is None or self.failure is not None:
            return
        stall = self.settings.write_stall_seconds
        try:
            await asyncio.wait_for(self.channel.send(obj), stall)
        except TimeoutError:
            await self.kill(SandboxError(
                "stalled", f"assistant worker stopped reading its pipe for {stall:g}s and was "
                "stopped"))
        except (BrokenPipeError, ConnectionError, RuntimeError):
            pass
