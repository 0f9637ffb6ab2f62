"""Browser safety and strict JSON: what a hostile web page or a sloppy client can do.

A page can point its own name at 127.0.0.1 (DNS rebinding: ``Host: evil.example``) or send
``text/plain`` POSTs carrying JSON without any CORS preflight. Both are refused before routing,
while curl, scripts and SDKs (which send neither ``Origin`` nor ``Sec-Fetch-Site``) keep working.
"""

from __future__ import annotations

import logging

import httpx
import pytest
from conftest import asgi_client

EVIL = "http://evil.example"


def assert_error(r: httpx.Response, status: int) -> dict:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    return err


async def thread_count(c: httpx.AsyncClient) -> int:
    r = await c.get("/v1/threads", params={"limit": 100})
    assert r.status_code == 200, r.text
    return len(r.json()["data"])


@pytest.fixture
async def app_client(make_host):
    async with make_host() as jan, asgi_client(jan) as c:
        yield c


async def test_rebound_host_names_are_refused_before_routing(app_client):
    c = app_client
    await c.post("/v1/threads", json={})
    for path in ("/v1/threads", "/health", "/v1/models", "/nowhere"):
        err = assert_error(await c.get(path, headers={"Host": "evil.example"}), 403)
        assert err["code"] == "host_not_allowed"
    r = await c.post("/v1/threads", json={}, headers={"Host": "evil.example:1337"})
    assert_error(r, 403)
    assert_error(await c.get("/v1/threads", headers={"Host": "127.0.0.1.evil.example"}), 403)
    assert_error(await c.get("/v1/threads", headers={"Host": "localhost.evil.example"}), 403)
    for host in ("localhost:1337", "127.0.0.1:1337", "[::1]:1337", "localhost", "127.0.0.1",
                 "192.168.1.5:1337"):
        r = await c.get("/v1/threads", headers={"Host": host})
        assert r.status_code == 200, (host, r.text)


async def test_configured_host_names_are_served(make_host):
    settings = {"server": {"allowed_hosts": ["jan.lan"]}}
    async with make_host(settings=settings, core_services=False) as jan, asgi_client(jan) as c:
        assert (await c.get("/health", headers={"Host": "jan.lan:1337"})).status_code == 200
        assert_error(await c.get("/health", headers={"Host": "evil.example"}), 403)


@pytest.mark.parametrize("headers", [
    {"Origin": EVIL, "Content-Type": "text/plain"},
    {"Origin": EVIL, "Content-Type": "application/x-www-form-urlencoded"},
    {"Origin": "null", "Content-Type": "text/plain"},  # sandboxed iframes, file:// pages
    {"Origin": "http://localhost:8080", "Content-Type": "text/plain"},  # another local app
    {"Sec-Fetch-Site": "cross-site", "Content-Type": "text/plain"},
])
async def test_cross_site_writes_are_refused_whatever_the_content_type(app_client, headers):
    c = app_client
    before = await thread_count(c)
    for path, body in (("/v1/threads", b"{}"),
                       ("/v1/assistants", b'{"model": "x", "name": "a"}'),
                       ("/v1/models/smollm2-135m-instruct/start", b'{"ctx_len": 100000}'),
                       ("/v1/chat/completions",
                        b'{"model": "x", "messages": [{"role": "user", "content": "hi"}]}')):
        err = assert_error(await c.post(path, content=body, headers=headers), 403)
        assert err["code"] == "cross_origin_forbidden"
    assert await thread_count(c) == before


async def test_cross_site_reads_are_refused(app_client):
    c = app_client
    assert_error(await c.get("/v1/threads", headers={"Origin": EVIL}), 403)
    assert_error(await c.get("/v1/threads", headers={"Sec-Fetch-Site": "cross-site",
                                                     "Sec-Fetch-Mode": "no-cors"}), 403)


async def test_clients_without_browser_headers_work_as_before(app_client):
    c = app_client
    before = await thread_count(c)
    # curl -d '{}' sends application/x-www-form-urlencoded; that keeps working.
    r = await c.post("/v1/threads", content=b'{"metadata": {"via": "curl"}}',
                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 200, r.text
    r = await c.post("/v1/threads", content=b"{}", headers={"Content-Type": "text/plain"})
    assert r.status_code == 200, r.text
    # The server's own pages (same origin) and same-origin fetches are fine too.
    r = await c.post("/v1/threads", json={}, headers={"Host": "127.0.0.1:1337",
                                                      "Origin": "http://127.0.0.1:1337",
                                                      "Sec-Fetch-Site": "same-origin"})
    assert r.status_code == 200, r.text
    assert await thread_count(c) == before + 3


async def test_cors_preflight_for_allowed_origins_only(make_host):
    app = "http://app.local:3000"
    async with make_host(settings={"server": {"cors_origins": [app]}}) as jan, \
            asgi_client(jan) as c:
        pre = await c.options("/v1/threads", headers={
            "Origin": app, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,authorization"})
        assert pre.status_code == 200, pre.text
        assert pre.headers["access-control-allow-origin"] == app
        assert "POST" in pre.headers["access-control-allow-methods"]
        assert "content-type" in pre.headers["access-control-allow-headers"].lower()
        r = await c.post("/v1/threads", json={}, headers={"Origin": app})
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == app
        bad = await c.options("/v1/threads", headers={
            "Origin": EVIL, "Access-Control-Request-Method": "POST"})
        assert_error(bad, 403)
        assert "access-control-allow-origin" not in bad.headers
        assert_error(await c.post("/v1/threads", json={}, headers={"Origin": EVIL}), 403)


async def test_health_without_the_key_reveals_only_liveness(make_host, data_folder):
    async with make_host(core_services=False) as jan, asgi_client(jan) as c:
        body = (await c.get("/health")).json()
        assert body["status"] == "ok"
        assert str(data_folder) not in (await c.get("/health")).text
    async with make_host(core_services=False, api_key="k3y") as jan, asgi_client(jan) as c:
        assert (await c.get("/health")).json() == {"status": "ok"}
        keyed = await c.get("/health", headers={"Authorization": "Bearer k3y"})
        assert keyed.json()["data_folder"] == str(data_folder)


@pytest.mark.parametrize("raw", [
    b'{"metadata": {"a": "b"}, "x": NaN}',
    b'{"x": Infinity}',
    b'{"x": -Infinity}',
    b'{"x": 1e999}',
])
async def test_non_finite_numbers_are_a_400(app_client, raw):
    c = app_client
    err = assert_error(await c.post("/v1/threads", content=raw), 400)
    assert "JSON" in err["message"] or "range" in err["message"]
    r = await c.post("/v1/chat/completions", content=raw.replace(
        b'"x"', b'"messages": [{"role": "user", "content": "hi"}], "temperature"'))
    assert_error(r, 400)


async def test_client_leaving_while_sending_its_body_is_quiet(make_host, caplog):
    async with make_host() as jan:
        events = [{"type": "http.request", "body": b'{"metad', "more_body": True},
                  {"type": "http.disconnect"}]
        sent: list[dict] = []

        async def receive():
            return events.pop(0) if events else {"type": "http.disconnect"}

        async def send(message):
            sent.append(message)

        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
                 "method": "POST", "scheme": "http", "path": "/v1/threads", "raw_path":
                 b"/v1/threads", "query_string": b"", "root_path": "",
                 "headers": [(b"host", b"localhost:1337"), (b"content-length", b"100"),
                             (b"content-type", b"application/json")],
                 "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 1337)}
        with caplog.at_level(logging.INFO):
            await jan.app(scope, receive, send)
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]
        async with asgi_client(jan) as c:
            assert await thread_count(c) == 0
