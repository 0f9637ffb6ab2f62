"""Hot reload: watch folders, debounce, reconcile with a rescan of the disk.

Watch events are only a hint that "this area changed": every batch triggers a full rescan,
compared with what is loaded by manifest and file fingerprint, so a missed event is caught by
the next one. Extension reload keeps the old version serving until the new one has imported;
requests that arrive mid-reload wait for it (see ``app.Router``).
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import watchfiles

from jan.sdk.events import DATA_CHANGED

from .config import load_settings
from .extstate import Record, describe_exception

if TYPE_CHECKING:
    from .runtime import Jan

log = logging.getLogger("jan.host.reload")
IGNORED_SUFFIXES = (".tmp", ".part", ".download", ".lock", ".swp", ".swx", "~")


def fingerprint(folder: Path) -> tuple[tuple[str, int, int], ...]:
    """What a folder's files look like now (name, size, mtime), ignoring caches and temp files."""
    rows = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d != "__pycache__"]
        for name in files:
            if name.startswith(".") or name.endswith(IGNORED_SUFFIXES) or name.endswith(".pyc"):
                continue
            path = os.path.join(root, name)
            try:
                st = os.stat(path)
            except FileNotFoundError:
                continue
            rows.append((os.path.relpath(path, folder), st.st_size, st.st_mtime_ns))
    return tuple(sorted(rows))


class Reloader:
    def __init__(self, jan: Jan, *, watch_bundled: bool, drain_timeout: float = 10.0) -> None:
        self.jan = jan
        self.host = jan.host
        self.watch_bundled = watch_bundled
        self.drain_timeout = drain_timeout
        self.prints: dict[str, tuple] = {}
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self._lock = asyncio.Lock()

    def remember(self) -> None:
        for rec in self.host.records.values():
            self.prints[rec.id] = fingerprint(rec.candidate.folder)

    # ------------------------------------------------------------------ watching
    async def start(self) -> None:
        self.remember()
        data = self.jan.data_folder
        areas = {data / "extensions": "extensions", data / "assistants": "assistants",
                 data / "models": "models"}
        if self.watch_bundled and self.host.bundled is not None:
            areas[self.host.bundled] = "extensions"
        self._tasks.append(asyncio.create_task(self._watch(areas, recursive=True)))
        self._tasks.append(asyncio.create_task(self._watch({data: "settings"}, recursive=False)))

    async def stop(self) -> None:
        self._stop.set()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _watch(self, areas: dict[Path, str], *, recursive: bool) -> None:
        paths = [p for p in areas if p.exists()]

        def keep(change: watchfiles.Change, path: str) -> bool:
            name = os.path.basename(path)
            if not recursive:
                return name == "settings.json"
            return not name.endswith(IGNORED_SUFFIXES) and "__pycache__" not in path

        async for changes in watchfiles.awatch(*paths, watch_filter=keep, debounce=150, step=20,
                                               recursive=recursive, stop_event=self._stop):
            touched: dict[str, list[str]] = {}
            for _, path in changes:
                for root, area in areas.items():
                    if Path(path).is_relative_to(root):
                        touched.setdefault(area, []).append(path)
            try:
                await self.handle(touched)
            except Exception:
                log.exception("reconciling %s failed", sorted(touched))

    async def handle(self, touched: dict[str, list[str]]) -> None:
        if "settings" in touched:
            await self.apply_settings()
        if "extensions" in touched:
            await self.reconcile_extensions()
        for area in ("models", "assistants"):  # their owners (models, sandbox) listen for this
            if area in touched:
                await self.host.bus.emit(DATA_CHANGED, {"area": area, "paths": touched[area]})

    # ------------------------------------------------------------------ reconciling
    async def apply_settings(self) -> None:
        """settings.json changed: provider choice, enable/disable take effect now."""
        new = load_settings(self.jan.data_folder)
        old = self.host.settings
        self.host.settings = self.jan.settings = new
        for ext_id in set(new.disabled_extensions) - set(old.disabled_extensions):
            await self.host.deactivate(ext_id, reason="disabled in settings.json")
        for ext_id, rec in list(self.host.records.items()):  # its own settings changed
            if rec.state == "active" and old.extensions.get(ext_id) != new.extensions.get(ext_id):
                await self.host.deactivate(ext_id)
        await self.reconcile_extensions()

    async def reconcile_extensions(self) -> None:
        async with self._lock:
            found = self.host.scan()
            records = self.host.records
            for ext_id in [i for i in records if i not in found]:
                await self.host.deactivate(ext_id, reason="uninstalled")
                del records[ext_id]
                self.prints.pop(ext_id, None)
            changed: list[str] = []
            for ext_id, cand in found.items():
                rec = records.get(ext_id)
                now = fingerprint(cand.folder)
                if rec is None:
                    records[ext_id] = Record(cand)
                elif rec.candidate.folder != cand.folder or self.prints.get(ext_id) != now:
                    changed.append(ext_id)
                self.prints[ext_id] = now
            for ext_id in changed:
                await self.reload(ext_id, found[ext_id])
            await self._activate_pending()

    async def _activate_pending(self) -> None:
        for ext_id in self.host.plan():
            rec = self.host.records[ext_id]
            if rec.state == "inactive" and self.host.wants_startup(rec):
                await self.host.activate(ext_id)

    async def reload(self, ext_id: str, candidate: Any) -> bool:
        """Swap ``ext_id`` to the code now on disk; keep the old one serving if it fails."""
        rec = self.host.records[ext_id]
        if rec.state != "active":
            rec.candidate = candidate
            rec.reset()
            return False
        old_candidate = rec.candidate
        rec.candidate = candidate
        try:
            instance, package = self.host.instantiate(rec)
        except BaseException as exc:  # noqa: BLE001 - a broken edit must not stop serving
            rec.candidate = old_candidate
            rec.reason = ("reload failed, still serving the previous version: "
                          f"{describe_exception(exc)}")
            log.error("extension %s: %s", ext_id, rec.reason, extra={"extension": ext_id})
            return False
        rec.begin_reload()
        dependents: list[str] = []
        try:
            await self._drain(rec)
            dependents = self.host.dependents(ext_id)
            for dep in dependents:
                await self.host.deactivate(dep, reason=f"reloading '{ext_id}'")
            old_instance, old_package = rec.instance, rec.package
            await self.host.stop_instance(rec)
            ok = await self.host.start_instance(rec, instance, package)
            if not ok:
                # Activate the previous instance again (its modules are still in memory).
                reason = rec.reason
                rec.candidate = old_candidate
                if await self.host.start_instance(rec, old_instance, old_package or package):
                    rec.reason = f"reload failed, still serving the previous version: {reason}"
                else:
                    rec.reason = f"reload failed and the previous version failed too: {reason}"
            if ok:
                log.info("extension %s reloaded (version %s)", ext_id, rec.manifest.version,
                         extra={"extension": ext_id})
            else:
                log.error("extension %s: %s", ext_id, rec.reason, extra={"extension": ext_id})
            return ok
        finally:
            rec.end_reload()
            for dep in dependents:
                await self.host.activate(dep)

    async def _drain(self, rec: Record) -> None:
        deadline = asyncio.get_running_loop().time() + self.drain_timeout
        while rec.inflight > 0 and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.02)
