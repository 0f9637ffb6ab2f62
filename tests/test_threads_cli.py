"""``jan threads list|export|import`` as real subprocesses over a Jan-format folder."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from threads_fixtures import copy_jan_data

from jan.sdk.storage import read_lines


def jan(folder: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "jan.host.cli", *args, "--data-folder",
                           str(folder)], capture_output=True, text=True, timeout=120)


def test_list_export_import_round_trip(tmp_path):
    folder = copy_jan_data(tmp_path / "data")
    listed = jan(folder, "threads", "list")
    assert listed.returncode == 0, listed.stderr
    rows = [line.split("\t") for line in listed.stdout.splitlines()]
    assert [r[0] for r in rows] == ["jan_1717838400", "jan_1717752000", "jan_1717666232"]
    assert rows[2][2] == "5 messages" and rows[2][3] == "Explain quantum computing"

    md = jan(folder, "threads", "export", "jan_1717752000", "--format", "markdown")
    assert md.returncode == 0, md.stderr
    assert md.stdout.startswith("# Haïku\n")
    assert "## user · 2024-06-07" in md.stdout and "la mer se souvient" in md.stdout

    exported = jan(folder, "threads", "export", "jan_1717666232")
    assert exported.returncode == 0, exported.stderr
    doc = json.loads(exported.stdout)
    originals, _ = read_lines(folder / "threads" / "jan_1717666232" / "messages.jsonl")
    assert doc["thread"]["title"] == "Explain quantum computing"
    assert [m["id"] for m in doc["messages"]] == [m["id"] for m in originals]
    export_file = tmp_path / "export.json"
    export_file.write_text(exported.stdout)

    # into an empty folder: the same id; into the same folder: a copy with a new id
    empty = tmp_path / "empty"
    empty.mkdir()
    imported = jan(empty, "threads", "import", str(export_file))
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.strip() == "jan_1717666232"
    records, bad = read_lines(empty / "threads" / "jan_1717666232" / "messages.jsonl")
    assert bad == [] and len(records) == len(originals)
    for record, original in zip(records, originals, strict=True):  # every Jan field kept
        assert {k: record[k] for k in original} == original
    copy = jan(folder, "threads", "import", str(export_file))
    assert copy.returncode == 0, copy.stderr
    new_id = copy.stdout.strip()
    assert new_id.startswith("thread_")
    records, _ = read_lines(folder / "threads" / new_id / "messages.jsonl")
    assert [r["id"] for r in records] == [m["id"] for m in originals]
    assert all(r["thread_id"] == new_id for r in records)
    assert jan(folder, "threads", "list").stdout.splitlines()[0].startswith(
        "jan_1717838400")  # the copy keeps its original creation time

    missing = jan(folder, "threads", "export", "jan_404")
    assert missing.returncode == 1 and "jan_404" in missing.stderr
    bad_file = tmp_path / "bad.json"
    bad_file.write_text("[1, 2]")
    failed = jan(folder, "threads", "import", str(bad_file))
    assert failed.returncode == 1 and "not a thread export" in failed.stderr
