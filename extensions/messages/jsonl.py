"""Low-level ``messages.jsonl`` access: guarded appends, head/tail reads, an offsets index.

The file is append-only between rewrites, so message order is file order. Listing the newest
page reads the file backwards from its end; cursors use an in-memory offsets index built once
per file and extended incrementally as the file grows (a rewrite changes the inode and
triggers a rebuild). Corrupt or torn lines are skipped and their line numbers remembered.
"""

from __future__ import annotations

import json
import os
import threading
from array import array
from collections.abc import Iterator
from pathlib import Path
from typing import Any

BLOCK = 1 << 16


def _parse(line: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) and isinstance(value.get("id"), str) else None


def tail(path: Path, count: int) -> tuple[list[dict[str, Any]], bool]:
    """The last ``count`` valid records, newest first; and whether a bad line was seen."""
    out: list[dict[str, Any]] = []
    bad = False
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        return out, bad
    with f:
        pos = f.seek(0, os.SEEK_END)
        rest = b""
        while pos > 0 and len(out) < count:
            step = min(BLOCK, pos)
            pos -= step
            f.seek(pos)
            chunk = f.read(step) + rest
            lines = chunk.split(b"\n")
            rest = lines.pop(0) if pos > 0 else b""  # maybe a partial line: keep for next block
            for line in reversed(lines):
                if line.strip():
                    record = _parse(line)
                    bad |= record is None
                    if record is not None and len(out) < count:
                        out.append(record)
    return out, bad


def head(path: Path, count: int) -> tuple[list[dict[str, Any]], bool]:
    """The first ``count`` valid records, oldest first; and whether a bad line was seen."""
    out: list[dict[str, Any]] = []
    bad = False
    for _, line, _ in iter_lines(path, 0):
        record = _parse(line)
        bad |= record is None
        if record is not None:
            out.append(record)
            if len(out) >= count:
                break
    return out, bad


def iter_lines(path: Path, start: int) -> Iterator[tuple[int, bytes, bool]]:
    """``(offset, line, terminated)`` for each non-empty line from ``start``, in file order."""
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        return
    with f:
        f.seek(start)
        offset, rest = start, b""
        while True:
            chunk = f.read(BLOCK * 16)
            if not chunk:
                break
            lines = (rest + chunk).split(b"\n")
            rest = lines.pop()
            for line in lines:
                if line.strip():
                    yield offset, line, True
                offset += len(line) + 1
        if rest.strip():
            yield offset, rest, False


class MessageIndex:
    """Ids and byte offsets of the valid lines of one ``messages.jsonl``, in file order."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.Lock()
        self._reset(None)

    def _reset(self, ino: int | None) -> None:
        self.ino = ino
        self.ids: list[str] = []
        self.offsets = array("q")
        self.lengths = array("l")
        self.pos: dict[str, int] = {}
        self.bad_offsets: list[int] = []
        self.size = 0  # bytes fully indexed (complete lines only)
        self.committed = 0  # entries from complete lines; the rest is a provisional tail

    def refresh(self) -> bool:
        """Catch up with the file; True if it had to be read from the start."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self._reset(None)
            return True
        rebuilt = st.st_ino != self.ino or st.st_size < self.size or not self._last_ok()
        if rebuilt:
            self._reset(st.st_ino)
        elif st.st_size == self.size and self.committed == len(self.ids):
            return False
        self._truncate(self.committed)
        for offset, line, terminated in iter_lines(self.path, self.size):
            record = _parse(line)
            end = offset + len(line) + 1
            if record is None:
                if terminated:  # a corrupt line: skipped, remembered for the report
                    self.bad_offsets.append(offset)
                    self.size = end
                continue  # an unterminated torn tail: looked at again next time
            self._add(record["id"], offset, len(line))
            if terminated:
                self.committed, self.size = len(self.ids), end
        return rebuilt

    def _last_ok(self) -> bool:
        """A cheap check that the file was only appended to since the last read."""
        if not self.committed:
            return True
        i = self.committed - 1
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offsets[i])
                record = _parse(f.read(self.lengths[i]))
        except OSError:
            return False
        return record is not None and record["id"] == self.ids[i]

    def _add(self, message_id: str, offset: int, length: int) -> None:
        self.pos[message_id] = len(self.ids)
        self.ids.append(message_id)
        self.offsets.append(offset)
        self.lengths.append(length)

    def _truncate(self, n: int) -> None:
        for message_id in self.ids[n:]:
            if self.pos.get(message_id, -1) >= n:
                del self.pos[message_id]
        del self.ids[n:], self.offsets[n:], self.lengths[n:]

    def read(self, positions: list[int]) -> list[dict[str, Any]]:
        """The records at ``positions`` (skipping any that no longer parse)."""
        out: list[dict[str, Any]] = []
        if not positions:
            return out
        try:
            f = open(self.path, "rb")  # noqa: SIM115 - closed below
        except FileNotFoundError:  # a thread with no messages yet
            return out
        with f:
            for p in positions:
                record = _parse(os.pread(f.fileno(), self.lengths[p], self.offsets[p]))
                if record is not None:
                    out.append(record)
        return out

    def bad_lines(self) -> list[int]:
        """1-based line numbers of the corrupt lines (counted on demand: rare)."""
        if not self.bad_offsets:
            return []
        wanted = set(self.bad_offsets)
        numbers, line_no, offset = [], 1, 0
        with open(self.path, "rb") as f:
            for raw in f:
                if offset in wanted:
                    numbers.append(line_no)
                offset += len(raw)
                line_no += 1
        return numbers
