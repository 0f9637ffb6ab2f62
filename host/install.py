"""Install, uninstall and scaffold extensions in the data folder's ``extensions/``.

An install is staged in a hidden folder, validated (manifest, ``engines.jan``), given its own
Python dependencies in ``.deps/`` inside it, and only then renamed into place as
``<id>-<version>/``; a running server's watcher sees the new folder and activates it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

from . import HOST_API_VERSION
from .discovery import MANIFEST
from .manifest import ID_PATTERN, Manifest, ManifestError, load_manifest, satisfies

DEPS = ".deps"
PYPROJECT = "pyproject.toml"
HOST_DISTS = {"jan", "jan-py"}  # the host itself: already here, never installed into .deps


class InstallError(Exception):
    pass


def _pip(*args: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise InstallError(f"pip {' '.join(args[:2])} failed:\n{proc.stderr.strip()[-2000:]}")


def _validate(folder: Path) -> Manifest:
    try:
        manifest = load_manifest(folder / MANIFEST)
    except ManifestError as exc:
        raise InstallError(str(exc)) from None
    if not satisfies(HOST_API_VERSION, manifest.engines.jan):
        raise InstallError(f"{manifest.id} needs jan {manifest.engines.jan}; "
                           f"this is {HOST_API_VERSION}")
    return manifest


def _find_manifest_dir(root: Path) -> Path:
    hits = sorted(p.parent for p in root.rglob(MANIFEST) if DEPS not in p.parts[len(root.parts):-1])
    if not hits:
        raise InstallError(f"no {MANIFEST} found in the package")
    return hits[0]


def _forget_distribution(deps: Path) -> None:
    """Drop the moved package's own dist-info, so its entry point is not discovered twice."""
    for info in deps.glob("*.dist-info"):
        entry_points = info / "entry_points.txt"
        if entry_points.is_file() and "[jan.extensions]" in entry_points.read_text():
            shutil.rmtree(info)


def install(source: str, extensions_dir: Path) -> Manifest:
    """Install from a folder, a wheel, an sdist or a PyPI name; return the manifest."""
    extensions_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=extensions_dir))
    try:
        path = Path(source)
        if path.is_dir() and not (path / MANIFEST).is_file() and (path / PYPROJECT).is_file():
            manifest = _install_project(path, staging)
        elif path.is_dir():
            shutil.copytree(path, staging, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("__pycache__", ".git", DEPS))
            manifest = _validate(staging)
            if manifest.requirements:
                _pip("install", "--quiet", "--target", str(staging / DEPS),
                     *manifest.requirements)
        else:
            deps = staging / DEPS
            _pip("install", "--quiet", "--target", str(deps), source)
            package_dir = _find_manifest_dir(deps)
            manifest = _validate(package_dir)
            for item in package_dir.iterdir():
                shutil.move(str(item), staging / item.name)
            package_dir.rmdir()
            _forget_distribution(deps)
        final = extensions_dir / f"{manifest.id}-{manifest.version}"
        if final.exists():
            shutil.rmtree(final)
        staging.rename(final)
        for other in _installed(extensions_dir, manifest.id):
            if other != final:
                shutil.rmtree(other, ignore_errors=True)
        return manifest
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _install_project(project: Path, staging: Path) -> Manifest:
    """A Python project folder (``pyproject.toml`` + a package holding the manifest): install
    the package folder itself, offline, and its declared dependencies into ``.deps``."""
    package_dir = _find_manifest_dir(project)
    shutil.copytree(package_dir, staging, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__", ".git", DEPS))
    manifest = _validate(staging)
    try:
        project_meta = tomllib.loads((project / PYPROJECT).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise InstallError(f"{project / PYPROJECT}: {exc}") from None
    declared = (project_meta.get("project") or {}).get("dependencies") or []
    wanted = [*manifest.requirements, *(d for d in declared if _dist_name(d) not in HOST_DISTS)]
    if wanted:
        _pip("install", "--quiet", "--target", str(staging / DEPS), *wanted)
    return manifest


def _dist_name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[(]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def hand_written(ext_id: str, extensions_dir: Path) -> list[Path]:
    """Folders of ``ext_id`` that ``install`` did not make (it names them ``<id>-<version>``)."""
    found = []
    for folder in _installed(extensions_dir, ext_id):
        manifest = load_manifest(folder / MANIFEST)
        if folder.name != f"{manifest.id}-{manifest.version}":
            found.append(folder)
    return found


def _installed(extensions_dir: Path, ext_id: str) -> list[Path]:
    found = []
    for child in extensions_dir.iterdir() if extensions_dir.is_dir() else []:
        if child.name.startswith(".") or not (child / MANIFEST).is_file():
            continue
        try:
            if load_manifest(child / MANIFEST).id == ext_id:
                found.append(child)
        except ManifestError:
            continue
    return found


def uninstall(ext_id: str, extensions_dir: Path) -> list[Path]:
    removed = _installed(extensions_dir, ext_id)
    if not removed:
        raise InstallError(f"{ext_id} is not installed in {extensions_dir} "
                           "(bundled extensions can be disabled, not uninstalled)")
    for folder in removed:
        trash = folder.with_name(f".{folder.name}.removing")
        folder.rename(trash)  # disappears atomically for the watcher
        shutil.rmtree(trash, ignore_errors=True)
    return removed


SCAFFOLD_MAIN = '''\
"""{name}: a starting point. Edit and save: a running `jan serve` reloads it."""

from jan.sdk import Extension, hookimpl
from jan.sdk.http import json_response


class {cls}(Extension):
    def activate(self, ctx):
        self.ctx = ctx
        self.messages_seen = 0
        ctx.events.on("message.created", self.on_message)  # taken back on unload

    def on_message(self, topic, message):
        self.messages_seen += 1

    @hookimpl
    def register_routes(self, register):
        register("/v1/{name}", self.status, methods=["GET"])

    async def status(self, request):
        return json_response({{"extension": "{name}", "messages_seen": self.messages_seen}})
'''


def scaffold(name: str, extensions_dir: Path) -> Path:
    ext_id = name.lower().replace("_", "-")
    if not ID_PATTERN.fullmatch(ext_id):
        raise InstallError(f"{name!r} is not a valid extension id: use lowercase letters, digits, "
                           "'.', '_' or '-' (max 64)")
    folder = extensions_dir / ext_id
    if folder.exists():
        raise InstallError(f"{folder} already exists")
    cls = "".join(part.capitalize() for part in ext_id.replace(".", "-").split("-")) or "Ext"
    folder.mkdir(parents=True)
    (folder / MANIFEST).write_text(
        f'id = "{ext_id}"\nversion = "0.1.0"\ndescription = "{name}"\nmain = "main:{cls}"\n'
        f'activation_events = ["onStartup"]\n\n[engines]\njan = ">=0.1"\n')
    (folder / "main.py").write_text(SCAFFOLD_MAIN.format(name=ext_id, cls=cls))
    _validate(folder)
    return folder
