"""The workspace quota: how much disk (and how many files) a worker's writable places hold.

Landlock confines writes to the workspace and the worker's temp dir, and RLIMIT_FSIZE caps one
file; the total is measured here, before each call (a workspace already over quota refuses the
call) and every ``INTERVAL`` seconds while one runs (the worker is killed as soon as it is over;
between calls the worker is frozen and cannot write).
"""

from __future__ import annotations

import os
from pathlib import Path

INTERVAL = 0.2


def usage(*roots: Path, max_files: int = 1_000_000) -> tuple[int, int]:
    """(bytes on disk, entries) under ``roots``; stops counting past ``max_files`` entries."""
    total = files = 0
    stack = [str(r) for r in roots]
    while stack and files <= max_files:
        try:
            with os.scandir(stack.pop()) as it:
                for entry in it:
                    files += 1
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    # Blocks actually allocated, but never less than the length: a sparse file
                    # still counts as big as it claims (it can be filled later without growing).
                    total += max(st.st_blocks * 512, st.st_size)
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
        except OSError:
            continue
    return total, files


def over_quota(roots: list[Path], max_bytes: int, max_files: int) -> str | None:
    """Why the roots are over quota, or ``None``."""
    if max_bytes <= 0:
        return None
    size, files = usage(*roots, max_files=max_files)
    if size > max_bytes:
        return (f"the assistant's workspace holds {size // (1024 * 1024)} MB, over its "
                f"{max_bytes // (1024 * 1024)} MB quota; delete files in {roots[0]}")
    if files > max_files:
        return (f"the assistant's workspace holds more than {max_files} files (its quota); "
                f"delete files in {roots[0]}")
    return None
