"""Server-side tools: the ``tools`` service over extension tools and a real stdio MCP server
(tests/fixtures/mcp_test_server.py, on the official ``mcp`` SDK, no network)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import asgi_client, free_port
from host_fixtures import write_extension
from waiting import eventually

pytest.importorskip("mcp")
pytestmark = pytest.mark.slow  # real MCP server subprocesses

SERVER = Path(__file__).parent / "fixtures" / "mcp_test_server.py"

TOOL_EXT = """
    from jan.sdk import Extension, hookimpl
    from jan.sdk.tools import ToolSpec

    class Ext(Extension):
        @hookimpl
        def register_tools(self, register):
            async def shout(args):
                return args.get("text", "").upper() + "{suffix}"
            register(ToolSpec(name="{name}", description="Shout", call=shout,
                              source="extension:shouter", server="shouter"))
"""


def write_mcp_config(folder: Path, servers: dict) -> None:
    (folder / "mcp_config.json").write_text(json.dumps({"mcpServers": servers}))


def demo(**extra) -> dict:
    return {"command": sys.executable, "args": [str(SERVER)], **extra}


@pytest.fixture
async def live(make_host, data_folder):
    async with make_host(core_services=False, watch=True) as jan, asgi_client(jan) as c:
        yield jan, c


def tools_of(jan):
    return jan.host.services.get("tools")


async def tool_names(c) -> set[str]:
    r = await c.get("/v1/tools")
    assert r.status_code == 200, r.text
    return {t["name"] for t in r.json()["data"]}


async def test_mcp_tools_listed_and_called(live, data_folder):
    jan, c = live
    write_mcp_config(data_folder, {"demo": demo()})
    await eventually(lambda: _has(c, "demo__echo"), what="demo tools listed")
    rows = {t["name"]: t for t in (await c.get("/v1/tools")).json()["data"]}
    assert rows["demo__add"]["source"] == "mcp:demo"
    assert rows["demo__add"]["parameters"]["required"] == ["a", "b"]
    result = await tools_of(jan).call("demo__add", {"a": 2, "b": 40})
    assert (result.output, result.is_error) == ("42", False)
    missing = await tools_of(jan).call("demo__nope", {})
    assert missing.is_error and "no tool named" in missing.output


async def _has(c, name: str) -> bool:
    return name in await tool_names(c)


async def test_hanging_tool_times_out_and_huge_output_is_capped(live, data_folder):
    jan, c = live
    write_mcp_config(data_folder, {"demo": demo()})
    await eventually(lambda: _has(c, "demo__big"), what="demo tools listed")
    capped = await tools_of(jan).call("demo__big", {"size": 200_000}, max_output=1000)
    assert capped.truncated and not capped.is_error
    assert capped.output.startswith("x" * 1000) and "output truncated" in capped.output
    assert len(capped.output.encode()) < 1200
    hung = await tools_of(jan).call("demo__sleep", {"seconds": 30}, timeout=1)
    assert hung.is_error and "timed out" in hung.output


async def test_crashing_server_is_reported_then_reconnected(live, data_folder):
    jan, c = live
    write_mcp_config(data_folder, {"demo": demo()})
    await eventually(lambda: _has(c, "demo__crash"), what="demo tools listed")
    crashed = await tools_of(jan).call("demo__crash", {}, timeout=10)
    assert crashed.is_error, crashed
    assert "demo__echo" in await tool_names(c), "the last known tools stay listed"

    async def restarted():
        status = (await c.get("/v1/mcp/servers")).json()["servers"][0]
        return status["restarts"] >= 1 and status["connected"]
    await eventually(restarted, timeout=30, what="server restarted")
    again = await tools_of(jan).call("demo__echo", {"text": "back"})
    assert (again.output, again.is_error) == ("back", False)
    # /health keeps the crash (error and time) after the reconnect.
    health = (await c.get("/health")).json()["mcp"]["servers"][0]
    assert health["name"] == "demo" and health["connected"] and health["failures"] >= 1
    assert health["last_failure"]["error"] and health["last_failure"]["at"] > 0


async def test_server_that_cannot_start_gives_a_clear_error(live, data_folder):
    jan, c = live
    write_mcp_config(data_folder, {"broken": {"command": str(data_folder / "no-such-binary")}})

    async def reported():
        servers = (await c.get("/v1/mcp/servers")).json()["servers"]
        return servers and servers[0]["error"]
    assert await eventually(reported, what="start failure reported")
    assert await tool_names(c) == set() or "broken__" not in "".join(await tool_names(c))
    whole = (await c.get("/health")).json()
    assert whole["status"] == "degraded"
    assert any("MCP server 'broken' is down" in p for p in whole["problems"])
    health = whole["mcp"]
    assert health["failing"] == ["broken"]
    broken = health["servers"][0]
    assert broken["error"] and not broken["connected"] and broken["last_failure"]["at"] > 0


async def test_health_answers_while_a_tool_hangs(live, data_folder):
    jan, c = live
    write_mcp_config(data_folder, {"demo": demo()})
    await eventually(lambda: _has(c, "demo__sleep"), what="demo tools listed")
    hanging = asyncio.ensure_future(tools_of(jan).call("demo__sleep", {"seconds": 30},
                                                       timeout=60))
    try:
        r = await c.get("/health")
        assert r.status_code == 200 and r.json()["mcp"]["servers"][0]["connected"]
        assert not hanging.done(), "/health answered while the tool still ran"
    finally:
        hanging.cancel()


async def test_streamable_http_server(live, data_folder):
    jan, c = live
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(SERVER), "http", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        write_mcp_config(data_folder, {"web": {"url": f"http://127.0.0.1:{port}/mcp"}})
        await eventually(lambda: _has(c, "web__echo"), timeout=60, what="http tools listed")
        result = await tools_of(jan).call("web__add", {"a": 2, "b": 40})
        assert (result.output, result.is_error) == ("42", False)
        status = (await c.get("/v1/mcp/servers")).json()["servers"][0]
        assert status["connected"] and status["url"].endswith("/mcp")
    finally:
        proc.terminate()
        proc.wait(10)


async def test_config_edit_adds_and_removes_a_server_live(live, data_folder):
    jan, c = live
    assert not any(n.startswith("demo__") for n in await tool_names(c))
    write_mcp_config(data_folder, {"demo": demo()})
    await eventually(lambda: _has(c, "demo__echo"), what="server added live")
    write_mcp_config(data_folder, {})

    async def gone():
        return not any(n.startswith("demo__") for n in await tool_names(c))
    await eventually(gone, what="server removed live")


async def test_secrets_are_never_echoed(live, data_folder, monkeypatch):
    jan, c = live
    monkeypatch.setenv("MCP_TEST_SECRET", "s3cr3t-value")
    write_mcp_config(data_folder, {"demo": demo(env={"TOKEN": "env:MCP_TEST_SECRET",
                                                     "OTHER": "literal-secret"})})
    await eventually(lambda: _has(c, "demo__echo"), what="demo tools listed")
    body = (await c.get("/v1/mcp/servers")).text
    assert "TOKEN" in body and "s3cr3t" not in body and "literal-secret" not in body


async def test_extension_tool_added_and_removed_by_hot_reload(live, data_folder):
    jan, c = live
    ext_dir = data_folder / "extensions"
    write_extension(ext_dir, "shouter", body=TOOL_EXT.format(name="shout", suffix="!"))
    await eventually(lambda: _has(c, "shout"), what="extension tool registered")
    assert (await tools_of(jan).call("shout", {"text": "hi"})).output == "HI!"
    write_extension(ext_dir, "shouter", body=TOOL_EXT.format(name="shout", suffix="?!"))

    async def reloaded():
        return (await tools_of(jan).call("shout", {"text": "hi"})).output == "HI?!"
    await eventually(reloaded, what="reloaded tool used")
    import shutil
    shutil.rmtree(ext_dir / "shouter")

    async def gone():
        return "shout" not in await tool_names(c)
    await eventually(gone, what="tool taken back on unload")
