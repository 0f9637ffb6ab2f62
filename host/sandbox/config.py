"""Sandbox settings (``settings.json`` key ``sandbox``) and what a worker is started with."""

from __future__ import annotations

import os
import sys
import sysconfig
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

import jan.sdk

KERNEL_LAYERS = ("netns", "landlock", "seccomp")
ENV_KEEP = ("LANG", "LC_ALL", "LC_CTYPE", "TZ")
SYSTEM_READ = ("/usr/lib", "/usr/lib64", "/lib", "/lib64", "/usr/local/lib", "/etc/ld.so.cache",
               "/etc/localtime", "/usr/share/zoneinfo", "/sys/devices/system/cpu",
               "/dev/urandom", "/dev/random", "/dev/zero")


class SandboxSettings(BaseModel):
    model_config = ConfigDict(extra="ignore")

    mode: Literal["strict", "best_effort", "off"] = "best_effort"
    required: list[str] = Field(default_factory=lambda: ["rlimits", "landlock", "seccomp"])
    """Layers ``strict`` refuses to run without."""
    layers: dict[str, bool] = Field(default_factory=dict)
    """Switch single kernel layers off, e.g. ``{"netns": false}``."""
    timeout: float = 60.0
    """Wall-clock seconds per call (a run or an event) before the worker is killed."""
    start_timeout: float = 30.0
    cpu_seconds: int = 600
    memory_mb: int = 1024
    open_files: int = 256
    file_size_mb: int = 64
    processes: int = 64
    allow_spawn: bool = False
    max_message_bytes: int = 8 * 1024 * 1024
    max_output_bytes: int = 1024 * 1024
    """print()/logging output per call before the worker is stopped (the log's rate cap)."""
    log_file_bytes: int = 1024 * 1024
    """Size of ``<data>/logs/assistants/<id>.log`` before it rotates (one ``.1`` kept)."""
    host_log_burst: int = 20
    """Server-log lines one worker may cause in a burst; then one per ``host_log_every``."""
    host_log_every: float = 5.0
    max_pending_requests: int = 16
    """Requests a worker may have outstanding at the host; beyond that the host stops reading."""
    reply_buffer_bytes: int = 1024 * 1024
    """Replies the host buffers for a worker before waiting for it to read."""
    write_stall_seconds: float = 10.0
    """A worker that does not read its pipe for this long (while the host writes) is killed."""
    model_requests: int = 2
    """Model calls one worker may have in flight at once."""
    tokens_per_run: int = 8192
    """Tokens the models may generate for one run or event, all calls together."""
    workspace_mb: int = 256
    """Total size of the workspace (and the worker's temp dir): over it the call is stopped."""
    workspace_files: int = 10000
    autostart: bool = True
    """Start every code assistant's worker at startup so its subscriptions are live."""
    extra_read_paths: list[str] = Field(default_factory=list)

    @classmethod
    def parse(cls, raw: dict[str, Any] | None) -> SandboxSettings:
        raw = dict(raw or {})
        raw.update(raw.pop("limits", {}) or {})
        return cls.model_validate(raw)

    def limits(self) -> dict[str, int]:
        # One file can never be larger than the whole workspace quota.
        file_mb = min(self.file_size_mb, self.workspace_mb) if self.workspace_mb else \
            self.file_size_mb
        return {"cpu_seconds": self.cpu_seconds, "memory_mb": self.memory_mb,
                "open_files": self.open_files, "file_size_mb": file_mb,
                "processes": self.processes}


def sdk_dir() -> Path:
    return Path(jan.sdk.__file__).resolve().parent


def bootstrap_path() -> Path:
    return Path(__file__).resolve().parent / "bootstrap.py"


def python_read_paths() -> list[str]:
    """What the interpreter (and its installed packages) needs to read."""
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        value = sysconfig.get_paths().get(key)
        if value:
            paths.add(value)
    for entry in sys.path:
        if entry and os.path.isabs(entry) and "site-packages" in entry:
            paths.add(entry)
    paths.add(str(sdk_dir()))
    paths.add(os.path.dirname(os.path.realpath(sys.executable)))
    return sorted(p for p in paths if os.path.exists(p))


def confine(paths: list[str], data_root: Path) -> tuple[list[str], list[str]]:
    """Drop any path that would expose the data folder (an ancestor of it or inside it)."""
    kept, dropped = [], []
    root = data_root.resolve()
    for p in paths:
        real = Path(p).resolve()
        if real == root or real in root.parents or root in real.parents:
            dropped.append(p)
        else:
            kept.append(str(real))
    return kept, dropped


def worker_env(workspace: str, scratch: str) -> dict[str, str]:
    env = {k: os.environ[k] for k in ENV_KEEP if k in os.environ}
    env.update({"PATH": "/usr/bin:/bin", "HOME": workspace, "TMPDIR": scratch,
                "PYTHONIOENCODING": "utf-8", "OPENBLAS_NUM_THREADS": "1",
                "OMP_NUM_THREADS": "1"})
    return env


def worker_config(settings: SandboxSettings, *, data_root: Path, assistant_id: str,
                  folder: Path, workspace: Path, scratch: Path,
                  site_dirs: list[str]) -> dict[str, Any]:
    """The init message's params: everything the bootstrap needs to harden and load."""
    read, dropped = confine(python_read_paths() + settings.extra_read_paths, data_root)
    read += [p for p in SYSTEM_READ if os.path.exists(p)]
    read += [str(folder)] + site_dirs + ["/proc/{pid}"]
    write = [str(workspace), str(scratch), "/dev/null"]
    return {
        "mode": settings.mode,
        "host_pid": os.getpid(),
        "required": settings.required,
        "layers": {k: settings.layers.get(k, True) for k in KERNEL_LAYERS},
        "limits": settings.limits(),
        "allow_spawn": settings.allow_spawn,
        "env": worker_env(str(workspace), str(scratch)),
        "read_paths": read,
        "write_paths": write,
        "dropped_paths": dropped,
        "sdk_dir": str(sdk_dir()),
        "assistant_id": assistant_id,
        "folder": str(folder),
        "workspace": str(workspace),
        "site_dirs": site_dirs,
    }
