"""Data-folder primitives: confinement, atomic writes, whole-line appends."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from jan.sdk.storage import Folder, UnsafePath, append_line, check_id, read_lines


@pytest.mark.parametrize("bad", ["../x", "/etc/passwd", "a/../../b", "", "a\x00b"])
def test_traversal_and_absolute_paths_rejected(tmp_path, bad):
    with pytest.raises(UnsafePath):
        Folder(tmp_path).path(bad)


def test_symlink_escape_rejected(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (root / "evil").symlink_to("/etc")
    folder = Folder(root)
    with pytest.raises(UnsafePath):
        folder.path("evil", "passwd")
    assert folder.list_dirs() == []


@pytest.mark.parametrize("bad", ["..", ".hidden", "a/b", "a b", "x" * 201, ""])
def test_ids_that_would_become_paths_are_checked(bad):
    with pytest.raises(UnsafePath):
        check_id(bad)


def test_atomic_write_survives_crash_between_write_and_rename(tmp_path):
    target = tmp_path / "thread.json"
    Folder(tmp_path).write_json("thread.json", value={"v": "old"})
    # A child process writes the temp file then dies (SIGKILL) just before the rename.
    code = f"""
import os, signal
import jan.sdk.storage as s
real_replace = os.replace
def die(src, dst):
    os.kill(os.getpid(), signal.SIGKILL)
os.replace = die
s.atomic_write_json(__import__("pathlib").Path({str(target)!r}), {{"v": "new"}})
"""
    proc = subprocess.run([sys.executable, "-c", code])
    assert proc.returncode == -9
    assert json.loads(target.read_text()) == {"v": "old"}


def test_concurrent_appends_are_whole_lines(tmp_path):
    path = tmp_path / "messages.jsonl"
    payload = "x" * 5000

    def writer(n: int) -> None:
        append_line(path, {"n": n, "payload": payload})

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    records, bad = read_lines(path)
    assert bad == [] and sorted(r["n"] for r in records) == list(range(50))


def test_torn_tail_is_skipped_and_next_append_starts_clean(tmp_path):
    path = tmp_path / "m.jsonl"
    append_line(path, {"n": 1})
    with open(path, "ab") as f:
        f.write(b'{"n": 2, "trunc')  # a crash mid-line
    append_line(path, {"n": 3})
    records, bad = read_lines(path)
    assert [r["n"] for r in records] == [1, 3] and bad == [2]
    assert os.path.getsize(path) == len(Path(path).read_bytes())


def test_ids_with_a_trailing_newline_are_rejected():
    with pytest.raises(UnsafePath):
        check_id("abc\n")


def test_the_root_can_never_be_removed(tmp_path):
    folder = Folder(tmp_path)
    for parts in ((".",), ("./",), ("models", "..")):
        with pytest.raises(UnsafePath):
            folder.remove_tree(*parts)
    assert tmp_path.is_dir()
