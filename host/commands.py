"""The CLI's command index, read from manifests (``contributes.commands``) without importing.

``jan --help`` and ``jan models --help`` are answered from this index alone: it parses each
``extension.toml`` with ``tomllib`` and ``settings.json`` with ``json`` (no pydantic, no
extension code), so listing commands costs little more than starting Python. Running a command
then imports only the extension that owns it (see ``host/cli.py``). The manifests are validated
properly when that extension is loaded; here a manifest that cannot be read is simply skipped.
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .sources import MANIFEST, bundled_folder, entry_point_folders

HOST_COMMANDS = {
    "serve": "start the API server",
    "extensions": "list, install, enable and disable extensions",
    "doctor": "check the data folder's disk space and the setup",
}


@dataclass(frozen=True)
class IndexedCommand:
    name: str
    """Words after ``jan``, e.g. ``"models list"``."""
    description: str
    owner: str
    """The id of the extension that declares (and implements) it."""


def data_folder_path(value: str | None) -> Path:
    """The data folder an argument names, without creating anything (help must not write)."""
    raw = value or os.environ.get("JAN_DATA_FOLDER") or str(Path.home() / "jan")
    return Path(raw).expanduser()


def command_entries(raw: Any) -> list[tuple[str, str]]:
    """``contributes.commands`` as (name, description): strings or ``{name, description}``."""
    out: list[tuple[str, str]] = []
    for item in raw if isinstance(raw, list) else []:
        if isinstance(item, str):
            out.append((item, ""))
        elif isinstance(item, dict) and isinstance(item.get("name"), str):
            out.append((item["name"], str(item.get("description") or "")))
    return out


def _read(folder: Path) -> dict[str, Any] | None:
    try:
        data = tomllib.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    return data if isinstance(data.get("id"), str) else None


def _folders(data_folder: Path, *, entry_points: bool) -> list[Path]:
    """In discovery's order (bundled < entry points < data folder): later copies win."""
    def children(root: Path) -> list[Path]:
        if not root.is_dir():
            return []
        return sorted(c for c in root.iterdir() if not c.name.startswith((".", "_")))

    return [*children(bundled_folder()), *(entry_point_folders() if entry_points else []),
            *children(data_folder / "extensions")]


def _disabled(data_folder: Path) -> set[str]:
    try:
        settings = json.loads((data_folder / "settings.json").read_text(encoding="utf-8"))
        return {str(x) for x in settings.get("disabled_extensions") or []}
    except (OSError, ValueError, AttributeError):
        return set()


def read_index(data_folder: Path, *, entry_points: bool = True) -> list[IndexedCommand]:
    """Every command the enabled extensions declare; a later copy of an id replaces an earlier."""
    manifests: dict[str, dict[str, Any]] = {}
    for folder in _folders(data_folder, entry_points=entry_points):
        data = _read(folder)
        if data is not None:
            manifests[data["id"]] = data
    disabled = _disabled(data_folder)
    index: dict[str, IndexedCommand] = {}
    for ext_id, data in manifests.items():
        if ext_id in disabled:
            continue
        contributes = data.get("contributes") if isinstance(data.get("contributes"), dict) else {}
        for name, description in command_entries(contributes.get("commands")):
            words = " ".join(name.split())
            if words and words.split()[0] not in HOST_COMMANDS:
                index[words] = IndexedCommand(words, description, ext_id)
    return sorted(index.values(), key=lambda c: c.name)


def match(index: list[IndexedCommand], words: list[str]) -> IndexedCommand | None:
    """The command the leading ``words`` of a command line name (longest match wins)."""
    best: IndexedCommand | None = None
    for cmd in index:
        parts = cmd.name.split()
        if words[: len(parts)] == parts and (best is None or len(parts) > len(best.name.split())):
            best = cmd
    return best


def leading_words(argv: list[str], options_with_values: set[str]) -> list[str]:
    """The positional words of ``argv`` before the first option, skipping global options."""
    words: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg.startswith("-"):
            if arg in options_with_values:
                skip = True
                continue
            if words:
                break
            continue
        words.append(arg)
    return words
