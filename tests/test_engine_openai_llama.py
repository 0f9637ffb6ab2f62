"""llama.cpp's ``llama-server`` (built by bench/build_llama_server.py from the llama-cpp-python
sdist, cached under ~/.cache/jan-bench) as a real upstream: chat and streaming on a remote
model. Skipped with a reason where it is not built; under CI it fails only when CI built it
(``JAN_LLAMA_SERVER=1``), since the build takes longer than CI's time budget allows by default."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from tests.conftest import IN_CI, asgi_client

sys.path.insert(0, str(Path(__file__).parent.parent / "bench"))
from build_llama_server import CACHE  # noqa: E402
from engine_http import llama_server  # noqa: E402

pytestmark = pytest.mark.slow
BINARY = CACHE / "build" / "bin" / "llama-server"


def need_llama_server() -> None:
    if BINARY.is_file():
        return
    if IN_CI and os.environ.get("JAN_LLAMA_SERVER") == "1":
        pytest.fail(f"required under CI: llama-server not built at {BINARY}")
    pytest.skip(f"llama-server not built (python bench/build_llama_server.py -> {BINARY})")


async def test_chat_and_stream_on_llama_server(make_host, data_folder, smollm_path) -> None:
    need_llama_server()
    with llama_server(str(BINARY), str(smollm_path), 1, 1024, 2) as base:
        (data_folder / "engines").mkdir()
        (data_folder / "engines" / "llama.json").write_text(json.dumps({
            "base_url": base + "/v1", "capabilities": {"llama_params": True}}))
        (data_folder / "models" / "lm").mkdir(parents=True)
        (data_folder / "models" / "lm" / "model.json").write_text(json.dumps({
            "id": "lm", "engine": "llama", "metadata": {"remote_model": "smollm"}}))
        async with make_host() as jan, asgi_client(jan) as c:
            r = await c.post("/v1/chat/completions", json={
                "model": "lm", "max_tokens": 8, "top_k": 1,
                "messages": [{"role": "user", "content": "Say hello"}]})
            assert r.status_code == 200, r.text
            assert r.json()["model"] == "lm" and r.json()["choices"][0]["message"]["content"]
            async with c.stream("POST", "/v1/chat/completions", json={
                    "model": "lm", "max_tokens": 8, "stream": True,
                    "messages": [{"role": "user", "content": "Count"}]}) as s:
                chunks = [json.loads(line[6:]) async for line in s.aiter_lines()
                          if line.startswith("data: {")]
            text = "".join(ch["choices"][0]["delta"].get("content") or ""
                           for ch in chunks if ch.get("choices"))
            assert text
