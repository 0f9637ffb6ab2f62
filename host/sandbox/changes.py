"""What makes a worker stale: a change to its assistant's files.

A worker is replaced when its ``index.py``, ``assistant.json``, requirements or environment
change (``stamp``); the data folder's change events name the assistants they touch
(``touched``), except for writes to a workspace or a ``__pycache__``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jan.sdk.sandbox import ENV_DIR, ENV_POINTER, WORKSPACE
from jan.sdk.storage import UnsafePath, check_id

WATCHED = ("index.py", "assistant.json", "requirements.txt", ENV_POINTER)


def stamp(folder: Path) -> tuple:
    """The modification times of what a worker loaded (``None`` for a missing file)."""
    def mtime(p: Path) -> float | None:
        try:
            return p.stat().st_mtime_ns
        except OSError:
            return None

    return tuple(mtime(folder / name) for name in (*WATCHED, ENV_DIR))


def code_assistants(root: Path) -> list[str]:
    """The assistants under ``root`` (``<data>/assistants``) that have an ``index.py``."""
    return sorted(p.parent.name for p in root.glob("*/index.py")) if root.is_dir() else []


def touched(payload: Any, root: Path) -> list[str]:
    """The assistant ids whose files a ``DATA_CHANGED`` payload names, sorted."""
    if not isinstance(payload, dict) or payload.get("area") != "assistants":
        return []
    changed = set()
    for raw in payload.get("paths", []):
        try:
            parts = Path(raw).resolve().relative_to(root).parts
        except (ValueError, OSError, TypeError):
            continue
        if parts and not (len(parts) > 1 and parts[1] in (WORKSPACE, "__pycache__")):
            changed.add(parts[0])
    ids = []
    for assistant_id in sorted(changed):
        try:
            check_id(assistant_id, what="assistant_id")
        except UnsafePath:  # e.g. .DS_Store: not an assistant, and no reason to stop
            continue
        ids.append(assistant_id)
    return ids
