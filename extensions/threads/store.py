"""``FileThreadStore``: ``threads/<id>/thread.json`` in Jan's format (implements ThreadStore).

``thread.json`` is the truth. A thread whose ``thread.json`` is missing or unreadable but whose
messages exist is still served (recovered from its folder, flagged in ``metadata``) and the
broken file is kept aside on the next write, so a bad edit never blanks a conversation.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ulid import ULID

from jan.sdk import events as ev
from jan.sdk.errors import Conflict, InvalidRequest, NotFound
from jan.sdk.http import parse
from jan.sdk.models import Page, Thread, apply_changes, now_ms
from jan.sdk.openai_shapes import cursor_window, deleted_to_api, thread_to_api
from jan.sdk.storage import Folder, UnsafePath, atomic_write_json, check_id, file_lock

from .index import ThreadIndex

CORRUPT_FLAG = "jan_corrupt_thread_json"
FROZEN = frozenset({"id", "object", "created"})


def created_from_id(thread_id: str) -> int | None:
    """Jan's ``jan_<seconds>`` and our ``thread_<ULID>`` ids carry their creation time."""
    prefix, _, rest = thread_id.partition("_")
    if prefix == "jan" and rest.isdigit():
        value = int(rest)
        return value if value > 100_000_000_000 else value * 1000
    with contextlib.suppress(ValueError):
        return ULID.from_str(rest).milliseconds
    return None


