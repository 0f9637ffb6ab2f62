"""Approval of server-side tool calls through the API: nothing runs without a recorded
decision; a denied or unanswered call never runs the tool (it would write a marker file)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from conftest import asgi_client
from waiting import eventually

pytest.importorskip("mcp")
pytestmark = pytest.mark.slow  # a real MCP server subprocess

SERVER = Path(__file__).parent / "fixtures" / "mcp_test_server.py"


@pytest.fixture
async def c(make_host, data_folder):
    (data_folder / "mcp_config.json").write_text(json.dumps({"mcpServers": {
        "demo": {"command": sys.executable, "args": [str(SERVER)]}}}))
    async with make_host(core_services=False) as jan, asgi_client(jan) as client:
        async def listed():
            r = await client.get("/v1/tools")
            return any(t["name"] == "demo__touch" for t in r.json()["data"])
        await eventually(listed, what="demo tools listed")
        yield client


async def ask(c, marker: Path, thread_id: str | None = None) -> dict:
    r = await c.post("/v1/tools/calls", json={"name": "demo__touch", "thread_id": thread_id,
                                              "arguments": {"path": str(marker)}})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "requires_approval", body
    assert body["approval"]["arguments"] == {"path": str(marker)}  # the full arguments shown
    return body["approval"]


async def test_denied_or_unanswered_call_never_runs(c, tmp_path):
    marker = tmp_path / "ran.txt"
    pending = await ask(c, marker)
    r = await c.post(f"/v1/tools/approvals/{pending['id']}/run")
    assert r.status_code == 400 and "no decision" in r.json()["error"]["message"]
    assert not marker.exists()

    r = await c.post(f"/v1/tools/approvals/{pending['id']}", json={"approve": False})
    assert r.status_code == 200 and r.json()["status"] == "denied"
    assert r.json()["decided_by"] == "api" and r.json()["decided_at"]
    r = await c.post(f"/v1/tools/approvals/{pending['id']}/run")
    assert r.json()["result"]["is_error"] and "denied" in r.json()["result"]["output"]
    again = await c.post(f"/v1/tools/approvals/{pending['id']}", json={"approve": True})
    assert again.status_code == 400  # a decision is final
    assert not marker.exists()


async def test_approved_call_runs_and_thread_scope_is_remembered(c, tmp_path):
    marker = tmp_path / "ran.txt"
    pending = await ask(c, marker, thread_id="thread_a")
    r = await c.post(f"/v1/tools/approvals/{pending['id']}",
                     json={"approve": True, "scope": "thread"})
    assert r.json()["status"] == "approved" and r.json()["scope"] == "thread"
    r = await c.post(f"/v1/tools/approvals/{pending['id']}/run")
    assert r.json()["result"]["is_error"] is False and marker.read_text() == "ran"

    marker.unlink()
    r = await c.post("/v1/tools/calls", json={"name": "demo__touch", "thread_id": "thread_a",
                                              "arguments": {"path": str(marker)}})
    assert r.json()["status"] == "completed" and marker.exists()  # allowed in this thread
    marker.unlink()
    other = await ask(c, marker, thread_id="thread_b")  # but not in another one
    assert other["thread_id"] == "thread_b" and not marker.exists()
    rows = {t["name"]: t for t in (await c.get("/v1/tools")).json()["data"]}
    assert rows["demo__touch"]["policy"] == "thread" and rows["demo__echo"]["policy"] == "ask"


async def test_bad_bodies_are_clear_errors(c):
    r = await c.post("/v1/tools/calls", json={"name": "demo__touch", "arguments": "x"})
    assert r.status_code == 400 and r.json()["error"]["message"]
    r = await c.post("/v1/tools/approvals/mcpr_nope", json={"approve": True})
    assert r.status_code == 404
