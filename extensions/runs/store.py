"""Runs as JSON files: ``threads/<thread_id>/runs/<run_id>.json``, written atomically."""

from __future__ import annotations

import os
from typing import Any

from pydantic import ValidationError

from jan.sdk.errors import NotFound
from jan.sdk.models import Page
from jan.sdk.openai_shapes import cursor_window
from jan.sdk.storage import Folder, check_id

from .schemas import Run


class RunStore:
    def __init__(self, data: Folder, log: Any) -> None:
        self.data, self.log = data, log

    def _path(self, thread_id: str, *rest: str):  # noqa: ANN202
        check_id(thread_id, what="thread_id")
        return self.data.path("threads", thread_id, "runs", *rest)

    def save(self, run: Run) -> Run:
        check_id(run.id, what="run_id")
        self.data.write_json("threads", run.thread_id, "runs", f"{run.id}.json",
                             value=run.to_api())
        return run

    def get(self, thread_id: str, run_id: str) -> Run:
        check_id(run_id, what="run_id")
        path = self._path(thread_id, f"{run_id}.json")
        try:
            return Run.model_validate(self.data.read_json("threads", thread_id, "runs",
                                                          f"{run_id}.json"))
        except FileNotFoundError:
            raise NotFound(f"No run found with id '{run_id}' in thread '{thread_id}'",
                           param="run_id") from None
        except (ValueError, ValidationError) as exc:
            self.log.warning("unreadable run file %s: %s", path, exc)
            raise NotFound(f"Run '{run_id}' is unreadable", param="run_id") from None

    def ids(self, thread_id: str) -> list[str]:
        folder = self._path(thread_id)
        if not folder.is_dir():
            return []
        # Run ids are ULIDs: sorting by name is sorting by creation time.
        return sorted(name[:-5] for name in os.listdir(folder)
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
