"""``FileMessageStore``: ``threads/<id>/messages.jsonl`` in Jan's format (implements MessageStore).

Creates are whole-line appends under the file's lock (refused when the thread folder is gone);
edits and deletes rewrite the file atomically under the same lock, keeping every other line,
corrupt ones included, byte for byte. Corrupt lines are skipped, logged, and flagged on the
thread as ``metadata["jan_corrupt_lines"]`` (their line numbers) through the threads service.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from jan.sdk import events as ev
from jan.sdk.errors import ApiError, InvalidRequest, NotFound
from jan.sdk.http import parse, validation_message
from jan.sdk.models import Message, Page, apply_changes
from jan.sdk.openai_shapes import cursor_window, deleted_to_api, message_to_api
from jan.sdk.storage import (
    Folder,
    UnsafePath,
    append_line,
    atomic_write_bytes,
    check_id,
    dumps,
    file_lock,
)

from .jsonl import MessageIndex, head, tail

CORRUPT_FLAG = "jan_corrupt_lines"
FROZEN = frozenset({"id", "object", "thread_id", "created"})
CACHED_INDEXES = 16


class FileMessageStore:
    def __init__(
        self, data: Folder, events: Any = None, log: logging.Logger | None = None,
        threads: Callable[[], Any] | None = None,
    ) -> None:
        self.data = data
        self.events = events
        self.log = log or logging.getLogger("jan.messages")
        self.threads = threads  # returns the threads service (for the corrupt-lines flag)
        self._indexes: OrderedDict[str, MessageIndex] = OrderedDict()
        self._indexes_lock = threading.Lock()
        self._reported: dict[str, list[int]] = {}
        self._bad_keys: dict[str, tuple[int | None, int]] = {}

    # ------------------------------------------------------------------ helpers
    def _folder(self, thread_id: str) -> Path:
        try:
            folder = self.data.path("threads", check_id(thread_id, what="thread_id"))
        except UnsafePath:
            folder = None
        if folder is None or not self._thread_exists(folder):
            raise NotFound(f"No thread found with id '{thread_id}'", param="thread_id")
        return folder

    @staticmethod
    def _thread_exists(folder: Path) -> bool:
        return (folder / "thread.json").is_file() or (folder / "messages.jsonl").is_file()

    def _index(self, thread_id: str) -> tuple[MessageIndex, bool]:
        """The thread's index, caught up with the file; True if it was (re)read whole."""
        path = self._folder(thread_id) / "messages.jsonl"
        with self._indexes_lock:
            index = self._indexes.get(thread_id)
            if index is None or index.path != path:
                index = self._indexes[thread_id] = MessageIndex(path)
                while len(self._indexes) > CACHED_INDEXES:
                    self._indexes.popitem(last=False)
            self._indexes.move_to_end(thread_id)
        with index.lock:
            rebuilt = index.refresh()
        return index, rebuilt

    def _bad_news(self, thread_id: str, index: MessageIndex, rebuilt: bool) -> list[int] | None:
        """The corrupt line numbers when they may have changed since last looked at, else None."""
        key = (index.ino, len(index.bad_offsets))
        if not rebuilt and self._bad_keys.get(thread_id) == key:
            return None
        self._bad_keys[thread_id] = key
        return index.bad_lines()

    def _message(self, thread_id: str, record: dict[str, Any]) -> Message | None:
        """The record as a ``Message``, or None (logged) if it is JSON but not a message."""
        try:
            return Message.model_validate({"thread_id": thread_id, **record})
        except ValidationError as exc:
            self.log.warning("thread %s: skipped message %r that is not a valid message: %s",
                             thread_id, record.get("id"), validation_message(exc)[0])
            return None

    def _messages(self, thread_id: str, records: list[dict[str, Any]]) -> list[Message]:
        return [m for m in (self._message(thread_id, r) for r in records) if m is not None]

    def _not_found(self, message_id: str) -> NotFound:
        return NotFound(f"No message found with id '{message_id}'", param="message_id")

    # ------------------------------------------------------------------ sync operations
    def _create(self, message: Message) -> Message:
        folder = self._folder(message.thread_id)
        path = folder / "messages.jsonl"
        try:
            written = append_line(path, message.to_file(), create_parent=False,
                                  only_if=lambda: self._thread_exists(folder))
        except FileNotFoundError:
            written = False
        if not written:
            raise NotFound(f"No thread found with id '{message.thread_id}'", param="thread_id")
        return message

    def _get(self, thread_id: str, message_id: str) -> tuple[Message, list[int] | None]:
        index, rebuilt = self._index(thread_id)
        with index.lock:
            pos = index.pos.get(message_id)
            records = index.read([pos]) if pos is not None else []
            bad = self._bad_news(thread_id, index, rebuilt)
        message = self._message(thread_id, records[0]) if records else None
        if message is None:
            raise self._not_found(message_id)
        return message, bad

    def _list(
        self, thread_id: str, limit: int, order: str, after: str | None, before: str | None,
    ) -> tuple[Page[Message], list[int] | None]:
        bad: list[int] | None = None
        cached = thread_id in self._indexes
        if after is None and before is None and not cached:
            # The common case (newest or oldest page) needs no index: read from one end.
            path = self._folder(thread_id) / "messages.jsonl"
            records, saw_bad = (tail if order == "desc" else head)(path, limit + 1)
            if not saw_bad:
                more = len(records) > limit
                msgs = self._messages(thread_id, records[:limit])
                return Page[Message](data=msgs, has_more=more), None
        index, rebuilt = self._index(thread_id)
        with index.lock:
            positions, more = cursor_window(
                len(index.ids), index.pos.get, limit=limit, order=order, after=after,
                before=before)
            records = index.read(positions)
            bad = self._bad_news(thread_id, index, rebuilt)
        msgs = self._messages(thread_id, records)
        return Page[Message](data=msgs, has_more=more), bad

    def _rewrite(
        self, thread_id: str, message_id: str, change: Callable[[Message], Message] | None,
    ) -> Message | None:
        """Apply ``change`` to one line (None: delete it) and replace the file atomically."""
        folder = self._folder(thread_id)
        path = folder / "messages.jsonl"
        with file_lock(path, create_parent=False):
            if not self._thread_exists(folder):
                raise NotFound(f"No thread found with id '{thread_id}'", param="thread_id")
            index, _ = self._index(thread_id)
            with index.lock:
                pos = index.pos.get(message_id)
                if pos is None:
                    raise self._not_found(message_id)
                offset, length = index.offsets[pos], index.lengths[pos]
                raw = path.read_bytes()
                new = None
                if change is not None:
                    old = self._message(thread_id, json.loads(raw[offset:offset + length]))
                    if old is None:
                        raise InvalidRequest(f"Message '{message_id}' is not valid on disk: "
                                             "fix its line or delete it", param="message_id")
                    new = change(old)
                line = b"" if new is None else (dumps(new.to_file()) + "\n").encode()
                end = offset + length
                end += 1 if raw[end:end + 1] == b"\n" else 0
                atomic_write_bytes(path, raw[:offset] + line + raw[end:])
                index.refresh()
            return new

    # ------------------------------------------------------------------ MessageStore
    async def _emit(self, topic: str, payload: dict[str, Any]) -> None:
        if self.events is not None:
            await self.events.emit(topic, payload)

    async def _report(self, thread_id: str, bad: list[int] | None) -> None:
        """Log corrupt lines once and flag them on the thread (cleared once repaired)."""
        if bad is None or self._reported.get(thread_id) == bad:
            return
        self._reported[thread_id] = bad
        if bad:
            self.log.warning("thread %s: skipped corrupt lines %s of messages.jsonl",
                             thread_id, bad)
        if self.threads is None:
            return
        value = ",".join(map(str, bad))[:512] or None
        try:
            threads = self.threads()
            thread = await threads.get(thread_id)
            if thread.metadata.get(CORRUPT_FLAG) != value:
                await threads.update(thread_id, {"metadata": {CORRUPT_FLAG: value}})
        except ApiError as exc:
            self.log.warning("cannot flag corrupt lines on thread %s: %s", thread_id, exc)

    async def create(self, message: Message) -> Message:
        created = await asyncio.to_thread(self._create, message)
        await self._emit(ev.MESSAGE_CREATED, message_to_api(created))
        return created

    async def get(self, thread_id: str, message_id: str) -> Message:
        message, bad = await asyncio.to_thread(self._get, thread_id, message_id)
        await self._report(thread_id, bad)
        return message

    async def list(
        self, thread_id: str, *, limit: int = 20, order: str = "desc",
        after: str | None = None, before: str | None = None,
    ) -> Page[Message]:
        if not 1 <= limit <= 100:
            raise InvalidRequest("Invalid 'limit': must be between 1 and 100", param="limit")
        page, bad = await asyncio.to_thread(self._list, thread_id, limit, order, after, before)
        await self._report(thread_id, bad)
        return page

    async def update(self, thread_id: str, message_id: str, changes: dict[str, Any]) -> Message:
        def change(old: Message) -> Message:
            return parse(Message, apply_changes(old.to_file(), changes, frozen=FROZEN))

        new = await asyncio.to_thread(self._rewrite, thread_id, message_id, change)
        await self._emit(ev.MESSAGE_UPDATED, message_to_api(new))
        return new

    async def delete(self, thread_id: str, message_id: str) -> None:
        await asyncio.to_thread(self._rewrite, thread_id, message_id, None)
        await self._emit(ev.MESSAGE_DELETED, deleted_to_api(message_id, "thread.message"))

