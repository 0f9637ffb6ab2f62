"""Hot reload and extension management against a running host (watcher on)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import asgi_client
from host_fixtures import VERSIONED_ROUTE, write_extension
from waiting import eventually

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "message-counter"



def jan_cli(*args: str, folder: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "jan.host.cli", *args, "--data-folder",
                           str(folder)], capture_output=True, text=True, timeout=300)


@pytest.fixture
async def live(make_host, data_folder):
    async with make_host(bundled=None, core_services=False, watch=True) as jan:
        async with asgi_client(jan) as c:
            yield jan, c


async def version_is(c, expected):
    r = await c.get("/x/live")
    return r.status_code == 200 and r.json() == {"version": expected}


async def test_edit_then_broken_edit_then_fix(live, data_folder):
    jan, c = live
    ext_dir = data_folder / "extensions"
    write_extension(ext_dir, "live", body=VERSIONED_ROUTE.format(version=1))
    assert await eventually(lambda: version_is(c, 1)), "new extension never activated"

    (ext_dir / "live" / "main.py").write_text(textwrap.dedent(VERSIONED_ROUTE.format(version=2)))
    assert await eventually(lambda: version_is(c, 2)), "edit not served"

    (ext_dir / "live" / "main.py").write_text("def broken(:\n")
    await eventually(lambda: _has_reason(c, "SyntaxError"))
    health = (await c.get("/health")).json()
    row = {e["id"]: e for e in health["extensions"]}["live"]
    assert row["state"] == "active" and "SyntaxError" in row["reason"]
    assert await version_is(c, 2), "the old version must keep serving"

    (ext_dir / "live" / "main.py").write_text(textwrap.dedent(VERSIONED_ROUTE.format(version=3)))
    assert await eventually(lambda: version_is(c, 3)), "fixed version not served"
    row = {e["id"]: e for e in (await c.get("/health")).json()["extensions"]}["live"]
    assert row["reason"] is None


async def _has_reason(c, text):
    rows = (await c.get("/health")).json()["extensions"]
    return any(text in (r["reason"] or "") for r in rows)


STREAM_BODY = """
    import asyncio
    from jan.sdk import Extension, hookimpl
    from jan.sdk.http import StreamingResponse, json_response

    class Ext(Extension):
        @hookimpl
        def register_routes(self, register):
            register("/x/stream", self.stream, methods=["GET"])
            register("/x/live", self.live, methods=["GET"])

        async def live(self, request):
            return json_response({{"version": {version}}})

        async def stream(self, request):
            async def body():
                for i in range(20):
                    await asyncio.sleep(0.05)
                    yield f"{{i}}\\n".encode()
            return StreamingResponse(body())
"""


async def test_stream_in_flight_completes_across_reload(live, data_folder):
    jan, c = live
    ext_dir = data_folder / "extensions"
    write_extension(ext_dir, "live", body=STREAM_BODY.format(version=1))
    assert await eventually(lambda: version_is(c, 1))
    stream = asyncio.create_task(c.get("/x/stream"))
    await eventually(lambda: jan.host.records["live"].inflight > 0, what="the stream to start")
    (ext_dir / "live" / "main.py").write_text(textwrap.dedent(STREAM_BODY.format(version=2)))

    async def reloading():
        return jan.host.records["live"].state == "reloading"

    assert await eventually(reloading, timeout=5), "the reload should wait for the stream"
    # A request arriving mid-reload waits for the new version instead of failing.
    assert (await c.get("/x/live")).json() == {"version": 2}
    r = await stream
    assert r.status_code == 200
    assert r.text.split() == [str(i) for i in range(20)]


async def test_install_folder_events_route_then_uninstall(live, data_folder):
    jan, c = live
    proc = jan_cli("extensions", "install", str(EXAMPLE / "jan_message_counter"),
                   folder=data_folder)
    assert proc.returncode == 0, proc.stderr

    async def counter_ready():
        return (await c.get("/v1/message-counter")).status_code == 200

    assert await eventually(counter_ready)
    await jan.host.bus.emit("message.created", {"thread_id": "t1"})
    await jan.host.bus.drain()
    body = (await c.get("/v1/message-counter")).json()
    assert body == {"greeting": "hello", "total": 1, "threads": {"t1": 1}}
    assert jan.host.bus.handlers("message-counter") == ["message.created"]

    proc = jan_cli("extensions", "uninstall", "message-counter", folder=data_folder)
    assert proc.returncode == 0, proc.stderr

    async def gone():
        return (await c.get("/v1/message-counter")).status_code == 404

    assert await eventually(gone)
    assert jan.host.bus.handlers("message-counter") == []
    assert "message-counter" not in jan.host.records


async def test_install_from_wheel(live, data_folder, tmp_path):
    jan, c = live
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                            "-w", str(tmp_path), str(EXAMPLE)],
                           capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    (wheel,) = tmp_path.glob("jan_message_counter-*.whl")
    proc = jan_cli("extensions", "install", str(wheel), folder=data_folder)
    assert proc.returncode == 0, proc.stderr
    assert (data_folder / "extensions" / "message-counter-0.1.0" / "extension.toml").is_file()

    async def ready():
        return (await c.get("/v1/message-counter")).status_code == 200

    assert await eventually(ready)


async def test_install_rejects_incompatible_engine(data_folder, tmp_path):
    src = write_extension(tmp_path, "future", manifest_extra='[engines]\njan = ">=99"\n')
    proc = jan_cli("extensions", "install", str(src), folder=data_folder)
    assert proc.returncode == 1 and "needs jan >=99" in proc.stderr
    assert list((data_folder / "extensions").iterdir()) == []


async def test_disable_enable_live_and_persisted(live, data_folder, make_host):
    jan, c = live
    write_extension(data_folder / "extensions", "toggled")
    assert await eventually(lambda: _status(c, "/x/toggled", 200))
    assert jan_cli("extensions", "disable", "toggled", folder=data_folder).returncode == 0
    assert await eventually(lambda: _status(c, "/x/toggled", 404))
    assert jan.host.records["toggled"].state == "disabled"
    listing = jan_cli("extensions", "list", "--json", folder=data_folder)
    assert {r["id"]: r["state"] for r in json.loads(listing.stdout)}["toggled"] == "disabled"
    assert jan_cli("extensions", "enable", "toggled", folder=data_folder).returncode == 0
    assert await eventually(lambda: _status(c, "/x/toggled", 200))


async def _status(c, path, status):
    return (await c.get(path)).status_code == status


PROVIDER_BODY = """
    from jan.sdk import Extension
    class Ext(Extension):
        def activate(self, ctx):
            ctx.services.provide("greeter", self)
        def greet(self):
            return "{word}"
