"""Uploaded files as plain files: ``files/<file_id>/<filename>`` beside a ``file.json`` sidecar.

A file attached to a thread lives under that thread's own folder instead
(``threads/<thread_id>/files/<file_id>/``), as Jan's seeds lay out; ids stay global, so the
store finds a file wherever it is. The sidecar is the record (OpenAI's file object fields, in
seconds); the stored file is the bytes exactly as uploaded, under a sanitised name.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from jan.sdk.errors import InvalidRequest, NotFound
from jan.sdk.models import Page, new_id
from jan.sdk.openai_shapes import cursor_window
from jan.sdk.storage import Folder

SIDECAR = "file.json"
ID_RE = re.compile(r"^file_[0-9A-Za-z]{10,40}$")
PURPOSES = ("assistants", "assistants_output", "batch", "batch_output", "fine-tune",
            "fine-tune-results", "vision", "user_data")
UPLOAD_PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data")



def page_of(records: list[FileRecord], *, purpose: str | None, limit: int, order: str,
            after: str | None, before: str | None) -> Page[FileRecord]:
    """One page of ``GET /v1/files`` from all records, oldest first (both backends)."""
    records = [r for r in records if purpose is None or r.purpose == purpose]
    index = {r.id: i for i, r in enumerate(records)}
    positions, more = cursor_window(len(records), index.get, limit=limit, order=order,
                                    after=after, before=before)
    return Page(data=[records[i] for i in positions], has_more=more)

class FileRecord(BaseModel):
    id: str
    object: Literal["file"] = "file"
    bytes: int
    created_at: int
    filename: str
    purpose: str
    status: Literal["uploaded", "processed", "error"] = "processed"
    status_details: str | None = None
    expires_at: int | None = None
    thread_id: str | None = None  # Jan: the thread whose files/ folder holds it
    stored: str | None = None  # the name on disk when it differs (a name that is the sidecar's)

    def to_api(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude={"thread_id", "stored"})


def safe_name(filename: str) -> str:
    """A file name that is one harmless path component, keeping the extension."""
    name = Path(filename.replace("\\", "/")).name.strip()
    name = re.sub(r"[\x00-\x1f/]", "_", name).lstrip(".")
    return name[:200] or "upload"


def check_id(file_id: str) -> str:
    if not ID_RE.match(file_id or ""):
        raise NotFound(f"No file found with id '{file_id}'", param="file_id")
    return file_id


def new_record(filename: str, data: bytes, purpose: str, max_bytes: int,
               thread_id: str | None = None) -> FileRecord:
    """The record of a new upload, after checking it (shared by both file stores)."""
    if purpose not in UPLOAD_PURPOSES:
        raise InvalidRequest(f"Invalid 'purpose': must be one of {', '.join(UPLOAD_PURPOSES)}",
                             param="purpose")
    if not data:
        raise InvalidRequest("The uploaded file is empty", param="file")
    if len(data) > max_bytes:
        raise InvalidRequest(f"File is too large: {len(data)} bytes, the limit is "
                             f"{max_bytes} bytes", param="file", code="file_too_large")
    name = safe_name(filename)
    return FileRecord(id=new_id("file"), bytes=len(data), created_at=int(time.time()),
                      filename=name, purpose=purpose, thread_id=thread_id,
                      stored=f"_{name}" if name.lower() == SIDECAR else None)


class FileStore:
    def __init__(self, data: Folder, *, max_bytes: int) -> None:
        self.data = data
        self.max_bytes = max_bytes
        self._where: dict[str, Path] = {}  # file id -> folder (a cache; disk is the truth)

    # ------------------------------------------------------------------ locate
    def _folder(self, file_id: str) -> Path:
        check_id(file_id)
        cached = self._where.get(file_id)
        if cached is not None and (cached / SIDECAR).is_file():
            return cached
        candidates = [self.data.path("files", file_id)]
        threads = self.data.path("threads")
        if threads.is_dir():
            candidates += [p for p in threads.glob(f"*/files/{file_id}") if p.is_dir()]
        for folder in candidates:
            if (folder / SIDECAR).is_file():
                self._where[file_id] = folder
                return folder
        raise NotFound(f"No file found with id '{file_id}'", param="file_id")

    def _all_folders(self) -> list[Path]:
        roots = [self.data.path("files")]
        threads = self.data.path("threads")
        if threads.is_dir():
            roots += [p for p in threads.glob("*/files") if p.is_dir()]
        return [f for root in roots if root.is_dir() for f in root.iterdir()
                if ID_RE.match(f.name) and (f / SIDECAR).is_file()]

    # ------------------------------------------------------------------ CRUD
    def create(self, filename: str, data: bytes, purpose: str,
               thread_id: str | None = None) -> FileRecord:
        record = new_record(filename, data, purpose, self.max_bytes, thread_id)
        parts = ("threads", thread_id, "files", record.id) if thread_id else ("files", record.id)
        folder = self.data.sub(*parts)
        # Bytes first, sidecar last: a crash in between leaves no half-listed file.
        folder.write_bytes(record.stored or record.filename, data=data)
        folder.write_json(SIDECAR, value=record.model_dump(mode="json"))
        self._where[record.id] = folder.root
        return record

    def get(self, file_id: str) -> FileRecord:
        folder = self._folder(file_id)
        try:
            return FileRecord.model_validate(Folder(folder).read_json(SIDECAR))
        except (OSError, ValueError) as exc:
            raise NotFound(f"File '{file_id}' has an unreadable sidecar: {exc}",
                           param="file_id") from None

    def path(self, file_id: str) -> Path:
        record = self.get(file_id)
        return Folder(self._folder(file_id)).path(record.stored or record.filename)

    def read(self, file_id: str) -> bytes:
        return self.path(file_id).read_bytes()

    def all(self) -> list[FileRecord]:
        out = []
        for folder in self._all_folders():
            try:
                out.append(FileRecord.model_validate(Folder(folder).read_json(SIDECAR)))
            except (OSError, ValueError):
                continue  # a damaged sidecar hides that file only
        out.sort(key=lambda r: (r.created_at, r.id))
        return out

    def list(self, *, purpose: str | None = None, limit: int = 100, order: str = "desc",
             after: str | None = None, before: str | None = None) -> Page[FileRecord]:
        return page_of(self.all(), purpose=purpose, limit=limit, order=order, after=after,
                       before=before)

    def delete(self, file_id: str) -> None:
        folder = self._folder(file_id)
        self._where.pop(file_id, None)
        self.data.remove_tree(str(folder.relative_to(self.data.root)))

    def move_to_thread(self, file_id: str, thread_id: str) -> None:
        """Keep a file attached to a thread in the thread's own ``files/`` folder (Jan's seeds);
        a file already under some thread stays where it is."""
        folder = self._folder(file_id)
        if folder.parent != self.data.path("files") or not self.data.exists("threads", thread_id):
            return
        target = self.data.sub("threads", thread_id, "files").root / file_id
        os.replace(folder, target)
        self._where[file_id] = target
        record = self.get(file_id).model_copy(update={"thread_id": thread_id})
        Folder(target).write_json(SIDECAR, value=record.model_dump(mode="json"))

    def count(self) -> int:
        return len(self._all_folders())

    def thread_deleted(self, thread_id: str) -> None:
        """Nothing to do: the thread's folder took its files along."""
