"""The ``sandbox`` service: one warm worker per code assistant, runs, pub/sub and restarts.

Calls to one assistant are serialized (its worker handles one call at a time); different
assistants run in parallel. A worker that crashes, hangs or misbehaves fails the call that was
running and is thrown away; the next call starts a fresh one. A worker is also replaced when
its ``index.py``, ``assistant.json`` or environment changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

from jan.sdk.events import ASSISTANT_DELETED, ASSISTANT_UPDATED, DATA_CHANGED
from jan.sdk.models import Assistant
from jan.sdk.sandbox import SandboxError, SandboxResult, env_site_dirs, install_requirements
from jan.sdk.storage import Folder, check_id

from .changes import code_assistants, stamp, touched
from .config import SandboxSettings
from .probe import IsolationReport, level_of, meets, probe
from .relay import ASSISTANT_PREFIX, Relay
from .reply import apply_reply
from .subscriptions import Subscriptions
from .worker import Worker


class Supervisor:
    def __init__(self, *, data: Folder | str | os.PathLike[str], settings: dict[str, Any] | None,
                 events: Any, services: Any, log: logging.Logger | None = None) -> None:
        self.data_root = self._root_of(data)
        self.settings = SandboxSettings.parse(settings)
        self.events, self.services = events, services
        self.log = log or logging.getLogger("jan.host.sandbox")
        self.relay = Relay(self)
        self._workers: dict[str, Worker] = {}
        self._stamps: dict[str, tuple] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self.subscriptions = Subscriptions(
            events, lambda *delivery: self._spawn(self._deliver(*delivery)), self.log)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._report: IsolationReport | None = None
        self._levels: dict[str, str] = {}  # isolation level of each assistant's last call
        self._errors: dict[str, dict[str, Any]] = {}  # last failure, in memory
        self._probe_thread = threading.Thread(target=self._run_probe, daemon=True)
        self._probe_thread.start()
        self._closed = False
        self._started = False
        self._watches = [events.on(DATA_CHANGED, self._on_data_changed),
                         events.on(ASSISTANT_DELETED, self._on_assistant_changed),
                         events.on(ASSISTANT_UPDATED, self._on_assistant_changed)
                         ] if events else []
        with contextlib.suppress(RuntimeError):
            asyncio.get_running_loop()
            self._ensure_started()

    @staticmethod
    def _root_of(data: Folder | str | os.PathLike[str]) -> Path:
        # Not getattr(data, "root"): a pathlib.Path has one too, and it is "/".
        if isinstance(data, Folder):
            return data.root.resolve()
        if isinstance(data, str | os.PathLike):
            return Path(data).resolve()
        raise TypeError(f"data must be a jan.sdk.storage.Folder or a path, not {type(data)!r}")

    # ------------------------------------------------------------------ probe and files
    def _run_probe(self) -> None:
        self._report = probe(self.settings, self.data_root)

    def probe(self) -> IsolationReport:
        self._probe_thread.join()
        assert self._report is not None
        return self._report

    def folder(self, assistant_id: str) -> Path:
        check_id(assistant_id, what="assistant_id")
        try:
            return Path(self.services.get("assistants").folder(assistant_id))
        except Exception:  # noqa: BLE001 - no store yet: Jan's layout
            return self.data_root / "assistants" / assistant_id

    def has_code(self, assistant_id: str) -> bool:
        return (self.folder(assistant_id) / "index.py").is_file()

    async def assistant(self, assistant_id: str) -> Assistant:
        try:
            return await self.services.get("assistants").get(assistant_id)
        except Exception:  # noqa: BLE001 - fall back to the file itself
            path = self.folder(assistant_id) / "assistant.json"
            raw = json.loads(path.read_text()) if path.is_file() else {}
            return Assistant.model_validate({**raw, "id": assistant_id})

    def install(self, assistant_id: str, target: Path | None = None):  # noqa: ANN201
        return install_requirements(self.folder(assistant_id), target=target)

    # ------------------------------------------------------------------ workers
    def _lock(self, assistant_id: str) -> asyncio.Lock:
        return self._locks.setdefault(assistant_id, asyncio.Lock())

    async def _worker(self, assistant_id: str) -> Worker:
        """The live worker for ``assistant_id`` (caller holds its lock)."""
        if self._closed:
            raise SandboxError("unavailable", "the sandbox service is shut down")
        folder = self.folder(assistant_id)
        if not (folder / "index.py").is_file():
            raise SandboxError("unavailable", f"assistant '{assistant_id}' has no index.py")
        stamp_now = stamp(folder)
        worker = self._workers.get(assistant_id)
        if worker is not None and worker.alive and self._stamps.get(assistant_id) == stamp_now:
            return worker
        if worker is not None:
            await worker.stop()
        worker = Worker(assistant_id=assistant_id, folder=folder.resolve(),
                        data_root=self.data_root, settings=self.settings,
                        site_dirs=env_site_dirs(folder), handler=self.relay, log=self.log)
        self._workers[assistant_id] = worker
        self._stamps[assistant_id] = stamp_now
        try:
            info = await worker.start()
        except SandboxError as exc:
            self._workers.pop(assistant_id, None)
            if exc.code == "handler_error":
                raise SandboxError("refused" if "isolation layer" in exc.message else
                                   "handler_error", f"index.py failed to load: {exc.message}"
                                   ) from None
            raise
        active = self.active_layers(worker)
        if not meets(active, self.settings):
            await worker.kill()
            self._workers.pop(assistant_id, None)
            raise SandboxError("refused", "strict sandbox mode: required isolation "
                               f"{sorted(set(self.settings.required) - active)} unavailable")
        self.subscriptions.load(assistant_id, await self.assistant(assistant_id),
                                info.get("subscriptions"))
        return worker

    @staticmethod
    def active_layers(worker: Worker) -> set[str]:
        return {k for k, v in worker.info.get("layers", {}).items() if v.get("active")}

    async def start(self, assistant_id: str) -> None:
        async with self._lock(assistant_id):
            await self._worker(assistant_id)

    async def restart(self, assistant_id: str) -> None:
        """Replace the worker (e.g. after ``index.py`` changed); start it again if it has code."""
        async with self._lock(assistant_id):
            worker = self._workers.pop(assistant_id, None)
            if worker is not None:
                await worker.stop()
            self.subscriptions.drop(assistant_id)
            if self.has_code(assistant_id) and not self._closed:
                await self._worker(assistant_id)

    async def end(self, assistant_id: str, reason: str) -> None:
        """Kill the worker now, even mid-call (the call fails with ``reason``)."""
        self.subscriptions.drop(assistant_id)
        worker = self._workers.pop(assistant_id, None)
        if worker is not None:
            await worker.stop(reason)

    async def _call(self, assistant_id: str, topic: str, data: Any, context: dict[str, Any],
                    timeout: float | None) -> tuple[Any, Worker]:
        async with self._lock(assistant_id):
            try:
                worker = await self._worker(assistant_id)
            except SandboxError as exc:
                self._failed(assistant_id, exc)
                raise
            try:
                value = await worker.call(topic, data, context, timeout or self.settings.timeout)
            except SandboxError as exc:
                # The author's traceback (index.py lines) in the server log too, rate-limited.
                worker.host_log(logging.WARNING, "assistant %s failed on %s: %s",
                                assistant_id, topic, exc.message)
                self._failed(assistant_id, exc)
                raise
            finally:
                if self._workers.get(assistant_id) is worker and not worker.alive:
                    self._workers.pop(assistant_id, None)
            self._levels[assistant_id] = level_of(self.active_layers(worker), self.settings.mode)
            return value, worker

    def _failed(self, assistant_id: str, exc: SandboxError) -> None:
        self._errors[assistant_id] = {"code": exc.code, "message": exc.message,
                                      "at": int(time.time())}

    def status(self, assistant_id: str) -> dict[str, Any] | None:
        """A code assistant's isolation level (its last call's, else what this machine
        offers once probed) and its last error since the server started; ``None`` for an
        assistant without ``index.py``. Answers from memory and one file check."""
        if not self.has_code(assistant_id):
            return None
        level = self._levels.get(assistant_id) or (
            self._report.level if self._report is not None else None)
        worker = self._workers.get(assistant_id)
        return {"level": level, "running": bool(worker and worker.alive),
                "last_error": self._errors.get(assistant_id)}

    async def run(self, assistant_id: str, *, thread_id: str, run_id: str,
                  model: str | None = None, data: dict[str, Any] | None = None,
                  timeout: float | None = None) -> SandboxResult:
        self._ensure_started()
        context = {"kind": "run", "thread_id": thread_id, "run_id": run_id, "model": model,
                   "source": "host", "hops": 0}
        payload = {"type": "run", "thread_id": thread_id, "run_id": run_id, **(data or {})}
        value, worker = await self._call(assistant_id, f"{ASSISTANT_PREFIX}{assistant_id}",
                                         payload, context, timeout)
        active = self.active_layers(worker)
        result = SandboxResult(isolation=level_of(active, self.settings.mode),
                               layers=sorted(active), usage=worker.usage)
        apply_reply(result, value, assistant_id, self.log)
        return result

    # ------------------------------------------------------------------ events and tasks
    async def _deliver(self, assistant_id: str, topic: str, payload: dict[str, Any]) -> None:
        context = {"kind": "event", "source": str(payload.get("source", "host")),
                   "hops": int(payload.get("hops", 0))}
        with contextlib.suppress(SandboxError):  # logged by _call
            await self._call(assistant_id, topic, payload.get("data"), context, None)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        # Every background outcome is retrieved: no "Task exception was never retrieved".
        self._tasks.discard(task)
        if task.cancelled() or task.exception() is None:
            return
        exc = task.exception()
        self.log.warning("sandbox: %s", exc.message if isinstance(exc, SandboxError) else
                         f"{type(exc).__name__}: {exc}")

    # ------------------------------------------------------------------ lifecycle
    def _ensure_started(self) -> None:
        if self._started or self._closed:
            return
        self._started = True
        if self.settings.autostart:
            self._spawn(self._autostart())

    async def _autostart(self) -> None:
        for assistant_id in code_assistants(self.data_root / "assistants"):
            try:
                await self.start(assistant_id)
            except Exception as exc:  # noqa: BLE001 - one bad assistant never stops the rest
                self.log.warning("assistant %s did not start: %s", assistant_id, exc)

    async def _on_data_changed(self, topic: str, payload: Any) -> None:
        for assistant_id in touched(payload, self.data_root / "assistants"):
            if assistant_id in self._workers or (self.settings.autostart
                                                  and self.has_code(assistant_id)):
                self._spawn(self.restart(assistant_id))

    async def _on_assistant_changed(self, topic: str, payload: Any) -> None:
        """Deleted: its worker ends now. Updated (grants, model): a fresh worker next time."""
        assistant_id = payload.get("id") if isinstance(payload, dict) else None
        if not isinstance(assistant_id, str) or assistant_id not in self._workers:
            return
        if topic == ASSISTANT_DELETED:
            await self.end(assistant_id, f"assistant '{assistant_id}' was deleted")
        else:
            self._spawn(self.restart(assistant_id))

    async def close(self) -> None:
        self._closed = True
        for watch in self._watches:
            watch.dispose()
        for task in list(self._tasks):
            task.cancel()
        self.subscriptions.drop_all()
        workers, self._workers = list(self._workers.values()), {}
        await asyncio.gather(*(w.stop() for w in workers), return_exceptions=True)
