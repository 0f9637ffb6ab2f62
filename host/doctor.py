"""``jan doctor`` and the disk part of ``/health``: problems found before they lose data.

A full disk makes every write a 507 (nothing is lost, but nothing is saved either), so low space
is reported early: in ``/health`` (with the key, if one is set) and by ``jan doctor``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path

from pydantic import BaseModel

LOW_DISK_BYTES = 1 * 2**30  # below this much free space on the data folder's disk: "low"
LOW_DISK_FRACTION = 0.05


class DiskReport(BaseModel):
    path: str
    free_bytes: int
    total_bytes: int
    low: bool


def disk_report(folder: Path) -> DiskReport:
    usage = shutil.disk_usage(folder)
    # 1 GiB on a real disk; 5% on a small one (a 2 MiB tmpfs is not "low" when empty).
    low = usage.free < min(LOW_DISK_BYTES, usage.total * LOW_DISK_FRACTION)
    return DiskReport(path=str(folder), free_bytes=usage.free, total_bytes=usage.total, low=low)


def _mb(n: int) -> str:
    return f"{n / 2**20:,.0f} MiB"


def checks(data_folder: Path) -> list[tuple[str, bool, str]]:
    """``(name, ok, detail)`` for each check, in order."""
    out: list[tuple[str, bool, str]] = []
    disk = disk_report(data_folder)
    out.append(("disk space", not disk.low, f"{_mb(disk.free_bytes)} free of "
                f"{_mb(disk.total_bytes)} on {data_folder}"
                + (" - LOW: writes will start failing with 507; free some space" if disk.low
                   else "")))
    try:
        with tempfile.NamedTemporaryFile(dir=data_folder, prefix=".doctor.") as f:
            f.write(b"x" * 4096)
            f.flush()
            os.fsync(f.fileno())
        out.append(("data folder writable", True, str(data_folder)))
    except OSError as exc:
        out.append(("data folder writable", False, f"{data_folder}: {exc}"))
    from .config import SettingsError, load_settings

    try:
        load_settings(data_folder, strict=True)
        out.append(("settings.json", True, "valid or absent"))
    except SettingsError as exc:
        out.append(("settings.json", False, str(exc)))
    try:
        import llama_cpp  # noqa: F401 - only whether the engine can load

        out.append(("llama-cpp-python", True, getattr(llama_cpp, "__version__", "?")))
    except Exception as exc:  # noqa: BLE001 - any import failure is the finding
        out.append(("llama-cpp-python", False, f"cannot import: {exc}"))
    return out


def run_doctor(args: argparse.Namespace) -> int:
    from .config import resolve_data_folder

    folder = resolve_data_folder(args.data_folder)
    results = checks(folder)
    for name, ok, detail in results:
        print(f"{'ok ' if ok else 'BAD'}  {name}: {detail}")
    return 0 if all(ok for _, ok, _ in results) else 1
