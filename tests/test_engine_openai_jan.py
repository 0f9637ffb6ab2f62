"""A second, real ``jan serve`` (running SmolLM2) as the upstream of a host whose model
``remote-m`` names it: chat, streaming, embeddings, a run and a response chain with
``previous_response_id`` all work on the remote model, while threads, runs and responses stay
in the front's own data folder."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from tests.conftest import asgi_client
from tests.waiting import eventually

pytestmark = pytest.mark.slow


def point_at(front: Path, upstream_url: str) -> None:
    (front / "engines").mkdir(parents=True, exist_ok=True)
    (front / "engines" / "janup.json").write_text(json.dumps({
        "base_url": upstream_url, "capabilities": {"llama_params": True},
        "health_interval": 0.5}))
    m = front / "models" / "remote-m"
    m.mkdir(parents=True)
    (m / "model.json").write_text(json.dumps({
        "id": "remote-m", "engine": "janup", "owned_by": "janup",
        "metadata": {"remote_model": "smollm2-135m-instruct"}}))


async def test_every_api_on_a_model_served_by_another_jan(jan_server, make_host, tmp_path,
                                                         smollm_path) -> None:
    up_folder = tmp_path / "upstream"
    up_folder.mkdir()
    server = await asyncio.to_thread(jan_server, up_folder)
    front = tmp_path / "front"
    front.mkdir()
    point_at(front, server.base_url)
    async with make_host(front, settings={"models": {"import_default_model": False}}) as jan, \
            asgi_client(jan) as c:
        ids = [m["id"] for m in (await c.get("/v1/models")).json()["data"]]
        assert "remote-m" in ids
        r = await c.post("/v1/chat/completions", json={
            "model": "remote-m", "max_tokens": 8, "temperature": 0, "top_k": 1,
            "messages": [{"role": "user", "content": "Say hello"}]})
        assert r.status_code == 200, r.text
        assert r.json()["model"] == "remote-m" and r.json()["choices"][0]["message"]["content"]
        assert r.json()["usage"]["completion_tokens"] > 0

        async with c.stream("POST", "/v1/chat/completions", json={
                "model": "remote-m", "max_tokens": 8, "stream": True,
                "messages": [{"role": "user", "content": "Count to three"}]}) as s:
            chunks = [json.loads(line[6:]) async for line in s.aiter_lines()
                      if line.startswith("data: {")]
        assert "".join(ch["choices"][0]["delta"].get("content") or ""
                       for ch in chunks if ch.get("choices"))

        r = await c.post("/v1/embeddings", json={"model": "remote-m", "input": ["a", "b c"]})
        assert r.status_code == 200, r.text
        assert len(r.json()["data"]) == 2 and len(r.json()["data"][0]["embedding"]) > 10

        r1 = await c.post("/v1/responses", json={"model": "remote-m", "input": "My name is Ada.",
                                                 "max_output_tokens": 8})
        assert r1.status_code == 200, r1.text
        r2 = await c.post("/v1/responses", json={"model": "remote-m", "input": "My name?",
                                                 "previous_response_id": r1.json()["id"],
                                                 "max_output_tokens": 8})
        assert r2.status_code == 200, r2.text
        assert r2.json()["previous_response_id"] == r1.json()["id"]
        assert (front / "storage").exists()  # stored state is the front's own

        thread = (await c.post("/v1/threads", json={"messages": [
            {"role": "user", "content": "Hi"}]})).json()
        run = (await c.post(f"/v1/threads/{thread['id']}/runs", json={
            "assistant_id": "jan", "model": "remote-m", "max_completion_tokens": 8})).json()
        assert "id" in run, run

        async def finished():
            got = (await c.get(f"/v1/threads/{thread['id']}/runs/{run['id']}")).json()
            return got if got["status"] in ("completed", "failed", "incomplete") else None
        done = await eventually(finished, timeout=60, what="the run on the remote model")
        assert done["status"] in ("completed", "incomplete"), done.get("last_error")
        msgs = (await c.get(f"/v1/threads/{thread['id']}/messages")).json()["data"]
        assert msgs[0]["role"] == "assistant" and msgs[0]["content"][0]["text"]["value"]
        assert (front / "threads" / thread["id"]).is_dir()
        assert not (up_folder / "threads" / thread["id"]).exists()
