"""Turn a GGUF file into a model folder: ``models/<id>/model.json`` (+ the file, or a link to it).

Every import is staged in a hidden folder inside ``models/`` (the registry ignores hidden
folders) and renamed into place as the last step, so a failure leaves nothing half-made and a
reader never sees a folder without its ``model.json``.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

from jan.sdk import InvalidRequest, check_id
from jan.sdk.models import ModelFile
from jan.sdk.storage import atomic_write_json

from .gguf import GGUFError, GGUFInfo, read_gguf

DEFAULT_CTX = 4096
PARTIAL_SUFFIXES = (".download", ".part", ".partial", ".tmp", ".crdownload")


class ImportFailed(InvalidRequest):
    """A file could not be imported; the message is meant for the user.

    An ``ApiError`` so that callers holding another generation of this module (the CLI host
    collects commands from one instance and runs them with another) can still catch it."""

    code = "invalid_model_file"


def slugify(text: str, *, fallback: str = "model") -> str:
    """A folder-safe, lower-case id derived from ``text`` (``jan.sdk.check_id`` accepts it)."""
    slug = re.sub(r"[^a-z0-9.@+-]+", "-", text.lower())
    slug = re.sub(r"-{2,}", "-", slug).strip("-.")[:180].rstrip("-.")
    return slug or fallback


def unique_id(models_dir: Path, base: str, taken: set[str] | frozenset[str] = frozenset()) -> str:
    """``base``, else ``base-1``, ``base-2``... the first that is neither a folder nor taken."""
    check_id(base, what="model")
    candidate, n = base, 0
    while candidate in taken or (models_dir / candidate).exists():
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def describe(info: GGUFInfo) -> dict[str, Any]:
    """The GGUF facts worth keeping in ``model.json`` ``metadata``."""
    meta = {
        "architecture": info.architecture,
        "context_length": info.context_length,
        "size": info.file_size,
        "quantization": info.quantization,
        "gguf_name": info.name,
        "size_label": info.get("general.size_label"),
        "chat_template": info.chat_template,
        "eos_token": info.eos_token,
        "bos_token": info.bos_token,
    }
    return {k: v for k, v in meta.items() if v is not None}


def build_model_json(info: GGUFInfo, model_id: str, filename: str, *,
                     link: Path | None = None, url: str | None = None,
                     name: str | None = None) -> dict[str, Any]:
    """A Jan ``model.json`` for ``info``: sane load settings, the true limits in metadata."""
    ctx = min(info.context_length or DEFAULT_CTX, DEFAULT_CTX)
    settings: dict[str, Any] = {"ctx_len": ctx}
    if link is not None:
        settings["llama_model_path"] = str(link)
    parameters: dict[str, Any] = {"temperature": 0.7, "top_p": 0.95}
    if info.eos_token:
        parameters["stop"] = [info.eos_token]
    model = ModelFile(
        id=model_id, name=name or Path(filename).stem, created=int(time.time()),
        sources=[{"filename": filename, "url": url or (link.as_uri() if link else None)}],
        settings=settings, parameters=parameters, metadata=describe(info),
        description=f"Imported from {filename}",
    )
    data = model.to_file()
    data["settings"] = {k: v for k, v in data["settings"].items() if v is not None}
    data["parameters"] = {k: v for k, v in data["parameters"].items() if v is not None}
    return data


def read_complete(path: Path) -> GGUFInfo:
    """Read ``path`` as a complete GGUF file or raise ``ImportFailed`` saying why not."""
    try:
        info = read_gguf(path)
    except FileNotFoundError:
        raise ImportFailed(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ImportFailed(f"{path}: is a folder, not a GGUF file") from None
    except (OSError, ValueError) as exc:  # GGUFError is a ValueError; mmap of empty files too
        detail = str(exc) if isinstance(exc, GGUFError) else exc.strerror or str(exc)
        raise ImportFailed(f"{path}: cannot be imported: {detail}") from None
    if info.complete is False:
        raise ImportFailed(f"{path}: the GGUF file is incomplete ({info.file_size} of "
                           f"{info.expected_size()} bytes)")
    return info


def _stage(models_dir: Path) -> Path:
    stage = models_dir / f".import-{uuid.uuid4().hex[:12]}"
    stage.mkdir(parents=True)
    return stage


def publish(stage: Path, models_dir: Path, base: str, taken: set[str]) -> str:
    """Rename ``stage`` to the first free ``models/<base>[-n]``; returns the id used."""
    for _ in range(1000):
        model_id = unique_id(models_dir, base, taken)
        try:
            os.rename(stage, models_dir / model_id)
        except OSError:  # lost a race for that name (the target appeared meanwhile)
            taken = set(taken) | {model_id}
            continue
        return model_id
    raise ImportFailed(f"no free model id for {base!r}")


def import_file(models_dir: Path, src: Path, *, link: bool = False, move: bool = False,
                model_id: str | None = None, taken: set[str] | None = None,
                url: str | None = None) -> str:
    """Import ``src`` into ``models_dir`` and return the new model's id.

    ``link`` references ``src`` by absolute path, ``move`` renames it in (drop-ins), otherwise
    it is copied. The id defaults to the file name; clashes get ``-1``, ``-2``...
    """
    src = Path(src).expanduser().absolute()
    info = read_complete(src)
    base = check_id(model_id, what="id") if model_id else slugify(src.stem)
    taken = set(taken or ())
    provisional = unique_id(models_dir, base, taken)
    stage = _stage(models_dir)
    dest = stage / src.name
    try:
        if link:
            target = src.resolve()
        elif move:
            os.rename(src, dest)
            target = None
        else:
            shutil.copyfile(src, dest)
            target = None
        data = build_model_json(info, provisional, src.name, link=target, url=url)
        atomic_write_json(stage / "model.json", data)
        final = publish(stage, models_dir, base, taken)
    except BaseException:
        if move and dest.exists():
            with contextlib.suppress(OSError):
                os.rename(dest, src)  # give the user's file back where it was
        shutil.rmtree(stage, ignore_errors=True)
        raise
    if final != provisional:  # somebody took the provisional id between check and rename
        data["id"] = final
        atomic_write_json(models_dir / final / "model.json", data)
    return final


def adopt_folder(folder: Path, gguf: Path) -> None:
    """Write ``model.json`` for a folder that holds a GGUF file but no ``model.json``."""
    info = read_complete(gguf)
    data = build_model_json(info, folder.name, gguf.name)
    atomic_write_json(folder / "model.json", data)


def candidate_files(models_dir: Path) -> list[Path]:
    """Loose ``*.gguf`` files directly in ``models/`` (not partial downloads, not hidden)."""
    if not models_dir.is_dir():
        return []
    found = []
    for entry in os.scandir(models_dir):
        name = entry.name
        if name.startswith(".") or not name.lower().endswith(".gguf"):
            continue
        if name.lower().endswith(PARTIAL_SUFFIXES) or not entry.is_file():
            continue
        found.append(Path(entry.path))
    return sorted(found)


class DropInWatch:
    """Decides when a file dropped into ``models/`` is complete enough to import.

    A file counts as ready when its tensor data is all there (computed from the GGUF header),
    or, for tensor types we cannot size, when its size and mtime did not change between two
    scans at least ``settle`` seconds apart. Unreadable files are reported once, not retried.
    """

    def __init__(self, settle: float = 2.0) -> None:
        self.settle = settle
        self._seen: dict[Path, tuple[int, int, float]] = {}
        self._reported: dict[Path, tuple[int, int]] = {}

    def check(self, path: Path) -> tuple[str, str]:
        """``("ready"|"wait"|"bad", reason)`` for ``path``."""
        try:
            st = path.stat()
        except OSError:
            return "wait", "vanished"
        stamp = (st.st_size, st.st_mtime_ns)
        now = time.time()
        first = self._seen.get(path)
        stable = first is not None and first[:2] == stamp and now - first[2] >= self.settle
        if first is None or first[:2] != stamp:
            self._seen[path] = (*stamp, now)
        young = now - st.st_mtime < 30
        try:
            info = read_gguf(path)
        except (OSError, ValueError) as exc:
            if young and not stable:
                return "wait", f"not readable yet ({exc})"
            return self._bad(path, stamp, f"not a readable GGUF file: {exc}")
        complete = info.complete
        if complete is True or (complete is None and stable):
            return "ready", "complete"
        if complete is False and stable and not young:
            return self._bad(path, stamp, f"incomplete GGUF file ({info.file_size} of "
                                          f"{info.expected_size()} bytes)")
        return "wait", "still being written"

    def _bad(self, path: Path, stamp: tuple[int, int], reason: str) -> tuple[str, str]:
        if self._reported.get(path) == stamp:
            return "bad-known", reason
        self._reported[path] = stamp
        return "bad", reason

    def forget(self, path: Path) -> None:
        self._seen.pop(path, None)
        self._reported.pop(path, None)


def same_content(a: Path, b: Path, probe: int = 1 << 20) -> bool:
    """Whether two GGUF files are the same: the same inode, or the same size and the same
    first and last MiB (a full hash of gigabytes would make every import slow)."""
    try:
        if a.samefile(b):
            return True
        size = a.stat().st_size
        if size != b.stat().st_size:
            return False
        with a.open("rb") as fa, b.open("rb") as fb:
            if fa.read(probe) != fb.read(probe):
                return False
            fa.seek(max(0, size - probe))
            fb.seek(max(0, size - probe))
            return fa.read(probe) == fb.read(probe)
    except OSError:
        return False


def already_imported(entries: list[Any], src: Path) -> str | None:
    """The id of a model whose file is ``src`` (or a copy of it), if any."""
    for entry in entries:
        binary = getattr(entry, "binary", None)
        if binary and same_content(Path(binary), src):
            return entry.id
    return None
