"""The order of threads (by ``created``, ties by id), without reading every ``thread.json``.

The folder listing is the truth: the index is a sorted list kept in memory, checked against the
``threads/`` directory whenever its (mtime, link count) changes, and reading ``thread.json`` only
for folders it has not seen. A snapshot in the extension's storage makes a restart cheap; a
missing, stale or corrupt snapshot only costs one rebuild.
"""

from __future__ import annotations

import bisect
import contextlib
import json
import logging
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from jan.sdk.openai_shapes import cursor_window
from jan.sdk.storage import UnsafePath, atomic_write_bytes, check_id

SNAPSHOT_AFTER = 100  # write a snapshot once a refresh had to read this many thread.json files


class ThreadIndex:
    def __init__(
        self, root: Path, snapshot: Path | None, created_of: Callable[[str], int | None],
        log: logging.Logger,
    ) -> None:
        self.root, self.snapshot, self.created_of, self.log = root, snapshot, created_of, log
        self.lock = threading.Lock()
        self.entries: list[tuple[int, str]] = []  # ascending (created, id)
        self.created: dict[str, int] = {}
        self.pending: set[str] = set()  # folders without a thread file yet: checked each time
        self.sig: tuple[int, int] | None = None
        self.loaded = False
        self.dirty = False

    # ------------------------------------------------------------------ upkeep
    def _load_snapshot(self) -> None:
        self.loaded = True
        if self.snapshot is None or not self.snapshot.is_file():
            return
        try:
            data = json.loads(self.snapshot.read_bytes())
            pairs = [(int(c), str(i)) for c, i in data["entries"]]
        except (ValueError, KeyError, TypeError) as exc:
            self.log.warning("thread index snapshot unreadable, rebuilding: %s", exc)
            return
        self.created = dict((i, c) for c, i in pairs)
        self.entries = sorted((c, i) for i, c in self.created.items())

    def _names(self) -> set[str]:
        names = set()
        with os.scandir(self.root) as it:
            for entry in it:
                if entry.name[0] == "." or not entry.is_dir(follow_symlinks=False):
                    continue
                try:
                    names.add(check_id(entry.name))
                except UnsafePath:  # a folder no API id can name: not a thread
                    continue
        return names

    def _signature(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.root)
        except FileNotFoundError:
            return None
        return st.st_mtime_ns, st.st_nlink

    @contextlib.contextmanager
    def own_change(self, links: int) -> Iterator[None]:
        """Wrap our own mkdir/rmdir of one thread folder, so it costs no folder rescan.

        If the directory's link count moved by exactly our change and nothing else had
        changed before, the new signature is adopted; anything else leaves a rescan due.
        """
        before = self._signature()
        yield
        after = self._signature()
        with self.lock:
            if (before is not None and after is not None and before == self.sig
                    and after[1] == before[1] + links):
                self.sig = after

    def refresh(self) -> None:
        """Bring the index in line with the folder listing (cheap when nothing changed)."""
        with self.lock:
            if not self.loaded:
                self._load_snapshot()
            sig = self._signature()
            if sig is not None and sig == self.sig and not self.pending:
                return
            self.sig = sig
            names = self._names() if sig is not None else set()
            gone = [i for i in self.created if i not in names]
            for thread_id in gone:
                self._drop(thread_id)
            fresh = [n for n in names if n not in self.created]
            self.pending.clear()
            for thread_id in fresh:
                created = self.created_of(thread_id)
                if created is None:
                    self.pending.add(thread_id)
                else:
                    self._put(thread_id, created)
            if len(fresh) >= SNAPSHOT_AFTER or (self.dirty and len(gone) >= SNAPSHOT_AFTER):
                self._save()

    def _put(self, thread_id: str, created: int) -> None:
        if thread_id in self.created:
            self._drop(thread_id)
        self.created[thread_id] = created
        bisect.insort(self.entries, (created, thread_id))
        self.dirty = True

    def _drop(self, thread_id: str) -> None:
        created = self.created.pop(thread_id, None)
        if created is None:
            return
        i = bisect.bisect_left(self.entries, (created, thread_id))
        if i < len(self.entries) and self.entries[i] == (created, thread_id):
            del self.entries[i]
        self.dirty = True

    def add(self, thread_id: str, created: int) -> None:
        with self.lock:
            self.pending.discard(thread_id)
            self._put(thread_id, created)

    def remove(self, thread_id: str) -> None:
        with self.lock:
            self._drop(thread_id)

    def _save(self) -> None:
        if self.snapshot is None:
            return
        body = json.dumps({"version": 1, "entries": self.entries}, separators=(",", ":"))
        try:
            atomic_write_bytes(self.snapshot, body.encode())
            self.dirty = False
        except OSError as exc:  # the snapshot is an optimisation: never fail a request for it
            self.log.warning("cannot write thread index snapshot: %s", exc)

    def save(self) -> None:
        with self.lock:
            if self.dirty:
                self._save()

    # ------------------------------------------------------------------ queries
    def window(
        self, *, limit: int, order: str, after: str | None, before: str | None,
    ) -> tuple[list[str], bool]:
        """Thread ids of one page in listing order, and whether more follow."""
        self.refresh()
        with self.lock:
            entries = self.entries

            def position(thread_id: str) -> int | None:
                created = self.created.get(thread_id)
                if created is None:
                    return None
                return bisect.bisect_left(entries, (created, thread_id))

            positions, more = cursor_window(
                len(entries), position, limit=limit, order=order, after=after, before=before)
            return [entries[p][1] for p in positions], more

    def created_pairs(self) -> list[tuple[int, str]]:
        """Every ``(created, id)`` in ascending order (a copy, after a refresh)."""
        self.refresh()
        with self.lock:
            return list(self.entries)

    def __len__(self) -> int:
        return len(self.entries)
