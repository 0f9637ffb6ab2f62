"""``jan models pull``: fetch a catalogue entry (or a URL) and make it a model folder.

New models are downloaded into a hidden ``models/.pull-<id>/`` folder (kept across attempts so
an interrupted download resumes) and renamed to ``models/<id>/`` only when every file is
complete and verified. A ``model.json`` already in ``models/`` without its binary is
completed in place: its file appears under its real name only once verified.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from jan.sdk import NotFound, check_id
from jan.sdk.models import ModelFile
from jan.sdk.services import ModelEntry
from jan.sdk.storage import atomic_write_json

from . import catalog
from .download import DownloadFailed, Progress, download
from .importer import (
    DEFAULT_CTX,
    ImportFailed,
    build_model_json,
    describe,
    publish,
    read_complete,
    slugify,
)
from .registry import ModelsRegistry

ProgressFactory = Callable[[str], Progress | None]


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """One pull per target at a time (across processes): a second one fails fast.

    Only the holder removes the lock file, and a lock taken on a file that was meanwhile
    unlinked does not count (the inode check), so two pulls can never both proceed.
    """
    busy = DownloadFailed(f"another download into {lock_path.stem} is running")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    held = False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise busy from None
        try:
            same = os.fstat(fd).st_ino == os.stat(lock_path).st_ino
        except FileNotFoundError:
            same = False
        if not same:
            raise busy
        held = True
        yield
    finally:
        if held:
            with contextlib.suppress(OSError):
                lock_path.unlink()
        os.close(fd)


def _sources(model: ModelFile) -> list[dict[str, Any]]:
    out = []
    for source in model.sources:
        if not source.url:
            raise DownloadFailed(f"model '{model.id}' has a source without a url")
        url = catalog.direct_url(source.url)
        filename = Path(source.filename or catalog.filename_from_url(url)).name
        out.append({"url": url, "filename": filename, "size": source.size,
                    "sha256": source.sha256})
    if not out:
        raise DownloadFailed(f"model '{model.id}' has no sources to download")
    return out


async def _fetch_all(sources: list[dict[str, Any]], folder: Path,
                     progress: ProgressFactory | None, client: httpx.AsyncClient | None) -> None:
    for src in sources:
        target = folder / src["filename"]
        if target.is_file():
            continue
        await download(src["url"], target, size=src["size"], sha256=src["sha256"],
                       progress=progress(src["filename"]) if progress else None, client=client)


def _completed_json(model: ModelFile, model_id: str, gguf: Path) -> dict[str, Any]:
    """The catalogue's ``model.json`` with whatever it left out filled from the GGUF."""
    info = read_complete(gguf)
    data = model.to_file()
    data["id"] = model_id
    data["created"] = data.get("created") or int(time.time())
    data["metadata"] = {**describe(info), **(data.get("metadata") or {})}
    settings = data.setdefault("settings", {})
    if not settings.get("ctx_len"):
        settings["ctx_len"] = min(info.context_length or DEFAULT_CTX, DEFAULT_CTX)
    params = data.setdefault("parameters", {})
    if not params.get("stop") and info.eos_token:
        params["stop"] = [info.eos_token]
    for key in ("settings", "parameters"):
        data[key] = {k: v for k, v in data[key].items() if v is not None}
    return data


async def pull(registry: ModelsRegistry, ref: str, *, progress: ProgressFactory | None = None,
               client: httpx.AsyncClient | None = None, ctx: Any = None,
               ) -> tuple[ModelEntry, bool]:
    """Download ``ref`` (a model id or an http(s) URL). Returns ``(entry, fetched)``;
    ``fetched`` is False when the model was already there."""
    await registry.rescan()
    existing = registry.cached()
    if catalog.is_url(ref):
        url = catalog.direct_url(ref)
        for entry in existing:  # pulling the same URL twice is a no-op, not a copy
            if entry.downloaded and entry.sources and entry.sources[0].url == url:
                return entry, False
        return await _pull_new(registry, None, url, progress, client), True
    entry = next((e for e in existing if e.id == ref), None)
    if entry is not None:
        if entry.downloaded:
            return entry, False
        return await _pull_in_place(registry, entry, progress, client), True
    model = catalog.find(ref, ctx)
    if model is None:
        raise NotFound(f"Unknown model '{ref}': it is neither in models/ nor in the catalogue "
                       "(see `jan models list --catalog`); you can also pass a URL",
                       param="model", code="model_not_found")
    return await _pull_new(registry, model, None, progress, client), True


async def _pull_new(registry: ModelsRegistry, model: ModelFile | None, url: str | None,
                    progress: ProgressFactory | None, client: httpx.AsyncClient | None
                    ) -> ModelEntry:
    if model is None:
        filename = catalog.filename_from_url(url or "")
        if not filename:
            raise DownloadFailed(f"{url}: no file name in this URL")
        base = slugify(Path(filename).stem)
        sources = [{"url": url, "filename": filename, "size": None, "sha256": None}]
    else:
        base = check_id(model.id, what="model")
        sources = _sources(model)
    models_dir = registry.dir
    stage = models_dir / f".pull-{base}"
    with _exclusive(models_dir / f".pull-{base}.lock"):
        stage.mkdir(exist_ok=True)
        try:
            await _fetch_all(sources, stage, progress, client)
        except BaseException:
            if not any(f.stat().st_size for f in stage.iterdir() if f.is_file()):
                shutil.rmtree(stage, ignore_errors=True)  # nothing worth resuming
            raise
        first = stage / sources[0]["filename"]
        try:
            if model is None:
                data = build_model_json(read_complete(first), base, first.name, url=url)
            else:
                data = _completed_json(model, base, first)
        except ImportFailed:
            shutil.rmtree(stage, ignore_errors=True)  # not a model: don't resume garbage
            raise
        atomic_write_json(stage / "model.json", data)
        final = publish(stage, models_dir, base, {e.id for e in registry.cached()})
    if final != base:
        data["id"] = final
        atomic_write_json(models_dir / final / "model.json", data)
    await registry.rescan()
    return await registry.get(final)


async def _pull_in_place(registry: ModelsRegistry, entry: ModelEntry,
                         progress: ProgressFactory | None, client: httpx.AsyncClient | None
                         ) -> ModelEntry:
    folder = registry.folder(entry.id)
    if folder is None:
        raise NotFound(f"The model '{entry.id}' does not exist", param="model",
                       code="model_not_found")
    sources = _sources(entry)
    with _exclusive(folder.parent / f".pull-{folder.name}.lock"):
        await _fetch_all(sources, folder, progress, client)
        first = folder / sources[0]["filename"]
        try:
            info = read_complete(first)
        except ImportFailed:
            first.unlink(missing_ok=True)
            raise
        manifest = folder / "model.json"
        try:
            data = registry.data.read_json("models", folder.name, "model.json")
            data["metadata"] = {**describe(info), **(data.get("metadata") or {})}
            atomic_write_json(manifest, data)
        except (OSError, ValueError, AttributeError, TypeError):
            pass  # the model works without the extra metadata; never fail a good download
    await registry.rescan()
    return await registry.get(entry.id)
