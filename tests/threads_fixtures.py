"""Helpers for the threads/messages/assistants tests: load the file stores without a host,
record events, copy the Jan-format fixture folder, and hash a folder's files."""

from __future__ import annotations

import hashlib
import importlib
import itertools
import shutil
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from jan.sdk.storage import Folder

ROOT = Path(__file__).resolve().parent.parent
JAN_DATA = Path(__file__).resolve().parent / "fixtures" / "jan_data"
_count = itertools.count()


def load_module(extension: str, module: str) -> ModuleType:
    """Import ``extensions/<extension>/<module>.py`` as part of a fresh, uniquely named package."""
    name = f"_jan_test_{extension}_{next(_count)}"
    package = ModuleType(name)
    package.__path__ = [str(ROOT / "extensions" / extension)]
    sys.modules[name] = package
    return importlib.import_module(f"{name}.{module}")


class Bus:
    """A minimal event bus that records what was emitted (the store only emits)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, Any]] = []

    def on(self, pattern: str, handler: Any) -> None:  # noqa: D102 - unused by the stores
        return None

    async def emit(self, topic: str, data: Any = None) -> None:
        self.seen.append((topic, data))

    def topics(self) -> list[str]:
        return [t for t, _ in self.seen]


class ThreadsService:
    """What the messages store is given to reach the threads service."""

    def __init__(self, store: Any) -> None:
        self.store = store

    def __call__(self) -> Any:
        return self.store


def make_stores(folder: Path) -> tuple[Any, Any, Any, Bus]:
    """(threads, messages, assistants, bus) file stores over ``folder``."""
    bus = Bus()
    data = Folder(folder)
    threads = load_module("threads", "store").FileThreadStore(
        data, bus, index_snapshot=folder / "storage" / "threads" / "index.json")
    messages = load_module("messages", "store").FileMessageStore(
        data, bus, threads=ThreadsService(threads))
    assistants = load_module("assistants", "store").FileAssistantStore(data, bus)
    return threads, messages, assistants, bus


def copy_jan_data(dest: Path) -> Path:
    shutil.copytree(JAN_DATA, dest, dirs_exist_ok=True)
    return dest


def tree_hashes(folder: Path, *areas: str) -> dict[str, str]:
    """``relative path -> sha256`` of every file under ``folder/<area>``."""
    out = {}
    for area in areas or ("",):
        base = folder / area
        for path in sorted(base.rglob("*")):
            if path.is_file():
                out[str(path.relative_to(folder))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out
