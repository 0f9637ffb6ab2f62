"""One index, two processes: a running ``jan serve`` sees what ``jan files add`` indexed meanwhile.

The search index is a SQLite file plus usearch graphs cached in the server's memory; the CLI
writes the same file from its own process. Searching for the exact text of the new chunk must
rank it first *by vector as well as by keyword* (fused score 1.0): a server still holding its
old graph could only rank it first by keyword (score 0.5 at best).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from files_fixtures import FACT_MD, markdown_doc
from sandbox_fixtures import MODEL, jan_cli_env, write_model
from waiting import wait_for

pytestmark = pytest.mark.slow

NEW_FACT = "The ferry to Marrow Island leaves from pier twelve at dawn on Thursdays."


def cli(folder: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "jan.host.cli", *args, "--data-folder",
                           str(folder)], capture_output=True, text=True, timeout=300,
                          env=jan_cli_env())


def test_server_sees_chunks_the_cli_added(jan_server, data_folder, smollm_path, tmp_path):
    write_model(data_folder, smollm_path)
    (data_folder / "settings.json").write_text(json.dumps({
        "sandbox": {"autostart": False}, "extensions": {"files": {"embedding_model": MODEL}}}))
    server = jan_server()
    http = httpx.Client(base_url=server.base_url, timeout=120)
    first = http.post("/files", files={"file": ("handbook.md", markdown_doc())},
                      data={"purpose": "assistants"}).json()["id"]
    vs_id = http.post("/vector_stores", json={"name": "shared", "file_ids": [first]}).json()["id"]
    wait_for(lambda: http.get(f"/vector_stores/{vs_id}").json()["status"] == "completed",
             timeout=120, what="the vector store to be indexed")

    def search(query: str) -> list[dict]:
        r = http.post(f"/vector_stores/{vs_id}/search", json={"query": query})
        assert r.status_code == 200, r.text
        return r.json()["data"]

    assert FACT_MD in search("QUILL-58 launch code")[0]["content"][0]["text"]  # graph loaded

    note = tmp_path / "ferry.txt"
    note.write_text(NEW_FACT)
    added = cli(data_folder, "files", "add", str(note), "--vector-store", vs_id)
    assert added.returncode == 0, added.stderr
    new_id = added.stdout.split("\t")[0]
    assert f"{new_id}\tcompleted" in added.stdout

    top = search(NEW_FACT)[0]
    assert (top["file_id"], top["score"]) == (new_id, 1.0), top
    assert http.get(f"/vector_stores/{vs_id}").json()["file_counts"]["completed"] == 2

    removed = cli(data_folder, "files", "rm", new_id)
    assert removed.returncode == 0, removed.stderr
    assert new_id not in {hit["file_id"] for hit in search(NEW_FACT)}
    assert FACT_MD in search("QUILL-58 launch code")[0]["content"][0]["text"]
