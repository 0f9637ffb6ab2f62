"""``FileAssistantStore``: ``assistants/<id>/assistant.json`` (implements AssistantStore).

No field is required: ``id`` and ``name`` default to the folder name, so any folder dropped
into ``assistants/`` is an assistant at once. Listing scans the folder every time (assistants
are few); parsed files are cached by (mtime, size) and the cache is dropped on ``data.changed``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shutil
from pathlib import Path
from typing import Any

from jan.sdk import events as ev
from jan.sdk.errors import Conflict, InvalidRequest, NotFound
from jan.sdk.http import parse
from jan.sdk.models import Assistant, Page, apply_changes
from jan.sdk.openai_shapes import assistant_to_api, cursor_window, ts_to_s
from jan.sdk.storage import Folder, UnsafePath, atomic_write_json, check_id, file_lock

DEFAULT_ID = "jan"
# Jan's default assistant, as its documentation shows it: no id, no model, no instructions.
DEFAULT_ASSISTANT = {
    "name": "Jan",
    "description": "A global assistant that lets you chat with all downloaded models",
    "avatar": "https://jan.ai/img/logo.svg",
}
CORRUPT_FLAG = "jan_corrupt_assistant_json"
FROZEN = frozenset({"id", "object", "created_at"})


class FileAssistantStore:
    def __init__(
        self, data: Folder, events: Any = None, log: logging.Logger | None = None,
    ) -> None:
        self.data = data
        self.root = data.sub("assistants").root
        self.events = events
        self.log = log or logging.getLogger("jan.assistants")
        self._cache: dict[str, tuple[tuple[int, int], Assistant]] = {}
        self._warned: set[tuple[str, int]] = set()

    def invalidate(self, *_: Any) -> None:
        """Forget parsed files (a ``data.changed`` handler)."""
        self._cache.clear()

    def ensure_default(self) -> bool:
        """Write Jan's default assistant if its folder has no ``assistant.json``."""
        path = self.root / DEFAULT_ID / "assistant.json"
        if path.exists():
            return False
        atomic_write_json(path, DEFAULT_ASSISTANT)
        return True

    def folder(self, assistant_id: str) -> Path:
        return self._find(assistant_id)

    # ------------------------------------------------------------------ files
    def _dir(self, name: str) -> Path:
        return self.data.path("assistants", check_id(name, what="assistant_id"))

    def _names(self) -> list[str]:
        names = []
        for name in self.data.list_dirs("assistants"):
            with contextlib.suppress(UnsafePath):
                names.append(check_id(name))
        return names

    def _read(self, name: str) -> Assistant:
        """The assistant in folder ``name``; a file without ``created_at`` shows its mtime."""
        folder = self._dir(name)
        path = folder / "assistant.json"
        try:
            st = path.stat()
            key = (st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            st, key = folder.stat(), (0, -1)
        cached = self._cache.get(name)
        if cached is not None and cached[0] == key:
            return cached[1].model_copy(deep=True)
        assistant = Assistant()
        if key[1] >= 0:
            try:
                data = json.loads(path.read_bytes())
                if not isinstance(data, dict):
                    raise ValueError("not an object")
                assistant = Assistant.model_validate(data)
            except ValueError as exc:
                self._warn(path, key, exc)
                assistant = Assistant(metadata={CORRUPT_FLAG: "unreadable"})
        assistant.id = assistant.id or name
        assistant.name = assistant.name or name
        assistant.created_at = assistant.created_at or int(st.st_mtime)
        self._cache[name] = (key, assistant)
        return assistant.model_copy(deep=True)

    def _warn(self, path: Path, key: tuple[int, int], exc: Exception) -> None:
        if (str(path), key[0]) not in self._warned:
            self._warned.add((str(path), key[0]))
            self.log.warning("%s is unreadable (%s); using defaults", path, exc)

    def _find(self, assistant_id: str) -> Path:
        """The folder named ``assistant_id``, else the one whose file has that id."""
        with contextlib.suppress(UnsafePath):
            folder = self._dir(assistant_id)
            if folder.is_dir():
                return folder
        for name in self._names():
            if self._read(name).id == assistant_id:
                return self._dir(name)
        raise NotFound(f"No assistant found with id '{assistant_id}'", param="assistant_id")

    def _all(self) -> list[Assistant]:
        out = []
        for name in self._names():
            with contextlib.suppress(OSError):  # removed while listing
                out.append(self._read(name))
        return out

    # ------------------------------------------------------------------ sync operations
    def _get(self, assistant_id: str) -> Assistant:
        return self._read(self._find(assistant_id).name)

    def _list(self, limit: int, order: str, after: str | None, before: str | None):
        items = sorted(self._all(), key=lambda a: (ts_to_s(a.created_at), a.id))
        pos = {a.id: i for i, a in enumerate(items)}
        positions, more = cursor_window(len(items), pos.get, limit=limit, order=order,
                                        after=after, before=before)
        return Page[Assistant](data=[items[p] for p in positions], has_more=more)

    def _create(self, assistant: Assistant) -> Assistant:
        folder = self.data.path("assistants", check_id(assistant.id, what="id"))
        try:
            folder.mkdir()
        except FileExistsError:
            raise Conflict(f"Assistant '{assistant.id}' already exists", param="id") from None
        try:
            atomic_write_json(folder / "assistant.json", assistant.to_file())
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return self._read(folder.name)

    def _update(self, assistant_id: str, changes: dict[str, Any]) -> Assistant:
        folder = self._find(assistant_id)
        path = folder / "assistant.json"
        with file_lock(path):
            # its shown created_at is kept from now on
            data = apply_changes(self._read(folder.name).to_file(), changes, frozen=FROZEN,
                                 bump=None)
            data["metadata"].pop(CORRUPT_FLAG, None)
            updated = parse(Assistant, data)
            atomic_write_json(path, updated.to_file())
        return self._read(folder.name)

    def _delete(self, assistant_id: str) -> str:
        folder = self._find(assistant_id)
        current = self._read(folder.name)
        if folder.name == DEFAULT_ID:
            raise Conflict(f"The default assistant '{DEFAULT_ID}' cannot be deleted",
                           param="assistant_id", code="default_assistant")
        self.data.remove_tree("assistants", folder.name)
        self._cache.pop(folder.name, None)
        return current.id

    # ------------------------------------------------------------------ AssistantStore
    async def _emit(self, topic: str, payload: dict[str, Any]) -> None:
        if self.events is not None:
            await self.events.emit(topic, payload)

    async def create(self, assistant: Assistant) -> Assistant:
        created = await asyncio.to_thread(self._create, assistant)
        await self._emit(ev.ASSISTANT_CREATED, assistant_to_api(created))
        return created

    async def get(self, assistant_id: str) -> Assistant:
        return await asyncio.to_thread(self._get, assistant_id)

    async def list(
        self, *, limit: int = 20, order: str = "desc",
        after: str | None = None, before: str | None = None,
    ) -> Page[Assistant]:
        if not 1 <= limit <= 100:
            raise InvalidRequest("Invalid 'limit': must be between 1 and 100", param="limit")
        return await asyncio.to_thread(self._list, limit, order, after, before)

    async def update(self, assistant_id: str, changes: dict[str, Any]) -> Assistant:
        updated = await asyncio.to_thread(self._update, assistant_id, changes)
        await self._emit(ev.ASSISTANT_UPDATED, assistant_to_api(updated))
        return updated

    async def delete(self, assistant_id: str) -> None:
        deleted_id = await asyncio.to_thread(self._delete, assistant_id)
        await self._emit(ev.ASSISTANT_DELETED, {
            "id": deleted_id, "object": "assistant.deleted", "deleted": True})
