"""Runs as JSON files, written atomically, one file per run.

Where a thread's runs live:

- ``threads/<thread_id>/runs/<run_id>.json`` when the thread has a folder in the data folder
  (the file threads store), so a thread's runs go where the thread goes;
- ``<extension storage>/<thread_id>/<run_id>.json`` otherwise (a database threads provider keeps
  no thread folder).

A save never creates a thread folder: once the thread is deleted (``forget``), later saves of
its runs are dropped, and its runs in the extension's storage are removed. A save racing the
delete itself goes to the extension's storage instead (only a window of microseconds, between
creating ``runs/`` and the atomic write, remains in which the folder could reappear).
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from jan.sdk.errors import NotFound
from jan.sdk.models import Page
from jan.sdk.openai_shapes import cursor_window
from jan.sdk.storage import Folder, atomic_write_json, check_id

from .schemas import Run


class RunStore:
    def __init__(self, data: Folder, storage: Folder, log: Any) -> None:
        self.data, self.storage, self.log = data, storage, log
        self.forgotten: set[str] = set()  # deleted threads: their runs are never saved again

    def _folder(self, thread_id: str) -> Path:
        check_id(thread_id, what="thread_id")
        thread_folder = self.data.path("threads", thread_id)
        if thread_folder.is_dir():
            return thread_folder / "runs"
        return self.storage.path(thread_id)

    def save(self, run: Run) -> Run:
        check_id(run.id, what="run_id")
        if run.thread_id in self.forgotten:
            return run
        folder = self._folder(run.thread_id)
        if folder.name == "runs":
            # Only the runs/ level may be created: a vanished thread folder raises instead.
            try:
                folder.mkdir(exist_ok=True)
            except FileNotFoundError:
                folder = self.storage.path(run.thread_id)
        atomic_write_json(folder / f"{run.id}.json", run.to_api())
        return run

    def save_steps(self, thread_id: str, run_id: str, steps: list[dict[str, Any]]) -> None:
        """A run's steps, next to it (``<run_id>.steps``, not listed as a run)."""
        check_id(run_id, what="run_id")
        if thread_id in self.forgotten:
            return
        folder = self._folder(thread_id)
        with contextlib.suppress(FileNotFoundError):
            folder.mkdir(exist_ok=True)
            atomic_write_json(folder / f"{run_id}.steps", steps)

    def steps(self, thread_id: str, run_id: str) -> list[dict[str, Any]]:
        self.get(thread_id, run_id)  # 404 for an unknown run
        path = self._folder(thread_id) / f"{run_id}.steps"
        try:
            data = json.loads(path.read_bytes())
        except (FileNotFoundError, NotADirectoryError):
            return []
        except ValueError as exc:
            self.log.warning("unreadable run steps %s: %s", path, exc)
            return []
        return [s for s in data if isinstance(s, dict)] if isinstance(data, list) else []

    def forget(self, thread_id: str) -> None:
        """The thread was deleted: drop its runs' later saves and remove what we stored."""
        check_id(thread_id, what="thread_id")
        self.forgotten.add(thread_id)
        if self.storage.exists(thread_id):
            self.storage.remove_tree(thread_id)

    def get(self, thread_id: str, run_id: str) -> Run:
        check_id(run_id, what="run_id")
        path = self._folder(thread_id) / f"{run_id}.json"
        try:
            return Run.model_validate_json(path.read_bytes())
        except (FileNotFoundError, NotADirectoryError):
            raise NotFound(f"No run found with id '{run_id}' in thread '{thread_id}'",
                           param="run_id") from None
        except (ValueError, ValidationError) as exc:
            self.log.warning("unreadable run file %s: %s", path, exc)
            raise NotFound(f"Run '{run_id}' is unreadable", param="run_id") from None

    def ids(self, thread_id: str) -> list[str]:
        folder = self._folder(thread_id)
        names: list[str] = []
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            names = os.listdir(folder)
        # Run ids are ULIDs: sorting by name is sorting by creation time.
        return sorted(name[:-5] for name in names
                      if name.endswith(".json") and not name.startswith("."))

    def list(self, thread_id: str, *, limit: int, order: str, after: str | None,
             before: str | None) -> Page[Run]:
        ids = self.ids(thread_id)
        where = {rid: i for i, rid in enumerate(ids)}
        positions, more = cursor_window(len(ids), where.get, limit=limit, order=order,
                                        after=after, before=before)
        runs = []
        for i in positions:
            try:
                runs.append(self.get(thread_id, ids[i]))
            except NotFound:
                continue
        return Page[Run](data=runs, has_more=more)
