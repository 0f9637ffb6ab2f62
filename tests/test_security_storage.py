"""A data folder on a small real tmpfs, filled until writes fail.

Every acknowledged message must stay intact and parseable, a failed write must be a 507
``insufficient_storage`` in OpenAI's error shape (never a torn line, never a bare 500), reads must
keep working without writing anything, and writes must work again once space is freed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import asgi_client, need

from jan.sdk.storage import read_lines

DISK_BYTES = 2 * 2**20


@pytest.fixture
def small_disk(tmp_path: Path):
    mnt = tmp_path / "disk"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK_BYTES},mode=0755", "tmpfs",
                        str(mnt)], capture_output=True, text=True)
    need(r.returncode == 0, f"cannot mount a tmpfs (needs root): {r.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def tree(root: Path) -> dict[str, tuple[int, int]]:
    out = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            st = os.stat(os.path.join(dirpath, name))
            out[os.path.relpath(os.path.join(dirpath, name), root)] = (st.st_size, st.st_mtime_ns)
    return out


def assert_507(r) -> None:
    assert r.status_code == 507, r.text
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert err["code"] in ("insufficient_storage", "storage_failed")


async def test_full_disk_loses_nothing_acknowledged_and_recovers(make_host, small_disk):
    data = small_disk / "jan"
    filler = small_disk / "other-program.bin"
    filler.write_bytes(b"\0" * (DISK_BYTES // 4))  # someone else's file, deleted later
    async with make_host(folder=data) as jan, asgi_client(jan) as c:
        r = await c.post("/v1/threads", json={"metadata": {"k": "v"}})
        assert r.status_code == 200, r.text
        tid = r.json()["id"]
        acked: dict[str, str] = {}
        failures = []
        for i in range(2000):
            text = f"message {i} " + "x" * (3000 + 37 * (i % 11))
            r = await c.post(f"/v1/threads/{tid}/messages", json={"role": "user",
                                                                  "content": text})
            if r.status_code == 200:
                acked[r.json()["id"]] = text
                continue
            assert_507(r)
            failures.append(i)
            if len(failures) >= 5:
                break
        assert failures and len(acked) > 10, (len(acked), failures)

        # Other writes fail the same clean way; nothing answers a bare 500.
        for req in (c.post("/v1/threads", json={"metadata": {"big": "y" * 400}}),
                    c.post(f"/v1/threads/{tid}", json={"metadata": {"z": "w" * 500}}),
                    c.post("/v1/assistants", json={"model": "m", "name": "n" * 200,
                                                   "instructions": "i" * 20000})):
            r = await req
            assert r.status_code in (200, 507), r.text
            if r.status_code == 507:
                assert_507(r)

        # Reads work while the disk is full, and write nothing.
        before = tree(data)
        for path in ("/v1/threads", f"/v1/threads/{tid}", "/v1/assistants", "/v1/models",
                     f"/v1/threads/{tid}/messages?limit=100", f"/v1/threads/{tid}/runs",
                     "/health"):
            r = await c.get(path)
            assert r.status_code == 200, (path, r.text)
        assert tree(data) == before

        # Every acknowledged message is there, whole, and the file has no torn line.
        stored = await all_messages(c, tid)
        for mid, text in acked.items():
            assert stored.get(mid) == text, mid
        records, bad = read_lines(data / "threads" / tid / "messages.jsonl")
        assert bad == [] and len(records) == len(acked)

        filler.unlink()  # space comes back: the server recovers by itself
        r = await c.post(f"/v1/threads/{tid}/messages", json={"role": "user",
                                                              "content": "after"})
        assert r.status_code == 200, r.text
        stored = await all_messages(c, tid)
        assert stored[r.json()["id"]] == "after" and len(stored) == len(acked) + 1
        assert (await c.post("/v1/threads", json={})).status_code == 200


async def all_messages(c, tid: str) -> dict[str, str]:
    out: dict[str, str] = {}
    after = None
    while True:
        params = {"limit": 100, "order": "asc", **({"after": after} if after else {})}
        page = (await c.get(f"/v1/threads/{tid}/messages", params=params)).json()
        for m in page["data"]:
            out[m["id"]] = m["content"][0]["text"]["value"]
        if not page["has_more"]:
            return out
        after = page["last_id"]


def test_short_writes_are_completed_or_cut_back(tmp_path, monkeypatch):
    """``os.write`` may write less than asked; the rest must follow, or be truncated away."""
    from jan.sdk import storage

    path = tmp_path / "m.jsonl"
    storage.append_line(path, {"n": 0})
    real_write = os.write
    calls = {"n": 0}

    def short(fd, data):  # noqa: ANN001
        calls["n"] += 1
        return real_write(fd, bytes(data[: max(1, len(data) // 3)]))

    monkeypatch.setattr(storage.os, "write", short)
    storage.append_line(path, {"n": 1, "pad": "p" * 100})
    assert calls["n"] > 1
    records, bad = read_lines(path)
    assert [r["n"] for r in records] == [0, 1] and bad == []

    def full(fd, data):  # noqa: ANN001
        real_write(fd, bytes(data[:7]))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(storage.os, "write", full)
    with pytest.raises(storage.InsufficientStorage) as info:
        storage.append_line(path, {"n": 2})
    assert info.value.status == 507
    records, bad = read_lines(path)
    assert [r["n"] for r in records] == [0, 1] and bad == []
    assert path.read_bytes().endswith(b"\n")
    with pytest.raises(storage.InsufficientStorage):
        storage.atomic_write_json(tmp_path / "t.json", {"a": 1})
    assert not list(tmp_path.glob(".t.json*"))
    monkeypatch.setattr(storage.os, "write", real_write)
    storage.append_line(path, {"n": 3})
    assert [r["n"] for r in read_lines(path)[0]] == [0, 1, 3]
    assert json.loads((tmp_path / "m.jsonl").read_text().splitlines()[-1]) == {"n": 3}


async def test_low_disk_space_is_reported_by_health_and_jan_doctor(make_host, small_disk):
    data = small_disk / "jan"
    async with make_host(folder=data, core_services=False) as jan, asgi_client(jan) as c:
        disk = (await c.get("/health")).json()["disk"]
        assert disk["low"] is False and disk["total_bytes"] == DISK_BYTES
        doctor = [sys.executable, "-m", "jan.host.cli", "doctor", "--data-folder", str(data)]
        ok = subprocess.run(doctor, capture_output=True, text=True, timeout=120)
        assert ok.returncode == 0, ok.stdout + ok.stderr
        assert "disk space" in ok.stdout
        # Fill what the running host left free (its extensions keep a few files there too).
        free = shutil.disk_usage(small_disk).free
        (small_disk / "fill.bin").write_bytes(b"\0" * (free - 32 * 1024))
        disk = (await c.get("/health")).json()["disk"]
        assert disk["low"] is True and disk["free_bytes"] < DISK_BYTES // 20
        bad = subprocess.run(doctor, capture_output=True, text=True, timeout=120)
        assert bad.returncode == 1
        assert "BAD  disk space" in bad.stdout and "LOW" in bad.stdout
