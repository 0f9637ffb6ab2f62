"""The ``sandbox`` service (provided by the host) and an assistant's own Python environment.

An assistant folder with an ``index.py`` runs in a sandboxed worker process. Extensions reach it
through ``ctx.services.get("sandbox")`` and never see processes: they ask for a run and get a
``SandboxResult`` or a ``SandboxError`` with a clear message.

An assistant's dependencies come from ``requirements.txt`` in its folder, installed (by the
user, ``jan assistants install <id>``) into ``<folder>/.venv`` or a chosen target directory;
only that assistant's worker puts it on ``sys.path``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import venv
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, Field

from .inference import Usage

ENV_DIR = ".venv"
ENV_POINTER = ".jan-env.json"
WORKSPACE = "workspace"
"""The subfolder of an assistant folder its code may write (the rest is read-only to it)."""
LOG_DIR = ("logs", "assistants")
"""Where an assistant's print()/logging output goes: ``<data>/logs/assistants/<id>.log``."""


def assistant_log_path(data_root: Path, assistant_id: str) -> Path:
    """The current log file (``<id>.log.1`` holds the previous one after a rotation)."""
    return data_root.joinpath(*LOG_DIR, f"{assistant_id}.log")

ErrorCode = Literal["timeout", "crashed", "protocol", "handler_error", "refused", "output_limit",
                    "unavailable", "quota", "stalled"]


class SandboxError(Exception):
    """A sandboxed call failed; ``code`` says how, ``message`` is safe to show to users."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


class SandboxResult(BaseModel):
    content: str | None = None
    """The handler's reply text (``None``: the handler returned nothing)."""
    metadata: dict[str, Any] = Field(default_factory=dict)
    isolation: str = "off"
    """``full``, ``partial``, ``basic`` or ``off``: the level the worker reached."""
    layers: list[str] = Field(default_factory=list)
    """The isolation layers actually active in the worker."""
    usage: Usage = Field(default_factory=Usage)
    """Tokens of the model calls the handler made (``models.chat``), summed."""


@runtime_checkable
class SandboxService(Protocol):
    def probe(self) -> Any:
        """The isolation this machine offers (a pydantic report, cached)."""
    def has_code(self, assistant_id: str) -> bool: ...
    def status(self, assistant_id: str) -> dict[str, Any] | None:
        """``{"level", "running", "last_error": {"code", "message", "at"} | None}`` for a
        code assistant (answered from memory), ``None`` for one without ``index.py``."""
    async def run(self, assistant_id: str, *, thread_id: str, run_id: str,
                  model: str | None = None, data: dict[str, Any] | None = None,
                  timeout: float | None = None) -> SandboxResult:
        """Deliver a run to the assistant's handler for ``assistant:<id>``."""
    async def start(self, assistant_id: str) -> None: ...
    async def restart(self, assistant_id: str) -> None: ...
    async def close(self) -> None: ...


def venv_site_packages(env: Path) -> Path:
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    return env / "lib" / version / "site-packages"


def env_site_dirs(folder: Path) -> list[str]:
    """The site-packages directories an assistant's worker adds to ``sys.path``.

    Both the pointer file and ``.venv`` live in the (untrusted, shareable) assistant folder, so
    only directories that resolve *inside* that folder count: a pointer or a symlink aiming
    elsewhere would otherwise widen the sandbox's read access to it.
    """
    root = folder.resolve()
    candidates: list[Path] = []
    pointer = folder / ENV_POINTER
    if pointer.is_file():
        try:
            target = json.loads(pointer.read_text()).get("site_packages")
        except (OSError, ValueError):
            target = None
        if isinstance(target, str):
            candidates.append(Path(target))
    candidates.append(venv_site_packages(folder / ENV_DIR))
    dirs: list[str] = []
    for candidate in candidates:
        resolved = candidate.resolve()
        if resolved.is_dir() and root in resolved.parents and str(resolved) not in dirs:
            dirs.append(str(resolved))
    return dirs


class InstallResult(BaseModel):
    ok: bool
    site_packages: str
    output: str


def install_requirements(folder: Path, *, target: Path | None = None,
                         timeout: float = 900) -> InstallResult:
    """pip-install ``<folder>/requirements.txt`` into the assistant's own environment."""
    req = folder / "requirements.txt"
    if not req.is_file():
        raise FileNotFoundError(f"{req} does not exist")
    if target is None:
        env = folder / ENV_DIR
        venv.EnvBuilder(with_pip=False, symlinks=True).create(env)
        site = venv_site_packages(env)
    else:
        site = target.resolve()
        site.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--no-input",
           "--upgrade", "--target", str(site), "-r", str(req)]
    proc = subprocess.run(cmd, cwd=folder, capture_output=True, text=True, timeout=timeout)
    ok = proc.returncode == 0
    if ok and target is not None:
        (folder / ENV_POINTER).write_text(json.dumps({"site_packages": str(site)}) + "\n")
    output = (proc.stdout + proc.stderr)[-20000:]
    return InstallResult(ok=ok, site_packages=str(site), output=output)
