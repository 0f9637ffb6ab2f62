"""Find extensions: the bundled folder, the data folder's ``extensions/``, and entry points.

Later sources shadow earlier ones with the same id (a user-installed extension replaces a
bundled one, as in VSCode); among several installed versions of one id the highest wins.
Invalid manifests are reported with their file and field and skipped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from .manifest import Kind, Manifest, ManifestError, load_manifest, version_tuple
from .sources import (
    ENTRY_POINT_GROUP,
    MANIFEST,
    bundled_folder,
    entry_point_folder,
    extension_entry_points,
)

__all__ = ["ENTRY_POINT_GROUP", "MANIFEST", "Candidate", "Discovery", "bundled_folder", "discover"]
log = logging.getLogger("jan.host.discovery")


@dataclass
class Candidate:
    manifest: Manifest
    folder: Path
    source: Kind


@dataclass
class Discovery:
    candidates: dict[str, Candidate]
    errors: list[ManifestError]
    shadowed: list[Candidate]


def _scan_folder(root: Path, source: Kind, errors: list[ManifestError]) -> list[Candidate]:
    found: list[Candidate] = []
    if not root.is_dir():
        return found
    for child in sorted(root.iterdir()):
        manifest_path = child / MANIFEST
        if child.name.startswith((".", "_")) or not manifest_path.is_file():
            continue
        try:
            found.append(Candidate(load_manifest(manifest_path), child, source))
        except ManifestError as exc:
            log.error("invalid extension manifest %s", exc)
            errors.append(exc)
    return found


def _scan_entry_points(errors: list[ManifestError]) -> list[Candidate]:
    found: list[Candidate] = []
    for ep in extension_entry_points():
        try:
            folder = entry_point_folder(ep)
        except LookupError as exc:
            errors.append(ManifestError(Path(ep.value), None, str(exc)))
            continue
        try:
            found.append(Candidate(load_manifest(folder / MANIFEST), folder, "entry_point"))
        except ManifestError as exc:
            errors.append(exc)
    return found


def discover(
    folders: list[tuple[Path, Kind]], *, entry_point_scan: bool = True
) -> Discovery:
    errors: list[ManifestError] = []
    ordered: list[Candidate] = []
    for root, source in folders:
        if source == "data" and entry_point_scan:
            ordered += _scan_entry_points(errors)
        ordered += _scan_folder(root, source, errors)
    chosen: dict[str, Candidate] = {}
    shadowed: list[Candidate] = []
    for cand in ordered:
        prev = chosen.get(cand.manifest.id)
        if prev is not None:
            same_source = prev.source == cand.source
            older = version_tuple(cand.manifest.version) < version_tuple(prev.manifest.version)
            if same_source and older:
                shadowed.append(cand)
                continue
            shadowed.append(prev)
        chosen[cand.manifest.id] = cand
    return Discovery(chosen, errors, shadowed)
