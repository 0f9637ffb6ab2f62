"""llama.cpp's ``llama-server`` (built by bench/build_llama_server.py from the llama-cpp-python
sdist, cached under ~/.cache/jan-bench) as a real upstream: chat and streaming on a remote
model. Skipped with a reason where it is not built; required under CI, where ``.ci/run`` builds
it while the other tests run: these run last (``llama_server`` marker, see conftest.py) and wait
for that build (``JAN_LLAMA_SERVER_BUILD``: the folder of its log and exit status)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import asgi_client, need
from tests.waiting import eventually, wait_for

sys.path.insert(0, str(Path(__file__).parent.parent / "bench"))
from build_llama_server import BINARY, QUICK_BINARY  # noqa: E402
from engine_http import llama_server  # noqa: E402

# The build may still be running when these start: up to 40 minutes for it, then the test.
pytestmark = [pytest.mark.slow, pytest.mark.llama_server, pytest.mark.timeout(3300)]
BUILD_WAIT = 40 * 60


def llama_server_binary() -> str:
    """The benchmark build, else CI's quick one (waiting for CI's build when it runs)."""
    build = os.environ.get("JAN_LLAMA_SERVER_BUILD")
    if build and not (BINARY.is_file() or QUICK_BINARY.is_file()):
        status = Path(build) / "status"
        wait_for(status.is_file, timeout=BUILD_WAIT, interval=1.0,
                 what=f"the llama-server build ({build}/log)")
        if status.read_text().strip() != "0":
            log = (Path(build) / "log").read_text(errors="replace")[-3000:]
            pytest.fail(f"the llama-server build failed:\n{log}")
    found = next((b for b in (BINARY, QUICK_BINARY) if b.is_file()), None)
    need(found is not None,
         f"llama-server not built (python bench/build_llama_server.py -> {BINARY})")
    return str(found)


async def test_chat_and_stream_on_llama_server(make_host, data_folder, smollm_path) -> None:
    binary = llama_server_binary()
    with llama_server(binary, str(smollm_path), 1, 1024, 2) as base:
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


def provider(folder: Path, name: str, urls: list[str], **extra: Any) -> None:
    (folder / "engines").mkdir(exist_ok=True)
    (folder / "engines" / f"{name}.json").write_text(json.dumps({
        "base_url": urls[0], "upstreams": urls[1:], "capabilities": {"llama_params": True},
        **extra}))


async def test_embeddings_run_and_response_chain_on_llama_server(make_host, data_folder,
                                                                 smollm_path) -> None:
    """Only generation goes upstream: embeddings from a llama-server started with
    ``--embeddings``, a run and a ``previous_response_id`` chain stored locally."""
    binary = llama_server_binary()
    with llama_server(binary, str(smollm_path), 1, 1024, 2) as chat_base, \
            llama_server(binary, str(smollm_path), 1, 512, 1,
                         ("--embeddings", "--pooling", "mean")) as embed_base:
        provider(data_folder, "llama", [chat_base + "/v1"], aliases={"lm": "smollm"})
        provider(data_folder, "vec", [embed_base + "/v1"], aliases={"vec": "smollm"})
        async with make_host(settings={"models": {"import_default_model": False}}) as jan, \
                asgi_client(jan) as c:
            r = await c.post("/v1/embeddings", json={"model": "vec", "input": ["a cat", "a dog"]})
            assert r.status_code == 200, r.text
            vectors = [d["embedding"] for d in r.json()["data"]]
            assert len(vectors) == 2 and len(vectors[0]) == 576 and vectors[0] != vectors[1]

            r1 = await c.post("/v1/responses", json={"model": "lm", "input": "My name is Ada.",
                                                     "max_output_tokens": 8})
            assert r1.status_code == 200, r1.text
            r2 = await c.post("/v1/responses", json={
                "model": "lm", "input": "What is my name?", "max_output_tokens": 8,
                "previous_response_id": r1.json()["id"]})
            assert r2.status_code == 200, r2.text
            # the chain was sent whole: the second prompt holds the first exchange
            assert r2.json()["usage"]["input_tokens"] > r1.json()["usage"]["input_tokens"] + 5

            thread = (await c.post("/v1/threads", json={"messages": [
                {"role": "user", "content": "Hi"}]})).json()
            run = (await c.post(f"/v1/threads/{thread['id']}/runs", json={
                "assistant_id": "jan", "model": "lm", "max_completion_tokens": 8})).json()

            async def finished():
                got = (await c.get(f"/v1/threads/{thread['id']}/runs/{run['id']}")).json()
                return got if got["status"] not in ("queued", "in_progress") else None
            done = await eventually(finished, timeout=60, what="the run on llama-server")
            assert done["status"] in ("completed", "incomplete"), done.get("last_error")
            assert (data_folder / "threads" / thread["id"]).is_dir()


async def _stream(c: Any, outcomes: list[str]) -> None:
    """One streamed chat; records 'ok', 'refused' (error before the first byte) or 'broken'
    (an error event after text had started)."""
    body = {"model": "lm", "max_tokens": 48, "stream": True, "temperature": 0,
            "messages": [{"role": "user", "content": "Count from one to fifty."}]}
    async with c.stream("POST", "/v1/chat/completions", json=body) as s:
        if s.status_code != 200:
            await s.aread()
            outcomes.append("refused")
            return
        started = False
        async for line in s.aiter_lines():
            if not line.startswith("data: {"):
                continue
            chunk = json.loads(line[6:])
            if "error" in chunk:
                outcomes.append("broken" if started else "refused")
                return
            started = started or bool(chunk.get("choices"))
    outcomes.append("ok")


async def test_fleet_keeps_serving_when_an_upstream_is_killed_mid_load(
        make_host, data_folder, smollm_path) -> None:
    """Two llama-servers for one model; one is SIGKILLed while streams run on both. Streams
    that had started on it end with an error event (never retried elsewhere); every request
    sent after the kill is served by the survivor."""
    binary = llama_server_binary()
    with llama_server(binary, str(smollm_path), 1, 512, 4) as a, \
            llama_server(binary, str(smollm_path), 1, 512, 4) as b:
        provider(data_folder, "fleet", [a + "/v1", b + "/v1"], aliases={"lm": "smollm"},
                 health_interval=0.5, cooldown=60, backoff=0.01)
        async with make_host(settings={"models": {"import_default_model": False}}) as jan, \
                asgi_client(jan) as c:
            before: list[str] = []
            load = [asyncio.create_task(_stream(c, before)) for _ in range(6)]

            async def busy_on_both():
                ups = (await c.get("/v1/engines")).json()["data"][0]["upstreams"]
                return ups if all(u["in_flight"] for u in ups) else None
            ups = await eventually(busy_on_both, what="streams running on both upstreams")
            on_a = next(u["in_flight"] for u in ups if u["url"] == a + "/v1")
            a.proc.kill()
            await asyncio.gather(*load)
            assert before.count("broken") + before.count("refused") <= on_a
            assert before.count("ok") >= len(load) - on_a

            after: list[str] = []
            for _ in range(3):  # sequential rounds: each must be served despite the dead one
                await asyncio.gather(*(_stream(c, after) for _ in range(4)))
            assert after == ["ok"] * 12, after
            ups = {u["url"]: u for u in (await c.get("/v1/engines")).json()["data"][0][
                "upstreams"]}
            assert not ups[a + "/v1"]["healthy"] and ups[b + "/v1"]["healthy"]
