"""What isolation this machine really gives an assistant worker.

``probe()`` starts a throw-away worker in probe mode: it applies every layer it can (best effort,
all layers on), then observes from inside what is denied. Availability is what that worker
reached; "active" is what the configured mode and layer switches will actually use.
"""

from __future__ import annotations

import json
import os
import platform
import select
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from .config import KERNEL_LAYERS, SandboxSettings, bootstrap_path, worker_config

Level = Literal["full", "partial", "basic", "off", "unavailable"]
PROCESS_LAYERS = ("env", "fds", "process_group", "rlimits")


class LayerStatus(BaseModel):
    available: bool
    active: bool
    detail: str = ""


class IsolationReport(BaseModel):
    mode: str
    level: Level
    ok: bool
    """False when ``strict`` mode cannot get every required layer (runs will be refused)."""
    required: list[str] = Field(default_factory=list)
    layers: dict[str, LayerStatus] = Field(default_factory=dict)
    checks: dict[str, str] = Field(default_factory=dict)
    kernel: str = ""
    python: str = ""
    error: str | None = None

    def available(self, layer: str) -> bool:
        status = self.layers.get(layer)
        return bool(status and status.available)


def level_of(active: set[str], mode: str) -> Level:
    if mode == "off":
        return "off"
    kernel = active & set(KERNEL_LAYERS)
    if kernel == set(KERNEL_LAYERS):
        return "full"
    return "partial" if kernel else "basic"


def meets(active: set[str], settings: SandboxSettings) -> bool:
    if settings.mode != "strict":
        return True
    return set(settings.required) <= active


def _exchange(cfg: dict, timeout: float) -> dict:
    to_r, to_w = os.pipe()
    from_r, from_w = os.pipe()
    proc = subprocess.Popen(
        [sys.executable, "-I", str(bootstrap_path()), str(to_r), str(from_w)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        pass_fds=(to_r, from_w), env=cfg["env"], cwd=cfg["workspace"], start_new_session=True)
    os.close(to_r)
    os.close(from_w)
    try:
        msg = {"jsonrpc": "2.0", "id": "h0", "method": "init", "params": cfg}
        os.write(to_w, (json.dumps(msg) + "\n").encode())
        buf, deadline = b"", time.monotonic() + timeout
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([from_r], [], [], left)[0]:
                raise TimeoutError("probe worker did not answer")
            chunk = os.read(from_r, 65536)
            if not chunk:
                raise RuntimeError(f"probe worker exited ({proc.wait()})")
            buf += chunk
        reply = json.loads(buf.split(b"\n", 1)[0])
        if reply.get("error"):
            raise RuntimeError(reply["error"].get("message", "probe failed"))
        return reply["result"]
    finally:
        os.close(to_w)
        os.close(from_r)
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def probe(settings: SandboxSettings | None = None, data_root: Path | None = None,
          timeout: float = 30.0) -> IsolationReport:
    settings = settings or SandboxSettings()
    trial = settings.model_copy(update={"mode": "best_effort", "layers": {}})
    base = IsolationReport(mode=settings.mode, level="unavailable", ok=False,
                           required=list(settings.required), kernel=platform.release(),
                           python=sys.version.split()[0])
    with tempfile.TemporaryDirectory(prefix="jan-probe-") as tmp:
        folder = Path(tmp)
        cfg = worker_config(trial, data_root=data_root or folder / "data", assistant_id="probe",
                            folder=folder, workspace=folder, scratch=folder, site_dirs=[])
        cfg["probe"] = True
        try:
            result = _exchange(cfg, timeout)
        except Exception as exc:  # noqa: BLE001 - the report carries the reason
            base.error = f"{type(exc).__name__}: {exc}"
            return base
    reached = result.get("layers", {})
    active: set[str] = set()
    for name in (*PROCESS_LAYERS, *KERNEL_LAYERS, "capabilities"):
        got = reached.get(name)
        if got is None:
            continue
        enabled = name in PROCESS_LAYERS or (
            settings.mode != "off" and settings.layers.get(name, True))
        on = bool(got["active"]) and enabled
        if on:
            active.add(name)
        detail = got["detail"] if enabled or not got["active"] else "available, switched off"
        base.layers[name] = LayerStatus(available=bool(got["active"]), active=on, detail=detail)
    base.checks = {k: str(v) for k, v in result.get("checks", {}).items()}
    base.level = level_of(active, settings.mode)
    base.ok = meets(active, settings)
    return base
