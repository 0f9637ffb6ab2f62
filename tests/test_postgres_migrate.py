"""``jan threads migrate``: files → PostgreSQL → files loses nothing, and re-runs resume.

Runs the real CLI in subprocesses against a real PostgreSQL database, on a data folder in
Jan's formats with the awkward parts included: Jan's extra fields, non-string metadata,
unicode and NUL characters, an empty thread, and threads longer than one page.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pg_fixtures
import psycopg
import pytest

from jan.sdk.models import Message, Thread, new_id

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

pg_dsn = pg_fixtures.pg_dsn
pg_server = pg_fixtures.pg_server


def write_folder(root: Path) -> None:
    """A data folder as Jan (or a user) may have written it."""
    threads = root / "threads"
    plan = {"jan_1717666232": 0, "jan_1717752000": 3, new_id("thread"): 130,
            new_id("thread"): 205}
    for n, (thread_id, count) in enumerate(plan.items()):
        folder = threads / thread_id
        folder.mkdir(parents=True)
        thread = {
            "id": thread_id, "object": "thread", "title": f"Thread {n} — ünïcode ✓",
            "assistants": [{"assistant_id": "jan", "assistant_name": "Jan",
                            "model": {"id": "tinyllama", "settings": {"ctx_len": 2048},
                                      "parameters": {"temperature": 0.7}, "engine": "nitro"},
                            "instructions": "Be brief"}],
            "created": 1717666232000 + n, "updated": 1717666299000 + n,
            "metadata": {"lastMessage": "hi", "pinned": n % 2 == 0, "score": 1.5},
            "jan_custom": {"nested": [1, "two", None]},
        }
        (folder / "thread.json").write_text(json.dumps(thread, ensure_ascii=False))
        lines = []
        for i in range(count):
            record: dict[str, Any] = {
                "id": new_id(), "object": "thread.message", "thread_id": thread_id,
                "assistant_id": "jan" if i % 2 else None,
                "role": "assistant" if i % 2 else "user",
                "content": [{"type": "text", "text": {
                    "value": f"message {i} \u00e9\u4e2d\U0001f30d" + ("\u0000" * (i == 1)),
                    "annotations": []}}],
                "status": "ready", "created": 1717666240000 + i, "updated": 1717666240000 + i,
                "metadata": {"tokens": i, "tags": ["a", "b"]} if i % 3 == 0 else {},
                "type": "Thread",  # a field Jan writes that our model does not know
            }
            if i == 2:
                record["attachments"] = [{"file_id": "file-1", "tools": []}]
            lines.append(json.dumps(record, ensure_ascii=False))
        if count:
            (folder / "messages.jsonl").write_text("\n".join(lines) + "\n")


def read_folder(root: Path) -> dict[str, Any]:
    """Every thread and message as the models read them (defaults filled in)."""
    out: dict[str, Any] = {}
    for folder in sorted((root / "threads").iterdir()):
        if not (folder / "thread.json").is_file():
            continue
        thread = Thread.model_validate(json.loads((folder / "thread.json").read_text()))
        path = folder / "messages.jsonl"
        records = path.read_text().splitlines() if path.is_file() else []
        messages = [Message.model_validate({"thread_id": folder.name, **json.loads(line)})
                    .to_file() for line in records if line.strip()]
        out[folder.name] = (thread.to_file(), messages)
    return out


def migrate(folder: Path, to: str, dsn: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "JAN_POSTGRES_DSN": dsn}
    return subprocess.run(
        [sys.executable, "-m", "jan.host.cli", "threads", "migrate", "--to", to,
         "--data-folder", str(folder)], capture_output=True, text=True, env=env, timeout=300)


def test_round_trip_files_postgresql_files(tmp_path, pg_dsn):
    source, target = tmp_path / "source", tmp_path / "target"
    write_folder(source)
    target.mkdir()
    original = read_folder(source)
    total = sum(len(m) for _, m in original.values())

    first = migrate(source, "postgresql", pg_dsn)
    assert first.returncode == 0, first.stdout + first.stderr
    assert f"threads: {len(original)} copied" in first.stdout
    assert f"messages: {total} copied" in first.stdout
    assert f"verified: all {len(original)} threads and {total} messages" in first.stdout

    again = migrate(source, "postgresql", pg_dsn)  # idempotent: nothing twice
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"threads: 0 copied, {len(original)} already there" in again.stdout
    assert f"messages: 0 copied, {total} already there" in again.stdout

    back = migrate(target, "files", pg_dsn)
    assert back.returncode == 0, back.stdout + back.stderr
    restored = read_folder(target)
    assert restored.keys() == original.keys()
    for thread_id, (thread, messages) in original.items():
        assert restored[thread_id][0] == thread
        assert len(restored[thread_id][1]) == len(messages)
        for before, after in zip(messages, restored[thread_id][1], strict=True):
            assert after == before  # every field of every message, in the same order


def test_interrupted_migration_resumes(tmp_path, pg_dsn):
    source = tmp_path / "source"
    write_folder(source)
    original = read_folder(source)
    total = sum(len(m) for _, m in original.values())
    assert migrate(source, "postgresql", pg_dsn).returncode == 0

    # Make the database look like a run that died part-way: the tail of the longest thread
    # and a whole thread are missing.
    longest = max(original, key=lambda t: len(original[t][1]))
    empty = next(t for t in original if not original[t][1])
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("DELETE FROM messages WHERE thread_id = %s AND seq > "
                     "(SELECT min(seq) + 49 FROM messages WHERE thread_id = %s)",
                     (longest, longest))
        conn.execute("DELETE FROM threads WHERE id = %s", (empty,))
    lost = len(original[longest][1]) - 50

    resumed = migrate(source, "postgresql", pg_dsn)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"threads: 1 copied, {len(original) - 1} already there" in resumed.stdout
    assert f"messages: {lost} copied, {total - lost} already there" in resumed.stdout
    assert "verified" in resumed.stdout

    target = tmp_path / "target"
    target.mkdir()
    assert migrate(target, "files", pg_dsn).returncode == 0
    assert read_folder(target) == original


def test_migrate_without_dsn_says_how_to_configure(tmp_path, monkeypatch):
    monkeypatch.delenv("JAN_POSTGRES_DSN", raising=False)
    folder = tmp_path / "data"
    folder.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "JAN_POSTGRES_DSN"}
    result = subprocess.run(
        [sys.executable, "-m", "jan.host.cli", "threads", "migrate", "--to", "postgresql",
         "--data-folder", str(folder)], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 1
    assert "JAN_POSTGRES_DSN" in result.stderr
    assert "Traceback" not in result.stderr
