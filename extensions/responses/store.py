"""Stored responses: one JSON file per response under ``storage/responses/``.

A record is ``{"response": <the API object>, "input": [<this turn's input items>]}``. A chain is
rebuilt by walking ``previous_response_id`` links, so continuing a chain reads each of its turns
once and nothing grows with the number of *other* stored responses.

Retention is bounded by two settings (``max_stored_responses`` and ``retention_days``); pruning
runs at start-up, whenever a write takes the count past its bound, and at least every
``PRUNE_EVERY`` writes (for the age bound), deleting the oldest files first.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import os
import threading
import time
from collections import OrderedDict
from typing import Any

from jan.sdk.errors import NotFound
from jan.sdk.storage import Folder, UnsafePath, check_id

PRUNE_EVERY = 64
CACHED = 4096  # records kept in memory: a hot chain is continued without rereading its files


class ResponseStore:
    def __init__(self, folder: Folder, *, max_count: int, max_age_days: float,
                 log: logging.Logger | None = None) -> None:
        self.folder = folder
        self.max_count = max(1, int(max_count))
        self.max_age = float(max_age_days) * 86400
        self.log = log or logging.getLogger("jan.responses")
        self._writes = 0
        self._count: int | None = None  # files on disk, as of the last prune
        self._cache: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._written: dict[str, int] = {}
        self._version = 0

    def _remember(self, response_id: str, record: dict[str, Any] | None) -> None:
        with self._lock:
            if record is None:
                self._cache.pop(response_id, None)
                return
            self._cache[response_id] = record
            self._cache.move_to_end(response_id)
            while len(self._cache) > CACHED:
                self._cache.popitem(last=False)

    def _name(self, response_id: str) -> str:
        try:
            return check_id(response_id, what="response_id") + ".json"
        except UnsafePath:
            raise self.not_found(response_id) from None

    @staticmethod
    def not_found(response_id: str) -> NotFound:
        return NotFound(f"No response found with id '{response_id}'", param="response_id")

    # ------------------------------------------------------------------ sync
    def _read(self, response_id: str) -> dict[str, Any]:
        with self._lock:
            cached = self._cache.get(response_id)
        if cached is not None:
            return cached
        try:
            record = self.folder.read_json(self._name(response_id))
        except (FileNotFoundError, ValueError):
            raise self.not_found(response_id) from None
        if not isinstance(record, dict) or not isinstance(record.get("response"), dict):
            raise self.not_found(response_id)
        self._remember(response_id, record)
        return record

    def _write(self, record: dict[str, Any], version: int) -> None:
        """Write unless a later ``put`` of the same response was written already (a cancelled
        caller's thread may finish after the write that recorded the cancellation)."""
        response_id = record["response"]["id"]
        with self._write_lock:
            if self._written.get(response_id, 0) > version:
                return
            self._written[response_id] = version
            self.folder.write_json(self._name(response_id), value=record)
            self._remember(response_id, record)
            while len(self._written) > CACHED:
                self._written.pop(next(iter(self._written)))
        self._writes += 1
        if self._count is not None:
            self._count += 1
        if self._count is None or self._count > self.max_count or (
                self._writes % PRUNE_EVERY == 0):
            self.prune()

    def _delete(self, response_id: str) -> None:
        self._remember(response_id, None)
        try:
            os.unlink(self.folder.path(self._name(response_id)))
        except FileNotFoundError:
            raise self.not_found(response_id) from None

    def prune(self) -> int:
        """Delete files past the age bound, then the oldest past the count bound."""
        entries = []
        with os.scandir(self.folder.root) as it:
            for entry in it:
                if entry.name.endswith(".json") and not entry.name.startswith("."):
                    entries.append((entry.stat().st_mtime, entry.path))
        entries.sort()
        cutoff = time.time() - self.max_age
        excess = max(0, len(entries) - self.max_count)
        removed = 0
        if excess or (entries and entries[0][0] < cutoff):
            with self._lock:
                self._cache.clear()
        for i, (mtime, path) in enumerate(entries):
            if i >= excess and mtime >= cutoff:
                break
            try:
                os.unlink(path)
                removed += 1
            except FileNotFoundError:
                pass
        self._count = len(entries) - removed
        if removed:
            self.log.info("pruned %d stored responses (retention bound)", removed)
        return removed

    def _chain(self, response_id: str, limit: int) -> list[dict[str, Any]]:
        records = []
        current: str | None = response_id
        while current is not None and len(records) < limit:
            record = self._read(current)
            records.append(record)
            current = record["response"].get("previous_response_id")
        records.reverse()
        return records

    # ------------------------------------------------------------------ async surface
    async def get(self, response_id: str) -> dict[str, Any]:
        return await asyncio.to_thread(self._read, response_id)

    async def put(self, response: dict[str, Any], input_items: list[dict[str, Any]]) -> None:
        # A copy: a background response keeps changing while the file is written and cached.
        record = copy.deepcopy({"response": response, "input": input_items})
        self._version += 1
        await asyncio.to_thread(self._write, record, self._version)

    async def delete(self, response_id: str) -> None:
        await asyncio.to_thread(self._delete, response_id)

    async def chain(self, response_id: str, limit: int) -> list[dict[str, Any]]:
        """The records of a chain, oldest first, ending with ``response_id`` (at most
        ``limit`` turns: older ones are left out)."""
        return await asyncio.to_thread(self._chain, response_id, limit)

    async def exists(self, response_id: str) -> bool:
        try:
            return self.folder.exists(self._name(response_id))
        except NotFound:
            return False
