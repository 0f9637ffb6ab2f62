"""Data-folder primitives: the only way extensions touch files.

A ``Folder`` is confined to one root directory. Every relative path handed to it is checked:
no absolute paths, no ``..``, no NUL bytes, and no symlink that resolves outside the root.
Writes are atomic (temp file + fsync + rename + directory fsync); JSONL appends are whole lines
under a per-file lock, so concurrent writers never interleave and a crash never leaves half a
record that later readers cannot skip.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .errors import ApiError, InvalidRequest

# errno values meaning "the disk cannot take this write": answered 507, never a bare 500.
FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
FAILING_ERRNOS = frozenset({errno.EIO, errno.EROFS})


class InsufficientStorage(ApiError):
    """The data folder's disk is full (or failing): nothing was stored, retry when freed."""

    status = 507
    type = "server_error"
    code = "insufficient_storage"


def storage_error(exc: OSError) -> InsufficientStorage | None:
    """The API error for a disk-full/failing ``OSError``; ``None`` for other errors."""
    if exc.errno in FULL_ERRNOS:
        return InsufficientStorage("The data folder's disk is full: nothing was saved. Free "
                                   "some space and retry.")
    if exc.errno in FAILING_ERRNOS:
        return InsufficientStorage(f"The data folder's disk failed the write "
                                   f"({os.strerror(exc.errno or 0)}): nothing was saved.",
                                   code="storage_failed")
    return None


@contextlib.contextmanager
def disk_errors() -> Iterator[None]:
    """Turn disk-full/failing ``OSError``s raised inside into ``InsufficientStorage`` (507)."""
    try:
        yield
    except OSError as exc:
        err = storage_error(exc)
        if err is None:
            raise
        raise err from exc


_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,199}$")


class UnsafePath(InvalidRequest):
    """A path or id that would escape its folder."""

    code = "invalid_path"


def check_id(value: str, *, what: str = "id") -> str:
    """Return ``value`` if it is safe to use as one path component, else raise ``UnsafePath``.

    Ids become folder names, so they are restricted to letters, digits and ``._@+-``, must not
    start with a dot, and are at most 200 characters.
    """
    if not isinstance(value, str) or not _SAFE_ID.fullmatch(value) or value in {".", ".."}:
        raise UnsafePath(f"Invalid {what}: {value!r}", param=what)
    return value


_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def _lock_for(path: Path) -> threading.Lock:
    key = str(path)
    with _locks_guard:
        lock = _locks.get(key)
        if lock is None:
            lock = _locks[key] = threading.Lock()
        return lock


@contextlib.contextmanager
def file_lock(path: Path, *, create_parent: bool = True) -> Iterator[None]:
    """Hold a lock for ``path`` across threads of this process and across processes (flock).

    With ``create_parent=False`` a missing folder raises ``FileNotFoundError`` instead of being
    recreated, so a writer racing a delete never brings a deleted folder back.
    """
    import fcntl

    with _lock_for(path):
        if create_parent:
            path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = path.with_name(path.name + ".lock")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def fsync_path(path: Path) -> None:
    """Flush a file's (or a directory's entries') data to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    """``os.write`` until everything is written: a short write is not an error by itself, but
    one that makes no progress is (the disk is full)."""
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        if n <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        view = view[n:]


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so readers see the old or the new file, never a mix.

    On a full or failing disk the old file stays as it was and ``InsufficientStorage`` (507)
    is raised.
    """
    with disk_errors():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            try:
                _write_all(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        fsync_path(path.parent)


def dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, ensure_ascii=False, indent=2) + "\n").encode())