"""

CONSUMER_BODY = """
    from jan.sdk import Extension, hookimpl
    from jan.sdk.http import json_response
    class Ext(Extension):
        def activate(self, ctx):
            self.ctx = ctx
        @hookimpl
        def register_routes(self, register):
            register("/x/greet", self.greet, methods=["GET"])
        async def greet(self, request):
            return json_response({"word": self.ctx.services.get("greeter").greet()})
"""


async def test_provider_swap_through_settings_without_restart(live, data_folder):
    jan, c = live
    ext_dir = data_folder / "extensions"
    write_extension(ext_dir, "hello-provider", body=PROVIDER_BODY.format(word="hello"),
                    manifest_extra='provides = ["greeter"]\n')
    write_extension(ext_dir, "consumer", body=CONSUMER_BODY,
                    manifest_extra='requires = ["greeter"]\n')
    assert await eventually(lambda: _word(c, "hello"))
    write_extension(ext_dir, "bonjour-provider", body=PROVIDER_BODY.format(word="bonjour"),
                    manifest_extra='provides = ["greeter"]\nactivation_events = []\n'
                    .replace('activation_events = []\n', ''),
                    activation="[]")
    await eventually(lambda: "bonjour-provider" in jan.host.records, what="the new provider")
    assert await _word(c, "hello")
    (data_folder / "settings.json").write_text(
        json.dumps({"modules": {"greeter": "bonjour-provider"}}))
    assert await eventually(lambda: _word(c, "bonjour")), "provider swap not applied"


async def _word(c, word):
    r = await c.get("/x/greet")
    return r.status_code == 200 and r.json() == {"word": word}


def test_scaffolded_extension_works(data_folder, jan_server):
    proc = jan_cli("extensions", "new", "my-ext", folder=data_folder)
    assert proc.returncode == 0, proc.stderr
    import httpx

    server = jan_server()
    r = httpx.get(server.url + "/v1/my-ext")
    assert r.status_code == 200 and r.json() == {"extension": "my-ext", "messages_seen": 0}


SETTINGS_BODY = """
    from jan.sdk import Extension, hookimpl
    from jan.sdk.http import json_response

    class Ext(Extension):
        def activate(self, ctx):
            self.ctx = ctx
        @hookimpl
        def register_routes(self, register):
            register("/x/greeting", self.show, methods=["GET"])
        async def show(self, request):
            return json_response({"greeting": self.ctx.settings["greeting"]})
"""


async def test_extension_settings_change_applies_live(live, data_folder):
    jan, c = live
    write_extension(data_folder / "extensions", "greeter", body=SETTINGS_BODY,
                    manifest_extra='[contributes.settings]\ngreeting = "hello"\n')

    async def says(word):
        r = await c.get("/x/greeting")
        return r.status_code == 200 and r.json() == {"greeting": word}

    assert await eventually(lambda: says("hello"))
    (data_folder / "settings.json").write_text(
        json.dumps({"extensions": {"greeter": {"greeting": "bonjour"}}}))
    assert await eventually(lambda: says("bonjour")), "settings change not applied"


SLOW_ACTIVATE_BODY = """
    import time
    from jan.sdk import Extension, hookimpl
    from jan.sdk.http import json_response

    class Ext(Extension):
        async def activate(self, ctx):
            import asyncio
            await asyncio.sleep(0.8)

        @hookimpl
        def register_routes(self, register):
            register("/x/live", self.live, methods=["GET"])

        async def live(self, request):
            return json_response({{"version": {version}}})
"""


async def test_request_during_a_slow_activation_waits_instead_of_404(live, data_folder):
    jan, c = live
    ext_dir = data_folder / "extensions"
    write_extension(ext_dir, "live", body=SLOW_ACTIVATE_BODY.format(version=1))
    assert await eventually(lambda: version_is(c, 1))
    (ext_dir / "live" / "main.py").write_text(
        textwrap.dedent(SLOW_ACTIVATE_BODY.format(version=2)))

    async def reloading():
        return jan.host.records["live"].state == "reloading"

    assert await eventually(reloading, timeout=5)
    await asyncio.sleep(0.2)  # the old routes are gone, the new activate is still sleeping
    assert (await c.get("/x/live")).json() == {"version": 2}
