"""Remote engines against a scripted OpenAI-compatible upstream on loopback (uvicorn): chat,
streaming, tools passthrough, embeddings, 429 with Retry-After, a failure mid-stream, a slow
first byte, a client disconnect, a fleet with a dead upstream, and the API key never leaking."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from tests.conftest import asgi_client, free_port
from tests.waiting import eventually

KEY = "sk-test-SECRET-4242-do-not-leak"


class Script:
    """What the upstream does: one behaviour per request (popped), default "ok"."""

    def __init__(self) -> None:
        self.plan: list[str] = []
        self.seen: list[dict[str, Any]] = []
        self.closed = asyncio.Event()
        self.open_streams = 0

    async def chat(self, request: Request) -> Any:
        body = await request.json()
        self.seen.append({"body": body, "auth": request.headers.get("authorization"),
                          "peer": request.client.port if request.client else None,
                          "proxy_auth": request.headers.get("proxy-authorization")})
        what = self.plan.pop(0) if self.plan else "ok"
        if what == "429":
            return JSONResponse({"error": {"message": "slow down", "type": "rate_limit"}},
                                status_code=429, headers={"Retry-After": "1"})
        if what == "400":
            return JSONResponse({"error": {"message": f"bad model, key {KEY}",
                                           "type": "invalid_request_error",
                                           "code": "model_not_found"}}, status_code=400)
        if what == "500":
            return JSONResponse({"error": {"message": "boom"}}, status_code=500)
        return StreamingResponse(self._stream(body, what), media_type="text/event-stream")

    async def _stream(self, body: dict, what: str) -> AsyncIterator[bytes]:
        def chunk(delta: dict, finish: str | None = None) -> bytes:
            return b"data: " + json.dumps({
                "id": "c1", "object": "chat.completion.chunk", "model": body["model"],
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}).encode() \
                + b"\n\n"
        self.open_streams += 1
        try:
            if what == "slow":
                await asyncio.sleep(0.5)
            if body.get("tools"):
                yield chunk({"role": "assistant", "tool_calls": [{
                    "index": 0, "id": "call_up1", "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":'}}]})
                yield chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]})
                yield chunk({}, "tool_calls")
            else:
                for word in ["Hello", " from", " upstream"]:
                    yield chunk({"content": word})
                    if what == "midfail":
                        raise RuntimeError("upstream died mid-stream")
                    if what == "hugeline":  # 17 MiB without a newline, then the rest
                        for _ in range(17):
                            yield b"x" * (1024 * 1024)
                    if what == "endless":
                        while True:
                            await asyncio.sleep(0.05)
                            yield chunk({"content": "."})
                yield chunk({}, "stop")
            yield b'data: {"id":"c1","choices":[],"usage":{"prompt_tokens":5,' \
                  b'"completion_tokens":3,"total_tokens":8}}\n\n'
            yield b"data: [DONE]\n\n"
        finally:
            self.open_streams -= 1
            self.closed.set()

    async def embeddings(self, request: Request) -> Any:
        body = await request.json()
        return JSONResponse({"object": "list", "model": body["model"], "data": [
            {"object": "embedding", "index": i, "embedding": [float(len(t)), 1.0]}
            for i, t in enumerate(body["input"])], "usage": {"prompt_tokens": 7,
                                                             "total_tokens": 7}})

    async def models(self, request: Request) -> Any:
        return JSONResponse({"object": "list", "data": [{"id": "up-model", "object": "model"}]})


@contextlib.asynccontextmanager
async def upstream(script: Script) -> AsyncIterator[str]:
    app = Starlette(routes=[Route("/v1/chat/completions", script.chat, methods=["POST"]),
                            Route("/v1/embeddings", script.embeddings, methods=["POST"]),
                            Route("/v1/models", script.models)])
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error",
                                           lifespan="off"))
    task = asyncio.create_task(server.serve())
    await eventually(lambda: server.started, what="upstream started")
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.should_exit = True
        await task


def setup_folder(folder: Path, urls: list[str], **extra: Any) -> None:
    (folder / "engines").mkdir(exist_ok=True)
    (folder / "engines" / "up.json").write_text(json.dumps({
        "base_url": urls[0], "upstreams": urls[1:], "api_key": "env:UP_TEST_KEY",
        "backoff": 0.01, "health_interval": 0.2, **extra}))
    m = folder / "models" / "remote-m"
    m.mkdir(parents=True, exist_ok=True)
    (m / "model.json").write_text(json.dumps({
        "id": "remote-m", "engine": "up", "owned_by": "up",
        "metadata": {"remote_model": "up-model"}}))


@pytest.fixture
def key_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UP_TEST_KEY", KEY)


def chat_body(**kw: Any) -> dict:
    return {"model": "remote-m", "messages": [{"role": "user", "content": "hi"}], **kw}


async def test_chat_stream_and_tools_pass_through(make_host, data_folder, key_env) -> None:
    script = Script()
    async with upstream(script) as url:
        setup_folder(data_folder, [url])
        async with make_host() as jan, asgi_client(jan) as c:
            models = (await c.get("/v1/models")).json()["data"]
            assert any(m["id"] == "remote-m" for m in models)
            r = await c.post("/v1/chat/completions", json=chat_body(max_tokens=9, seed=3))
            assert r.status_code == 200, r.text
            out = r.json()
            assert out["model"] == "remote-m"
            assert out["choices"][0]["message"]["content"] == "Hello from upstream"
            sent = script.seen[-1]
            assert sent["auth"] == f"Bearer {KEY}"
            assert sent["body"]["model"] == "up-model" and sent["body"]["max_tokens"] == 9
            assert sent["body"]["seed"] == 3 and sent["body"]["stream"] is True

            async with c.stream("POST", "/v1/chat/completions",
                                json=chat_body(stream=True)) as s:
                chunks = [json.loads(line[6:]) async for line in s.aiter_lines()
                          if line.startswith("data: {")]
            text = "".join(ch["choices"][0]["delta"].get("content") or ""
                           for ch in chunks if ch.get("choices"))
            assert text == "Hello from upstream"
            assert {ch["model"] for ch in chunks} == {"remote-m"}

            tools = [{"type": "function", "function": {
                "name": "get_weather", "parameters": {"type": "object", "properties": {
                    "city": {"type": "string"}}}}}]
            r = await c.post("/v1/chat/completions", json=chat_body(
                tools=tools, tool_choice="required"))
            assert r.status_code == 200, r.text
            msg = r.json()["choices"][0]
            assert msg["finish_reason"] == "tool_calls"
            call = msg["message"]["tool_calls"][0]
            assert call["function"]["name"] == "get_weather"
            assert json.loads(call["function"]["arguments"]) == {"city": "Paris"}
            assert script.seen[-1]["body"]["tool_choice"] == "required"
            assert script.seen[-1]["body"]["tools"][0]["function"]["name"] == "get_weather"

            r = await c.post("/v1/embeddings", json={"model": "remote-m",
                                                     "input": ["ab", "abcd"]})
            assert r.status_code == 200, r.text
            assert [d["embedding"] for d in r.json()["data"]] == [[2.0, 1.0], [4.0, 1.0]]


async def test_streams_reuse_one_upstream_connection(make_host, data_folder, key_env) -> None:
    # A new TCP connection per request was a fifth of the proxy's time to the first token.
    script = Script()
    async with upstream(script) as url:
        setup_folder(data_folder, [url])
        async with make_host() as jan, asgi_client(jan) as c:
            for _ in range(4):
                async with c.stream("POST", "/v1/chat/completions",
                                    json=chat_body(stream=True)) as s:
                    assert "upstream" in (await s.aread()).decode()
    peers = [seen["peer"] for seen in script.seen]
    # Pooled connections: the health check's and the first request's (a new connection per
    # request would show 4 ports)
    assert len(peers) == 4 and len(set(peers)) <= 2, peers


async def test_the_upstream_is_reached_through_the_proxy_the_environment_names(
        make_host, data_folder, key_env, monkeypatch) -> None:
    """HTTP_PROXY (with credentials) is used for an upstream that NO_PROXY does not exempt:
    here the scripted upstream plays the proxy for a host name that does not resolve."""
    script = Script()
    async with upstream(script) as url:
        proxy = url.removesuffix("/v1").replace("http://", "http://user:pw@")
        for name in ("no_proxy", "NO_PROXY", "http_proxy"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HTTP_PROXY", proxy)
        setup_folder(data_folder, ["http://upstream.invalid/v1"])
        async with make_host() as jan, asgi_client(jan) as c:
            r = await c.post("/v1/chat/completions", json=chat_body())
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["message"]["content"] == "Hello from upstream"
    assert script.seen[0]["proxy_auth"] == "Basic dXNlcjpwdw=="  # user:pw


async def test_429_retry_after_then_success_and_errors(make_host, data_folder, key_env,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    script = Script()
    async with upstream(script) as url:
        setup_folder(data_folder, [url], cooldown=0)
        async with make_host() as jan, asgi_client(jan) as c:
            script.plan = ["429"]
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            r = await c.post("/v1/chat/completions", json=chat_body())
            assert r.status_code == 200, r.text
            assert len(script.seen) == 2  # refused once, then served
            assert loop.time() - t0 >= 0.9  # Retry-After: 1 was honoured, not a fixed backoff

            script.plan = ["400"]  # not retryable: the upstream's status and code, key redacted
            r = await c.post("/v1/chat/completions", json=chat_body())
            assert r.status_code == 400
            err = r.json()["error"]
            assert err["code"] == "model_not_found" and "bad model" in err["message"]
            bodies = [r.text]

            script.plan = ["500"] * 5  # retries exhausted: 503, OpenAI error shape
            r = await c.post("/v1/chat/completions", json=chat_body())
            assert r.status_code == 503 and r.json()["error"]["message"]
            bodies.append(r.text)

            r = await c.post("/v1/chat/completions", json=chat_body(top_k=5))
            assert r.status_code == 400 and r.json()["error"]["param"] == "top_k"

            for text in bodies + [(await c.get("/metrics")).text,
                                  (await c.get("/v1/engines")).text,
                                  (await c.get("/health")).text, caplog.text]:
                assert KEY not in text
                assert "SECRET-4242" not in text


# "hugeline": a hostile or broken upstream cannot make the proxy hold an unbounded line (16 MiB
# cap); it ends the stream with an error as a failure mid-stream does.
@pytest.mark.parametrize(("plan", "says"), [("midfail", ""), ("hugeline", "unreadable reply")])
async def test_midstream_failure_is_an_error_event_not_a_retry(make_host, data_folder, key_env,
                                                               plan, says) -> None:
    script = Script()
    async with upstream(script) as url:
        setup_folder(data_folder, [url])
        async with make_host() as jan, asgi_client(jan) as c:
            script.plan = [plan]
            async with c.stream("POST", "/v1/chat/completions",
                                json=chat_body(stream=True)) as s:
                assert s.status_code == 200
                raw = "".join([line + "\n" async for line in s.aiter_lines()])
            assert "Hello" in raw and '"error"' in raw and says in raw
            assert len(script.seen) == 1  # a started stream is never retried


async def test_slow_first_byte_and_disconnect_closes_upstream(make_host, data_folder,
                                                              key_env) -> None:
    script = Script()
    async with upstream(script) as url:
        setup_folder(data_folder, [url])
        async with make_host() as jan, asgi_client(jan) as c:
            script.plan = ["slow"]
            r = await c.post("/v1/chat/completions", json=chat_body())
            assert r.json()["choices"][0]["message"]["content"] == "Hello from upstream"
            assert len(script.seen) == 1  # slow is not failed: no retry



@pytest.mark.slow
async def test_client_disconnect_closes_the_upstream_request(jan_server, data_folder,
                                                             key_env) -> None:
    """Through a real ``jan serve`` (the in-process ASGI transport buffers whole responses)."""
    script = Script()
    async with upstream(script) as url:
        setup_folder(data_folder, [url])
        server = await asyncio.to_thread(jan_server)
        script.plan = ["endless"]
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as c:
            async with c.stream("POST", "/chat/completions", json=chat_body(stream=True)) as s:
                assert s.status_code == 200
                async for line in s.aiter_lines():
                    if "Hello" in line:
                        break
        await eventually(lambda: script.closed.is_set() and script.open_streams == 0,
                         what="upstream stream closed after the client left")
        assert KEY not in server.log()


async def test_fleet_routes_around_a_dead_upstream(make_host, data_folder, key_env) -> None:
    a, b = Script(), Script()
    async with upstream(a) as url_a:
        dead = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
        async with upstream(b) as url_b:
            setup_folder(data_folder, [url_a, dead, url_b], cooldown=30)
            async with make_host() as jan, asgi_client(jan) as c:
                results = await asyncio.gather(*(c.post("/v1/chat/completions",
                                                        json=chat_body()) for _ in range(8)))
                assert all(r.status_code == 200 for r in results), [r.text for r in results]
                assert a.seen and b.seen  # both live ones took a share
                ups = (await c.get("/v1/engines")).json()["data"][0]["upstreams"]
                health = {u["url"]: u["healthy"] for u in ups}
                assert health[dead] is False and health[url_a] and health[url_b]
                metrics = (await c.get("/metrics")).text
                assert f'jan_upstream_healthy{{engine="up",upstream="{dead}"}} 0' in metrics


async def test_discovered_models_and_aliases_are_listed_and_served(make_host, data_folder,
                                                                   key_env) -> None:
    """A provider file with no model list: its upstream's GET /models is discovered and each
    model appears as ``<provider>/<name>``, owned by the provider, next to local models; an
    alias is a short id for one of them. Neither can be deleted like a stored model."""
    script = Script()
    async with upstream(script) as url:
        (data_folder / "engines").mkdir()
        (data_folder / "engines" / "up.json").write_text(json.dumps({
            "base_url": url, "api_key": "env:UP_TEST_KEY", "health_interval": 0.2,
            "aliases": {"fast": "up-model"}}))
        async with make_host() as jan, asgi_client(jan) as c:
            async def listed():
                data = (await c.get("/v1/models")).json()["data"]
                return {m["id"]: m for m in data} if any(
                    m["id"] == "up/up-model" for m in data) else None
            models = await eventually(listed, what="the discovered upstream model")
            assert models["up/up-model"]["owned_by"] == "up"
            assert models["fast"]["owned_by"] == "up"
            assert (await c.get("/v1/models/up/up-model")).json()["id"] == "up/up-model"
            for model in ("up/up-model", "fast"):
                r = await c.post("/v1/chat/completions", json=chat_body(model=model))
                assert r.status_code == 200, r.text
                assert r.json()["model"] == model
                assert script.seen[-1]["body"]["model"] == "up-model"
            r = await c.delete("/v1/models/up/up-model")
            assert r.status_code == 400 and "engines/up.json" in r.json()["error"]["message"]


async def test_health_reports_each_upstream_and_degrades_without_one(make_host, data_folder,
                                                                      key_env) -> None:
    script = Script()
    async with upstream(script) as url:
        dead = f"http://127.0.0.1:{free_port()}/v1"
        setup_folder(data_folder, [url, dead], cooldown=30)
        (data_folder / "engines" / "gone.json").write_text(json.dumps({
            "base_url": f"http://127.0.0.1:{free_port()}/v1", "health_interval": 0.2,
            "cooldown": 30}))
        async with make_host() as jan, asgi_client(jan) as c:
            r = await c.post("/v1/chat/completions", json=chat_body())
            assert r.status_code == 200, r.text

            async def both_checked():
                health = (await c.get("/health")).json()
                engines = health.get("remote-inference", {})
                ups = {u["url"]: u for u in engines.get("up", {}).get("upstreams", [])}
                gone = engines.get("gone", {}).get("upstreams", [{}])[0]
                return health if ups and ups[dead]["last_error"] and gone.get(
                    "last_error") else None
            health = await eventually(both_checked, what="health checks of both engines")
            ups = {u["url"]: u for u in health["remote-inference"]["up"]["upstreams"]}
            assert ups[url]["healthy"] and ups[url]["requests"] >= 1
            assert ups[url]["mean_first_byte_ms"] is not None
            assert not ups[dead]["healthy"] and "cannot connect" in ups[dead]["last_error"]
            assert health["status"] == "degraded"  # engine 'gone' has no healthy upstream
            assert "engine 'gone' has no healthy upstream" in " ".join(health["problems"])
            assert not any("engine 'up'" in p for p in health["problems"])
            assert KEY not in json.dumps(health)
