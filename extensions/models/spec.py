"""From a registry entry to a ``LoadSpec``: engine defaults < ``model.json`` settings < overrides.

Whatever ``model.json`` leaves out (chat template, context length, stop token) comes from the
GGUF file's own metadata, read once per file version and cached.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from jan.sdk import InvalidRequest, check_id
from jan.sdk.http import validation_message
from jan.sdk.inference import LoadSpec, is_remote_engine
from jan.sdk.services import ModelEntry
from jan.sdk.storage import UnsafePath

from .bounds import budget_bytes, check_load_spec
from .gguf import GGUFInfo, read_gguf
from .importer import DEFAULT_CTX

DEFAULT_ENGINE = "llama-cpp"
DEFAULT_N_PARALLEL = 4
_SPEC_KEYS = ("ctx_len", "n_parallel", "ngl", "cpu_threads", "embedding", "chat_template",
              "prompt_template", "stop")


class GGUFCache:
    """Parsed GGUF metadata per file, invalidated when the file's size or mtime changes."""

    def __init__(self) -> None:
        self._items: dict[str, tuple[tuple[int, int], GGUFInfo | None]] = {}
        self._lock = threading.Lock()

    def get(self, path: str) -> GGUFInfo | None:
        try:
            st = Path(path).stat()
        except OSError:
            return None
        stamp = (st.st_size, st.st_mtime_ns)
        with self._lock:
            hit = self._items.get(path)
        if hit is not None and hit[0] == stamp:
            return hit[1]
        try:
            info: GGUFInfo | None = read_gguf(path)
        except (OSError, ValueError) as exc:
            logging.getLogger("jan.ext.models").warning("cannot read %s: %s", path, exc)
            info = None
        with self._lock:
            self._items[path] = (stamp, info)
        return info


def engine_defaults(engines_dir: Path, engine: str, log: logging.Logger) -> dict[str, Any]:
    """``engines/<engine>.json`` (else ``engines/llama-cpp.json``): a flat settings object,
    or one nested under ``settings``. A broken file is reported and ignored."""
    names = [DEFAULT_ENGINE]
    try:
        names.insert(0, check_id(engine, what="engine"))
    except UnsafePath:
        pass
    for name in dict.fromkeys(names):
        path = engines_dir / f"{name}.json"
        if not path.is_file():
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            log.warning("ignoring %s: %s", path, exc)
            return {}
        if isinstance(data, dict) and isinstance(data.get("settings"), dict):
            data = data["settings"]
        return data if isinstance(data, dict) else {}
    return {}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def build_spec(entry: ModelEntry, defaults: dict[str, Any], overrides: dict[str, Any] | None,
               gguf: GGUFCache, *, budget: int | None = None) -> LoadSpec:
    """Merge the three layers into a ``LoadSpec`` for ``entry`` (which must be downloaded),
    bounded by the model's trained context and the memory ``budget`` (bytes), else a 400.
    A remote model (its ``engine`` names a provider) gets a spec naming its upstream model."""
    if is_remote_engine(entry.engine):
        upstream = (entry.metadata or {}).get("remote_model")
        return LoadSpec(model_id=entry.id, engine=entry.engine,
                        path=upstream if isinstance(upstream, str) and upstream else entry.id)
    if not entry.binary:
        raise InvalidRequest(
            f"The model '{entry.id}' is not downloaded: run `jan models pull {entry.id}`",
            param="model", code="model_not_downloaded")
    merged: dict[str, Any] = {}
    for layer in (defaults, entry.settings.model_dump(exclude_none=True), overrides or {}):
        merged.update({k: v for k, v in layer.items() if v is not None})
    lazy: dict[str, GGUFInfo | None] = {}

    def info() -> GGUFInfo | None:
        if "info" not in lazy:
            lazy["info"] = gguf.get(entry.binary or "")
        return lazy["info"]

    meta = entry.metadata or {}
    if not _text(merged.get("chat_template")):
        merged["chat_template"] = _text(meta.get("chat_template")) or (
            info().chat_template if info() else None)
    # An explicit ctx_len in a request is checked as given (0 is an error, not "default").
    if not merged.get("ctx_len") and (overrides or {}).get("ctx_len") is None:
        true_ctx = meta.get("context_length") or (info().context_length if info() else None)
        merged["ctx_len"] = min(true_ctx or DEFAULT_CTX, DEFAULT_CTX)
    if not merged.get("stop"):
        eos = _text(meta.get("eos_token")) or (info().eos_token if info() else None)
        merged["stop"] = entry.parameters.stop or ([eos] if eos else [])
    if isinstance(merged.get("stop"), str):
        merged["stop"] = [merged["stop"]]
    merged.setdefault("n_parallel", DEFAULT_N_PARALLEL)
    data = {k: merged[k] for k in _SPEC_KEYS if merged.get(k) is not None}
    try:
        spec = LoadSpec(model_id=entry.id, path=entry.binary, **data)
    except ValidationError as exc:
        message, param = validation_message(exc)
        raise InvalidRequest(f"Model '{entry.id}' has an invalid setting: {message}",
                             param=param) from None
    check_load_spec(spec, info(), budget if budget is not None else budget_bytes({}))
    return spec


def resolve_binary(folder: Path, entry: ModelEntry) -> str | None:
    """Where the weights are: ``settings.llama_model_path`` (absolute for linked models,
    else relative to the folder), else ``sources[0].filename`` in the folder, else the
    folder's first ``*.gguf``. ``None`` when that file does not exist (not downloaded)."""
    configured = entry.settings.llama_model_path
    if configured:
        path = Path(configured).expanduser()
        if not path.is_absolute():
            if ".." in path.parts:
                return None
            path = folder / path
        return str(path) if path.is_file() else None
    first = entry.sources[0].filename if entry.sources else None
    if first:
        path = folder / Path(first).name
        return str(path) if path.is_file() else None
    found = sorted(p for p in folder.glob("*.gguf") if p.is_file())
    return str(found[0]) if found else None
