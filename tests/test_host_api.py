"""API assembly: OpenAI-shaped errors, body cap, API key, CORS, a real server process."""

from __future__ import annotations

import signal

import httpx
import pytest
from conftest import asgi_client, start_server
from host_fixtures import write_extension

ERRORS_BODY = """
    from pydantic import BaseModel
    from jan.sdk import Extension, hookimpl, NotFound
    from jan.sdk.http import json_response, read_body

    class Body(BaseModel):
        count: int

    class Ext(Extension):
        @hookimpl
        def register_routes(self, register):
            register("/v1/things", self.create, methods=["POST"])
            register("/v1/things/{id}", self.get, methods=["GET"])
            register("/v1/crash", self.crash, methods=["GET"])

        async def create(self, request):
            body = await read_body(request, Body)
            return json_response({"count": body.count})

        async def get(self, request):
            raise NotFound(f"No thing {request.path_params['id']}")

        async def crash(self, request):
            raise ZeroDivisionError("secret internals")
"""


def assert_openai_error(r: httpx.Response, status: int) -> dict:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    return err


@pytest.fixture
async def api(make_host, tmp_path):
    bundled = tmp_path / "bundled"
    write_extension(bundled, "things", body=ERRORS_BODY)
    async with make_host(bundled=bundled, core_services=False,
                         settings={"server": {"max_body_bytes": 1000}}) as jan:
        async with asgi_client(jan) as c:
            yield c


async def test_error_bodies_are_openai_shaped(api):
    err = assert_openai_error(await api.post("/v1/things", json={"count": "many"}), 400)
    assert err["param"] == "count"
    assert_openai_error(await api.post("/v1/things", content=b"{not json"), 400)
    assert assert_openai_error(await api.get("/v1/things/7"), 404)["message"] == "No thing 7"
    assert assert_openai_error(await api.get("/nowhere"), 404)["code"] == "unknown_url"
    assert_openai_error(await api.delete("/v1/things"), 405)
    err = assert_openai_error(await api.get("/v1/crash"), 500)
    assert "secret" not in err["message"] and "Traceback" not in err["message"]
    err = assert_openai_error(await api.post("/v1/things", content=b"x" * 5000), 413)
    assert err["code"] == "request_too_large"


async def test_api_key_required_when_configured(make_host, tmp_path):
    async with make_host(core_services=False, bundled=None, api_key="s3cret") as jan:
        async with asgi_client(jan) as c:
            assert (await c.get("/health")).status_code == 200
            assert_openai_error(await c.get("/v1/anything"), 401)
            r = await c.get("/v1/anything", headers={"Authorization": "Bearer s3cret"})
            assert r.status_code == 404


async def test_cors_allowlist(make_host):
    settings = {"server": {"cors_origins": ["http://app.local"]}}
    async with make_host(core_services=False, bundled=None, settings=settings) as jan:
        async with asgi_client(jan) as c:
            ok = await c.get("/health", headers={"Origin": "http://app.local"})
            assert ok.headers["access-control-allow-origin"] == "http://app.local"
            other = await c.get("/health", headers={"Origin": "http://evil.example"})
            assert "access-control-allow-origin" not in other.headers


def test_real_server_answers_health_and_stops_on_sigterm(jan_server):
    # How fast it starts is bench/bench_startup.py's job: no timing assertion here.
    server = jan_server()
    body = httpx.get(server.url + "/health").json()
    assert {e["id"] for e in body["extensions"]} >= {"chat", "models", "assistants", "threads",
                                                      "messages"}
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(20) == 0


def test_non_loopback_bind_requires_a_key(data_folder):
    with pytest.raises(RuntimeError, match="without an API key"):
        start_server(data_folder, args=["--host", "0.0.0.0"], wait=20)


SLOW_BODY = """
    import asyncio
    from jan.sdk import Extension, hookimpl
    from jan.sdk.http import StreamingResponse

    class Ext(Extension):
        @hookimpl
        def register_routes(self, register):
            register("/x/slow", self.slow, methods=["GET"])

        async def slow(self, request):
            async def body():
                for i in range(10):
                    await asyncio.sleep(0.1)
                    yield f"{i}\\n".encode()
            return StreamingResponse(body())

        def deactivate(self):
            (self.ctx.storage.path("deactivated")).write_text("yes")

        def activate(self, ctx):
            self.ctx = ctx
"""


def test_sigterm_lets_in_flight_requests_finish_and_deactivates(jan_server, data_folder):
    write_extension(data_folder / "extensions", "slow", body=SLOW_BODY)
    server = jan_server()
    with httpx.stream("GET", server.url + "/x/slow", timeout=10) as r:
        lines = r.iter_lines()
        assert next(lines) == "0"
        server.proc.send_signal(signal.SIGTERM)
        rest = list(lines)
    assert rest == [str(i) for i in range(1, 10)]
    assert server.proc.wait(20) == 0
    assert (data_folder / "storage" / "slow" / "deactivated").read_text() == "yes"


async def test_unstorable_json_is_a_400_not_a_500(api):
    err = assert_openai_error(await api.post("/v1/things", content=b'{"count": "\\ud800"}'), 400)
    assert "surrogate" in err["message"]
    # (the fixture caps bodies at 1000 bytes; 900 levels of nesting is enough to test)
    assert_openai_error(await api.post("/v1/things", content=b"[" * 900), 400)


def test_engine_ranges_treat_1_0_and_1_0_0_alike():
    from jan.host.manifest import satisfies

    assert satisfies("1.0.0", "<=1.0") and not satisfies("1.0.0", ">1.0")
    assert satisfies("0.1.0", ">=0.1,<1") and not satisfies("0.1.0", ">=0.2")
    assert satisfies("0.1.5", "^0.1") and not satisfies("0.2.0", "^0.1")


def test_broken_settings_file_is_never_overwritten_by_the_cli(data_folder):
    import subprocess
    import sys

    broken = '{"server": {"api_key": "secret"},}'
    (data_folder / "settings.json").write_text(broken)
    proc = subprocess.run([sys.executable, "-m", "jan.host.cli", "extensions", "disable", "x",
                           "--data-folder", str(data_folder)], capture_output=True, text=True)
    assert proc.returncode == 1 and "settings.json is not valid" in proc.stderr
    assert (data_folder / "settings.json").read_text() == broken
