"""Import an extension's folder as a fresh package, and forget it again.

Each load gets a private module name (``jan_ext.<id>.g<generation>``), so the next generation
of an extension never sees the previous one's modules. Extension sources are always compiled
from the file on disk (no bytecode cache), so an edit saved within the same second as the last
one is never masked by a stale ``.pyc``.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import itertools
import re
import sys
from pathlib import Path
from types import ModuleType

ROOT = "jan_ext"
_generation = itertools.count(1)


class _SourceOnlyLoader(importlib.abc.SourceLoader):
    def __init__(self, fullname: str, path: str) -> None:
        self.fullname, self.path = fullname, path

    def get_filename(self, fullname: str) -> str:
        return self.path

    def get_data(self, path: str) -> bytes:
        with open(path, "rb") as f:
            return f.read()


class _ExtensionFinder(importlib.abc.MetaPathFinder):
    """Finds modules under ``jan_ext.*`` in their package's ``__path__`` only."""

    def find_spec(self, fullname, path, target=None):  # noqa: ANN001 - importlib signature
        if not fullname.startswith(ROOT + ".") or path is None:
            return None
        leaf = fullname.rpartition(".")[2]
        for base in path:
            package_init = Path(base, leaf, "__init__.py")
            if package_init.is_file():
                return importlib.util.spec_from_file_location(
                    fullname, package_init, loader=_SourceOnlyLoader(fullname, str(package_init)),
                    submodule_search_locations=[str(package_init.parent)],
                )
            module_file = Path(base, leaf + ".py")
            if module_file.is_file():
                return importlib.util.spec_from_file_location(
                    fullname, module_file, loader=_SourceOnlyLoader(fullname, str(module_file)),
                )
        return None


def _install_finder() -> None:
    if not any(isinstance(f, _ExtensionFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _ExtensionFinder())
    if ROOT not in sys.modules:
        root = ModuleType(ROOT)
        root.__path__ = []  # a namespace for generations; holds no files itself
        sys.modules[ROOT] = root


def package_name(extension_id: str, generation: int) -> str:
    safe = re.sub(r"\W", "_", extension_id)
    return f"{ROOT}.{safe}.g{generation}"


def import_extension(folder: Path, extension_id: str, main: str) -> tuple[object, str]:
    """Import ``main`` (``module:attr``) from ``folder``; return ``(attr, package_name)``."""
    _install_finder()
    name = package_name(extension_id, next(_generation))
    parent = name.rpartition(".")[0]
    if parent not in sys.modules:
        holder = ModuleType(parent)
        holder.__path__ = []
        sys.modules[parent] = holder
    init = folder / "__init__.py"
    package = ModuleType(name)
    package.__path__ = [str(folder)]
    package.__file__ = str(init) if init.is_file() else None
    package.__package__ = name
    sys.modules[name] = package
    try:
        if init.is_file():
            code = compile(init.read_bytes(), str(init), "exec")
            exec(code, package.__dict__)  # noqa: S102 - trusted extension code, by design
        module_name, _, attr = main.partition(":")
        module = importlib.import_module(f"{name}.{module_name}")
        return getattr(module, attr), name
    except BaseException:
        purge(name)
        raise


def purge(package: str) -> int:
    """Drop a generation's modules from ``sys.modules``; return how many were dropped."""
    doomed = [m for m in sys.modules if m == package or m.startswith(package + ".")]
    for m in doomed:
        del sys.modules[m]
    importlib.invalidate_caches()
    return len(doomed)
