"""Where extensions live: the bundled package, the data folder, installed entry points.

Standard library only, so the CLI can list commands without importing pydantic or extensions.
"""

from __future__ import annotations

import importlib.resources
import importlib.util
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path

BUNDLED_PACKAGE = "jan.bundled"
ENTRY_POINT_GROUP = "jan.extensions"
MANIFEST = "extension.toml"


def bundled_folder() -> Path:
    """Where the installed ``jan.bundled`` package keeps the bundled extensions.

    Found through ``importlib.resources`` so a wheel install, an editable install and a source
    checkout agree; the loader needs a real folder, which every supported install has.
    """
    root = importlib.resources.files(BUNDLED_PACKAGE)
    if not isinstance(root, Path):  # e.g. a zip import: not supported, say so plainly
        raise RuntimeError(f"the bundled extensions are not in a folder ({root!r})")
    return root


def extension_entry_points() -> list[EntryPoint]:
    return list(entry_points(group=ENTRY_POINT_GROUP))


def entry_point_folder(ep: EntryPoint) -> Path:
    """The folder of the package an entry point names (its manifest lives there)."""
    try:
        spec = importlib.util.find_spec(ep.value.partition(":")[0])
    except Exception as exc:  # noqa: BLE001 - one broken distribution costs only itself
        raise LookupError(f"entry point {ep.name!r} cannot be found: {exc}") from None
    if spec is None or not spec.submodule_search_locations:
        raise LookupError(f"entry point {ep.name!r} is not an importable package")
    return Path(list(spec.submodule_search_locations)[0])


def entry_point_folders() -> list[Path]:
    """Folders of the installed ``jan.extensions`` entry points that can be found."""
    folders: list[Path] = []
    for ep in extension_entry_points():
        try:
            folders.append(entry_point_folder(ep))
        except LookupError:
            continue
    return folders
