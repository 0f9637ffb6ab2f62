"""Budgets of the server-side tool loop in runs: ``max_tool_calls`` (run request, or the
assistant's ``metadata.max_tool_calls``) and the ``tool_time_budget`` setting. A model that
keeps calling a real MCP tool (scripted) ends the run ``incomplete`` with the reason, and the
refused calls never run."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from conftest import asgi_client
from responses_fixtures import SCRIPTED, ScriptedEngine, call_script, fake_model, use_engine
from sandbox_fixtures import write_assistant
from waiting import eventually

pytest.importorskip("mcp")
pytestmark = pytest.mark.slow  # a real MCP server subprocess

SERVER = Path(__file__).parent / "fixtures" / "mcp_test_server.py"


async def run_to_end(make_host, data_folder, tmp_path, *, settings=None, body=None,
                     metadata=None) -> tuple[dict, list[str]]:
    """A run whose model calls ``demo__touch`` forever; the run and the files it wrote."""
    (data_folder / "mcp_config.json").write_text(json.dumps({"mcpServers": {"demo": {
        "command": sys.executable, "args": [str(SERVER)]}}}))
    (data_folder / "storage" / "tools").mkdir(parents=True, exist_ok=True)
    (data_folder / "storage" / "tools" / "policy.json").write_text(
        json.dumps({"servers": {"demo": "always"}}))
    fake_model(data_folder)
    write_assistant(data_folder, "toucher", None, name="Toucher", model="fake",
                    metadata=metadata or {}, tools=[{"type": "mcp", "server_label": "demo"}])
    scripts = [call_script("demo__touch", json.dumps({"path": str(tmp_path / f"t{n}")}),
                           call_id=f"call_{n}") for n in range(5)]
    engine = ScriptedEngine(*scripts)
    async with make_host(settings={**SCRIPTED, **(settings or {})}) as jan, \
            asgi_client(jan) as http:
        use_engine(jan, engine)

        async def listed():
            r = await http.get("/v1/tools")
            return any(t["name"] == "demo__touch" for t in r.json()["data"])
        await eventually(listed, timeout=60, what="demo tools listed")
        r = await http.post("/v1/threads/runs", json={
            "assistant_id": "toucher", **(body or {}),
            "thread": {"messages": [{"role": "user", "content": "touch files"}]}})
        assert r.status_code == 200, r.text
        run = r.json()

        async def ended():
            got = (await http.get(f"/v1/threads/{run['thread_id']}/runs/{run['id']}")).json()
            return got if got["status"] not in ("queued", "in_progress") else None
        run = await eventually(ended, timeout=60, what="run ended")
    return run, sorted(p.name for p in tmp_path.glob("t*"))


async def test_max_tool_calls_from_the_request(make_host, data_folder, tmp_path):
    run, touched = await run_to_end(make_host, data_folder, tmp_path,
                                    body={"max_tool_calls": 2})
    assert run["status"] == "incomplete", run
    assert run["incomplete_details"]["reason"] == "max_tool_calls"
    assert touched == ["t0", "t1"]  # the third call never ran


async def test_max_tool_calls_from_the_assistant(make_host, data_folder, tmp_path):
    run, touched = await run_to_end(make_host, data_folder, tmp_path,
                                    metadata={"max_tool_calls": "1"})
    assert run["status"] == "incomplete" and touched == ["t0"]


async def test_time_budget_ends_the_loop(make_host, data_folder, tmp_path):
    run, touched = await run_to_end(make_host, data_folder, tmp_path, settings={
        "extensions": {"runs": {"tool_time_budget": 0.001}}})
    assert run["status"] == "incomplete", run
    assert run["incomplete_details"]["reason"] == "tool_time_budget"
    assert "0.001s" in run["incomplete_details"]["message"]
    # The budget is checked before each round of calls: one round may start inside it (the
    # scripted model answers in well under a millisecond), never a second one.
    assert touched in ([], ["t0"])
