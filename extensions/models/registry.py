"""The ``models`` service: ``jan.sdk.services.ModelRegistry`` over ``models/<id>/model.json``.

The folder name is the default id (``model.json`` may say otherwise); a ``model.json`` whose
binary is missing is a catalogue entry (``downloaded: false``). Parsed entries are cached and
refreshed by ``rescan()``, which also imports GGUF files dropped straight into ``models/`` and
notices folders that appeared or disappeared (``model.added`` / ``model.removed``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jan.sdk import InvalidRequest, NotFound
from jan.sdk.events import MODEL_ADDED, MODEL_REMOVED
from jan.sdk.inference import REMOTE_INFERENCE, LoadSpec, is_remote_engine
from jan.sdk.services import ModelCatalog, ModelEntry
from jan.sdk.storage import Folder

from .bounds import budget_bytes
from .importer import DropInWatch, ImportFailed, adopt_folder, candidate_files, import_file
from .spec import GGUFCache, build_spec, engine_defaults, resolve_binary

DEFAULT_MODEL_ID = "smollm2-135m-instruct"
Spawn = Callable[[Coroutine[Any, Any, Any]], Any]


@dataclass
class ScanResult:
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    imported: list[str] = field(default_factory=list)
    pending: bool = False


class ModelsRegistry:
    """Implements ``ModelRegistry``; one instance per activation."""

    def __init__(self, data: Folder, *, log: logging.Logger | None = None, events: Any = None,
                 services: Any = None, spawn: Spawn | None = None,
                 settings: Mapping[str, Any] | None = None,
                 host_settings: Mapping[str, Any] | None = None) -> None:
        self.data = data
        self.dir = data.sub("models").root
        self.log = log or logging.getLogger("jan.ext.models")
        self.events, self.services, self.spawn = events, services, spawn
        self.settings = settings if settings is not None else {}
        self.host_settings = host_settings if host_settings is not None else {}
        self.gguf = GGUFCache()
        self.dropins = DropInWatch(settle=float(self.settings.get("settle_seconds", 2.0)))
        self._entries: dict[str, ModelEntry] = {}
        self._folders: dict[str, str] = {}
        self._parsed: dict[str, tuple[tuple[int, int], ModelEntry | None]] = {}
        self.scan_lock = threading.Lock()
        self._lock = asyncio.Lock()
        self._queued = False
        self._retry: Any = None
        self.last_scan = 0.0

    # ------------------------------------------------------------------ scanning (sync)
    def scan_sync(self) -> ScanResult:
        """Import drop-ins, re-read every folder, and swap in the new view. Thread-safe."""
        with self.scan_lock:
            result = ScanResult()
            if self.settings.get("auto_import", True):
                self._import_dropins(result)
            entries: dict[str, ModelEntry] = {}
            folders: dict[str, str] = {}
            names = self.data.list_dirs("models")
            for name in names:
                entry = self._load_folder(name, result)
                if entry is None:
                    continue
                if entry.id in entries:
                    self.log.warning("models/%s: id '%s' is already used by models/%s; skipped",
                                     name, entry.id, folders[entry.id])
                    continue
                entries[entry.id], folders[entry.id] = entry, name
            self._parsed = {k: v for k, v in self._parsed.items() if k in names}
            result.added = sorted(set(entries) - set(self._entries))
            result.removed = sorted(set(self._entries) - set(entries))
            self._entries, self._folders = entries, folders
            self.last_scan = time.monotonic()
            return result

    def _import_dropins(self, result: ScanResult) -> None:
        for path in candidate_files(self.dir):
            status, reason = self.dropins.check(path)
            if status == "wait":
                result.pending = True
            elif status == "bad":
                self.log.error("cannot import models/%s: %s", path.name, reason)
            elif status == "ready":
                try:
                    model_id = import_file(self.dir, path, move=True, taken=set(self._entries))
                except (ImportFailed, OSError) as exc:
                    self.log.error("cannot import models/%s: %s", path.name, exc)
                    continue
                self.dropins.forget(path)
                result.imported.append(model_id)
                self.log.info("imported models/%s as model '%s'", path.name, model_id)

    def _load_folder(self, name: str, result: ScanResult) -> ModelEntry | None:
        folder = self.dir / name
        manifest = folder / "model.json"
        try:
            st = manifest.stat()
        except FileNotFoundError:
            if not self._adopt(folder, result):
                return None
            st = manifest.stat()
        except OSError as exc:
            self.log.warning("skipping models/%s: %s", name, exc)
            return None
        stamp = (st.st_mtime_ns, st.st_size)
        cached = self._parsed.get(name)
        if cached is not None and cached[0] == stamp:
            entry = cached[1]
        else:
            entry = self._parse(name, manifest, int(st.st_mtime))
            self._parsed[name] = (stamp, entry)
        if entry is None:
            return None
        return entry.model_copy(update={"binary": resolve_binary(folder, entry)})

    def _parse(self, name: str, manifest: Path, mtime: int) -> ModelEntry | None:
        try:
            raw = json.loads(manifest.read_bytes())
            if not isinstance(raw, dict):
                raise ValueError("model.json must hold a JSON object")
            if not raw.get("id"):
                raw["id"] = name
            entry = ModelEntry.model_validate(raw)
        except (OSError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            self.log.warning("skipping models/%s/model.json: %s", name, first)
            return None
        if entry.created is None:
            entry.created = mtime
        return entry

    def _adopt(self, folder: Path, result: ScanResult) -> bool:
        """A folder with a GGUF but no ``model.json`` gets one generated in place."""
        if not self.settings.get("auto_import", True):
            return False
        ggufs = sorted(p for p in folder.glob("*.gguf") if p.is_file())
        if not ggufs:
            return False
        status, reason = self.dropins.check(ggufs[0])
        if status == "wait":
            result.pending = True
        if status != "ready":
            if status == "bad":
                self.log.error("cannot import models/%s/%s: %s", folder.name, ggufs[0].name,
                               reason)
            return False
        try:
            adopt_folder(folder, ggufs[0])
        except (ImportFailed, OSError) as exc:
            self.log.error("cannot import models/%s: %s", folder.name, exc)
            return False
        result.imported.append(folder.name)
        return True

    # ------------------------------------------------------------------ scanning (async)
    async def rescan(self) -> ScanResult:
        """Re-read the models folder; emit ``model.added``/``model.removed`` for changes."""
        async with self._lock:
            self._queued = False
            result = await asyncio.to_thread(self.scan_sync)
        await self._announce(result)
        if result.pending:
            self._schedule_retry()
        return result

    async def request_rescan(self) -> None:
        """Coalesce bursts of change notifications into one pending scan."""
        if self._queued:
            return
        self._queued = True
        await self.rescan()

    async def _announce(self, result: ScanResult) -> None:
        for model_id in result.removed:
            await self._unload(model_id)
            await self._emit(MODEL_REMOVED, {"id": model_id})
        for model_id in result.added:
            entry = self._entries.get(model_id)
            await self._emit(MODEL_ADDED, {"id": model_id,
                                           "downloaded": bool(entry and entry.downloaded)})

    def _schedule_retry(self) -> None:
        if self.spawn is None or (self._retry is not None and not self._retry.done()):
            return

        async def later() -> None:
            await asyncio.sleep(self.dropins.settle)
            await self.rescan()

        self._retry = self.spawn(later())

    async def _emit(self, topic: str, payload: dict[str, Any]) -> None:
        if self.events is not None:
            await self.events.emit(topic, payload)

    async def _unload(self, model_id: str) -> None:
        """Stop the model's runner if the ``inference`` service is there (best effort)."""
        if self.services is None:
            return
        try:
            engine = self.services.get("inference")
        except Exception:  # noqa: BLE001 - no engine (e.g. a CLI host): nothing is loaded
            return
        try:
            await engine.unload(model_id)
        except Exception as exc:  # noqa: BLE001 - deleting must not fail on a dying runner
            self.log.warning("could not unload %s: %s", model_id, exc)

    # ------------------------------------------------------------------ ModelRegistry
    async def list(self) -> list[ModelEntry]:
        refresh = float(self.settings.get("refresh_seconds", 2.0))
        if time.monotonic() - self.last_scan > refresh:
            await self.rescan()
        remote = [e for e in self._remote_entries() if e.id not in self._entries]
        return [self._entries[k] for k in sorted(self._entries)] + remote

    async def get(self, model_id: str) -> ModelEntry:
        entry = self._entries.get(model_id)
        if entry is None and time.monotonic() - self.last_scan > 0.25:
            await self.rescan()  # it may have appeared since (another process, a copy)
            entry = self._entries.get(model_id)
        if entry is None:
            entry = next((e for e in self._remote_entries() if e.id == model_id), None)
        if entry is None:
            raise NotFound(f"The model '{model_id}' does not exist", param="model",
                           code="model_not_found")
        return entry

    def _remote_entries(self) -> list[ModelEntry]:
        """Models a remote engine serves without a ``model.json`` (discovered or listed in
        its provider file); none when no remote engine runs."""
        if self.services is None or not self.services.providers(REMOTE_INFERENCE):
            return []
        try:
            remote = self.services.get(REMOTE_INFERENCE)
            return remote.catalog() if isinstance(remote, ModelCatalog) else []
        except Exception as exc:  # noqa: BLE001 - a broken engine must not hide local models
            self.log.warning("remote models unavailable: %s", exc)
            return []

    async def delete(self, model_id: str) -> None:
        """Stop and delete the model's folder; a linked model's external file is kept."""
        entry = await self.get(model_id)
        folder = self._folders.get(entry.id)
        if folder is None:
            raise InvalidRequest(f"model '{model_id}' is served by the remote engine "
                                 f"'{entry.engine}', not stored here: edit or remove "
                                 f"engines/{entry.engine}.json instead", param="model")
        await self._unload(entry.id)
        async with self._lock:
            await asyncio.to_thread(self._remove, entry.id, folder)
        await self._emit(MODEL_REMOVED, {"id": entry.id})

    def _remove(self, model_id: str, folder: str) -> None:
        with self.scan_lock:
            self.data.remove_tree("models", folder)
            self._entries.pop(model_id, None)
            self._folders.pop(model_id, None)
            self._parsed.pop(folder, None)

    def load_spec(self, entry: ModelEntry, overrides: dict[str, Any] | None = None) -> LoadSpec:
        if is_remote_engine(entry.engine):  # no local engine settings apply (and no file read)
            return build_spec(entry, {}, overrides, self.gguf)
        defaults = engine_defaults(self.data.root / "engines", entry.engine, self.log)
        return build_spec(entry, defaults, overrides, self.gguf,
                          budget=budget_bytes(self.host_settings))

    async def default_model(self) -> str | None:
        for source in (self.host_settings, self.settings):
            configured = source.get("default_model")
            if isinstance(configured, str) and configured:
                return configured
        entries = await self.list()
        preferred = self._entries.get(DEFAULT_MODEL_ID)
        if preferred is not None and preferred.downloaded:
            return preferred.id
        return next((e.id for e in entries if e.downloaded), None)

    # ------------------------------------------------------------------ extras
    def folder(self, model_id: str) -> Path | None:
        name = self._folders.get(model_id)
        return self.dir / name if name else None

    def cached(self) -> list[ModelEntry]:
        return [self._entries[k] for k in sorted(self._entries)]

    async def import_path(self, src: str | Path, *, link: bool = False,
                          model_id: str | None = None) -> ModelEntry:
        """``jan models import``: copy (or link) a GGUF file in; returns the new entry."""
        def run() -> str:
            with self.scan_lock:
                return import_file(self.dir, Path(src), link=link, model_id=model_id,
                                   taken=set(self._entries))

        async with self._lock:
            new_id = await asyncio.to_thread(run)
        await self.rescan()
        return await self.get(new_id)
