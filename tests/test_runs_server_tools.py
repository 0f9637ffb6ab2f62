"""A run whose assistant lists an MCP server's tool: the real SmolLM2 (forced tool choice)
calls it, the run pauses for approval (full arguments shown), and continues with the tool's
output once approved through the API; a denied call never runs (no marker file)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from sandbox_fixtures import asgi_client, write_assistant, write_model
from waiting import eventually

pytest.importorskip("mcp")
pytestmark = pytest.mark.slow

SERVER = Path(__file__).parent / "fixtures" / "mcp_test_server.py"
FORCE = {"type": "function", "function": {"name": "demo__mark"}}


@pytest.fixture
async def api(make_host, data_folder, smollm_path, tmp_path):
    marker = tmp_path / "marker.txt"
    (data_folder / "mcp_config.json").write_text(json.dumps({"mcpServers": {"demo": {
        "command": sys.executable, "args": [str(SERVER)],
        "env": {"MCP_TEST_MARKER": str(marker)}}}}))
    write_model(data_folder, smollm_path, max_tokens=30)
    write_assistant(data_folder, "noter", None, name="Noter", model="smollm2",
                    instructions="You take notes.",
                    tools=[{"type": "mcp", "server_label": "demo", "allowed_tools": ["mark"]}])
    async with make_host(settings={"sandbox": {"autostart": False}}) as jan, \
            asgi_client(jan) as http:
        yield http, marker


async def start_run(http) -> tuple[str, dict]:
    r = await http.post("/v1/threads/runs", json={
        "assistant_id": "noter", "tool_choice": FORCE,
        "thread": {"messages": [{"role": "user", "content": "Note: buy milk"}]}})
    assert r.status_code == 200, r.text
    run = r.json()

    async def paused():
        got = (await http.get(f"/v1/threads/{run['thread_id']}/runs/{run['id']}")).json()
        return got if got["status"] not in ("queued", "in_progress") else None
    run = await eventually(paused, timeout=120, what="run paused")
    assert run["status"] == "requires_action", run
    return run["thread_id"], run


async def finished(http, thread_id, run_id) -> dict:
    async def done():
        got = (await http.get(f"/v1/threads/{thread_id}/runs/{run_id}")).json()
        return got if got["status"] in ("completed", "failed", "expired") else None
    return await eventually(done, timeout=120, what="run finished")


async def test_run_pauses_for_approval_then_uses_the_mcp_tool(api, data_folder):
    http, marker = api
    thread_id, run = await start_run(http)
    approvals = run["required_action"]["jan_tool_approvals"]
    assert [a["name"] for a in approvals] == ["demo__mark"]
    assert isinstance(approvals[0]["arguments"], dict)  # the full arguments shown
    assert not marker.exists(), "nothing runs before a decision"
    r = await http.post(f"/v1/tools/approvals/{approvals[0]['approval_id']}",
                        json={"approve": True})
    assert r.status_code == 200, r.text
    run = await finished(http, thread_id, run["id"])
    assert run["status"] == "completed", run.get("last_error")
    assert marker.exists()
    lines = (data_folder / "threads" / thread_id / "messages.jsonl").read_text().splitlines()
    calls = [c for m in map(json.loads, lines)
             for c in (m.get("metadata") or {}).get("tool_calls") or []]
    assert calls and "PINEAPPLE" in calls[0]["response"]["content"]


async def test_denied_call_never_runs_the_tool(api):
    http, marker = api
    thread_id, run = await start_run(http)
    approval = run["required_action"]["jan_tool_approvals"][0]
    r = await http.post(f"/v1/tools/approvals/{approval['approval_id']}",
                        json={"approve": False})
    assert r.json()["status"] == "denied"
    run = await finished(http, thread_id, run["id"])
    assert run["status"] == "completed", run.get("last_error")
    assert not marker.exists()