class FileThreadStore:
    ORDER_BY = ("created", "last_activity")  # what ``list(order_by=...)`` accepts

    def __init__(
        self, data: Folder, events: Any = None, log: logging.Logger | None = None,
        index_snapshot: Path | None = None,
    ) -> None:
        self.data = data
        self.root = data.sub("threads").root
        self.events = events
        self.log = log or logging.getLogger("jan.threads")
        self.index = ThreadIndex(self.root, index_snapshot, self._created_of, self.log)
        self._warned: set[tuple[str, int]] = set()

    # ------------------------------------------------------------------ files
    def _dir(self, thread_id: str) -> Path:
        try:
            return self.data.path("threads", check_id(thread_id, what="thread_id"))
        except UnsafePath:
            raise NotFound(f"No thread found with id '{thread_id}'", param="thread_id") from None

    @staticmethod
    def _missing(thread_id: str) -> NotFound:
        return NotFound(f"No thread found with id '{thread_id}'", param="thread_id")

    def _warn_corrupt(self, path: Path, why: str) -> None:
        with contextlib.suppress(OSError):
            key = (str(path), path.stat().st_mtime_ns)
            if key in self._warned:
                return
            self._warned.add(key)
        self.log.warning("%s is %s; serving the thread from its folder", path, why)

    def _load(self, thread_id: str) -> tuple[Thread, str | None]:
        """The thread and, when it had to be recovered, why (``missing``/``unreadable``)."""
        folder = self._dir(thread_id)
        path = folder / "thread.json"
        try:
            raw: bytes | None = path.read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            raw = None
        if raw is None:
            if not (folder / "messages.jsonl").is_file():
                raise self._missing(thread_id)
            return self._recovered(thread_id, "missing"), "missing"
        try:
            data = json.loads(raw)
            if not isinstance(data, dict):
                raise ValueError("not an object")
            return Thread.model_validate({**data, "id": thread_id}), None
        except ValueError:
            self._warn_corrupt(path, "unreadable")
            return self._recovered(thread_id, "unreadable"), "unreadable"

    def _recovered(self, thread_id: str, why: str) -> Thread:
        created = created_from_id(thread_id)
        if created is None:
            created = int(self._dir(thread_id).stat().st_mtime * 1000)
        return Thread(id=thread_id, created=created, updated=created,
                      metadata={CORRUPT_FLAG: why})

    def _created_of(self, thread_id: str) -> int | None:
        """Just the ``created`` of a thread (for the index): no full validation needed."""
        try:  # the index only hands over names it listed as real folders: no resolve needed
            created = json.loads((self.root / thread_id / "thread.json").read_bytes())["created"]
            if isinstance(created, int) and not isinstance(created, bool):
                return created
        except (OSError, ValueError, KeyError, TypeError):
            pass
        try:
            return self._load(thread_id)[0].created
        except NotFound:
            return None

    @contextlib.contextmanager
    def _locked(self, thread_id: str, *names: str) -> Iterator[Path]:
        """Hold the thread's file locks; ``NotFound`` if it is gone (or goes while waiting)."""
        folder = self._dir(thread_id)
        if not folder.is_dir():
            raise self._missing(thread_id)
        with contextlib.ExitStack() as stack:
            try:
                for name in names:
                    stack.enter_context(file_lock(folder / name, create_parent=False))
            except FileNotFoundError:
                raise self._missing(thread_id) from None
            if not ((folder / "thread.json").is_file() or (folder / "messages.jsonl").is_file()):
                raise self._missing(thread_id)
            yield folder

    # ------------------------------------------------------------------ sync operations
    def _create(self, thread: Thread) -> Thread:
        folder = self.data.path("threads", check_id(thread.id, what="id"))
        with self.index.own_change(+1):
            try:
                folder.mkdir()
            except FileExistsError:
                raise Conflict(f"Thread '{thread.id}' already exists", param="id") from None
        try:
            atomic_write_json(folder / "thread.json", thread.to_file())
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        self.index.add(thread.id, thread.created)
        return thread

    def _update(self, thread_id: str, changes: dict[str, Any]) -> Thread:
        with self._locked(thread_id, "thread.json") as folder:
            thread, broken = self._load(thread_id)
            data = apply_changes(thread.to_file(), changes, frozen=FROZEN)
            if broken:
                data["metadata"].pop(CORRUPT_FLAG, None)
                if broken == "unreadable":  # keep the user's broken file for inspection
                    os.replace(folder / "thread.json", folder / f"thread.json.corrupt-{now_ms()}")
            updated = parse(Thread, data)
            atomic_write_json(folder / "thread.json", updated.to_file())
            return updated

    def _delete(self, thread_id: str) -> None:
        with self._locked(thread_id, "thread.json", "messages.jsonl") as folder:
            trash = folder.with_name(f".{folder.name}.deleting")
            if trash.exists():  # left by a crash mid-delete
                shutil.rmtree(trash, ignore_errors=True)
            with self.index.own_change(-1):
                self.data.remove_tree("threads", folder.name)
        self.index.remove(thread_id)

    def _list(self, limit: int, order: str, after: str | None, before: str | None) -> Page:
        ids, more = self.index.window(limit=limit, order=order, after=after, before=before)
        threads = []
        for thread_id in ids:
            with contextlib.suppress(NotFound):  # deleted between index and read
                threads.append(self._load(thread_id)[0])
        return Page[Thread](data=threads, has_more=more)

    def _activity(self, created: int, thread_id: str) -> int:
        """Last activity in ms: the newest change to the thread's messages, else its creation
        (a rename or a settings change is not activity). One ``stat`` per thread."""
        try:
            changed = os.stat(self.root / thread_id / "messages.jsonl").st_mtime_ns // 1_000_000
        except OSError:
            changed = 0
        return max(created, changed)

    def _list_by_activity(self, limit: int, order: str, after: str | None,
                          before: str | None) -> Page:
        """Threads by last activity (ties by id). Cost: a ``stat`` per thread per page, fine
        for thousands; a thread active between two pages may move across the cursor."""
        ranked = sorted((self._activity(c, i), i) for c, i in self.index.created_pairs())
        where = {thread_id: n for n, (_, thread_id) in enumerate(ranked)}
        positions, more = cursor_window(len(ranked), where.get, limit=limit, order=order,
                                        after=after, before=before)
        threads = []
        for p in positions:
            with contextlib.suppress(NotFound):  # deleted meanwhile
                threads.append(self._load(ranked[p][1])[0])
        return Page[Thread](data=threads, has_more=more)

    # ------------------------------------------------------------------ ThreadStore
    async def _emit(self, topic: str, payload: dict[str, Any]) -> None:
        if self.events is not None:
            await self.events.emit(topic, payload)

    async def create(self, thread: Thread) -> Thread:
        created = await asyncio.to_thread(self._create, thread)
        await self._emit(ev.THREAD_CREATED, thread_to_api(created))
        return created

    async def get(self, thread_id: str) -> Thread:
        return (await asyncio.to_thread(self._load, thread_id))[0]

    async def list(
        self, *, limit: int = 20, order: str = "desc",
        after: str | None = None, before: str | None = None, order_by: str = "created",
    ) -> Page[Thread]:
        if not 1 <= limit <= 100:
            raise InvalidRequest("Invalid 'limit': must be between 1 and 100", param="limit")
        lister = self._list_by_activity if order_by == "last_activity" else self._list
        return await asyncio.to_thread(lister, limit, order, after, before)

    async def update(self, thread_id: str, changes: dict[str, Any]) -> Thread:
        updated = await asyncio.to_thread(self._update, thread_id, changes)
        await self._emit(ev.THREAD_UPDATED, thread_to_api(updated))
        return updated

    async def delete(self, thread_id: str) -> None:
        await asyncio.to_thread(self._delete, thread_id)
        await self._emit(ev.THREAD_DELETED, deleted_to_api(thread_id, "thread"))

    def close(self) -> None:
        """Persist the index snapshot (a restart then reads only new thread folders)."""
        self.index.save()