def append_line(path: Path, obj: Any, *, create_parent: bool = True,
                only_if: Callable[[], bool] | None = None) -> bool:
    """Append one JSON object as one line, durably, under the file's lock.

    If a previous writer crashed mid-line, the torn tail is terminated first so the new record
    starts on its own line and stays readable. ``only_if`` is checked under the lock (e.g. "the
    thread still exists"); when it fails nothing is written and ``False`` is returned. With
    ``create_parent=False`` a missing folder raises ``FileNotFoundError``.
    """
    line = (dumps(obj) + "\n").encode()
    with disk_errors(), file_lock(path, create_parent=create_parent):
        if only_if is not None and not only_if():
            return False
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                line = b"\n" + line
            try:
                _write_all(fd, line)
                os.fsync(fd)
            except OSError:
                # All or nothing: cut a partly written record off again, so the file ends
                # where the last acknowledged record ended (no torn line, no lost record).
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, size)
                    os.fsync(fd)
                raise
        finally:
            os.close(fd)
        if size == 0:
            fsync_path(path.parent)  # a new file: make its directory entry durable too
    return True


def read_lines(path: Path) -> tuple[list[dict[str, Any]], list[int]]:
    """Parse a JSONL file; return the records and the 1-based numbers of lines that failed."""
    records: list[dict[str, Any]] = []
    bad: list[int] = []
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return records, bad
    for number, line in enumerate(raw.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError:
            bad.append(number)
            continue
        if isinstance(value, dict):
            records.append(value)
        else:
            bad.append(number)
    return records, bad


class Folder:
    """A directory that only hands out paths inside itself."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()

    def path(self, *parts: str) -> Path:
        """Resolve ``parts`` under the root, refusing traversal, absolute paths and escapes."""
        for part in parts:
            if not isinstance(part, str) or not part or "\x00" in part:
                raise UnsafePath(f"Invalid path component: {part!r}", param="path")
            pure = Path(part)
            if pure.is_absolute() or ".." in pure.parts or not pure.parts:
                raise UnsafePath(f"Path escapes the data folder: {part!r}", param="path")
        candidate = self.root.joinpath(*parts)
        resolved = candidate.resolve()
        if resolved != self.root and self.root not in resolved.parents:
            raise UnsafePath(f"Path escapes the data folder: {'/'.join(parts)!r}", param="path")
        return candidate

    def sub(self, *parts: str) -> Folder:
        """A ``Folder`` for a subdirectory (created if missing)."""
        path = self.path(*parts)
        path.mkdir(parents=True, exist_ok=True)
        return Folder(path)

    def exists(self, *parts: str) -> bool:
        return self.path(*parts).exists()

    def read_json(self, *parts: str) -> Any:
        with self.path(*parts).open("rb") as f:
            return json.load(f)

    def write_json(self, *parts: str, value: Any) -> None:
        atomic_write_json(self.path(*parts), value)

    def write_bytes(self, *parts: str, data: bytes) -> None:
        atomic_write_bytes(self.path(*parts), data)

    def append_jsonl(self, *parts: str, value: Any) -> None:
        append_line(self.path(*parts), value)

    def read_jsonl(self, *parts: str) -> tuple[list[dict[str, Any]], list[int]]:
        return read_lines(self.path(*parts))

    def list_dirs(self, *parts: str) -> list[str]:
        """Names of the real (non-symlinked-out, non-hidden) subdirectories, sorted."""
        base = self.path(*parts) if parts else self.root
        if not base.is_dir():
            return []
        names = []
        for entry in os.scandir(base):
            if entry.name.startswith(".") or not entry.is_dir():
                continue
            try:
                self.path(*parts, entry.name)
            except UnsafePath:
                continue
            names.append(entry.name)
        return sorted(names)

    def remove_tree(self, *parts: str) -> None:
        """Delete a subdirectory; the root itself can never be removed this way."""
        if not parts:
            raise UnsafePath("Refusing to remove the data folder itself", param="path")
        target = self.path(*parts)
        if target.resolve() == self.root:
            raise UnsafePath("Refusing to remove the data folder itself", param="path")
        if target.is_symlink() or target.is_file():
            target.unlink()
        elif target.exists():
            # Move aside first so a crash mid-delete never leaves a half-deleted live folder.
            trash = target.with_name(f".{target.name}.deleting")
            os.replace(target, trash)
            shutil.rmtree(trash, ignore_errors=True)
