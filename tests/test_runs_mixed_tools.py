"""A run round in which the model calls a server tool and a client (function) tool together:
the server tool runs here once approved, then the run asks the client for the function's
output only, and both outputs reach the model. Scripted engine (two calls in one turn)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from conftest import asgi_client
from waiting import eventually

FIXTURES = Path(__file__).with_name("fixtures")
LOOKUP = {"type": "function", "function": {"name": "lookup", "parameters": {
    "type": "object", "properties": {"q": {"type": "string"}}}}}


def scripted(folder: Path) -> dict:
    shutil.copytree(FIXTURES / "scripted-engine", folder / "extensions" / "scripted-engine")
    helper = folder / "assistants" / "mixer"
    helper.mkdir(parents=True)
    (helper / "assistant.json").write_text(json.dumps({
        "id": "mixer", "name": "Mixer", "model": "*", "instructions": "Use tools.",
        "tools": [{"type": "server", "name": "ui_echo"}, LOOKUP]}))
    return {"modules": {"inference": "scripted-engine"}}


async def status_of(http, thread_id: str, run_id: str, *wanted: str) -> dict:
    async def reached():
        got = (await http.get(f"/v1/threads/{thread_id}/runs/{run_id}")).json()
        return got if got["status"] in wanted else None
    return await eventually(reached, what=f"run status in {wanted}")


async def test_a_round_mixing_server_and_client_tools(make_host, data_folder):
    async with make_host(settings=scripted(data_folder)) as jan, asgi_client(jan) as http:
        r = await http.post("/v1/threads/runs", json={
            "assistant_id": "mixer",
            "thread": {"messages": [{"role": "user", "content":
                                     'tools:ui_echo:{"text": "hi"}|lookup:{"q": "b"}'}]}})
        assert r.status_code == 200, r.text
        run = r.json()
        thread_id = run["thread_id"]

        # First the server tool's approval, the only call listed: the client runs nothing.
        paused = await status_of(http, thread_id, run["id"], "requires_action", "failed")
        action = paused["required_action"]
        assert [a["name"] for a in action["jan_tool_approvals"]] == ["ui_echo"]
        assert [c["function"]["name"] for c in action["submit_tool_outputs"]["tool_calls"]] \
            == ["ui_echo"]
        tool_log = data_folder / "storage" / "scripted-engine" / "tool-calls.jsonl"
        assert not tool_log.exists()
        approval = action["jan_tool_approvals"][0]["approval_id"]
        assert (await http.post(f"/v1/tools/approvals/{approval}",
                                json={"approve": True})).status_code == 200

        # Then the function tool alone goes to the client.
        async def client_turn():
            got = await status_of(http, thread_id, run["id"], "requires_action", "failed")
            return got if not got["required_action"].get("jan_tool_approvals") else None
        asked = await eventually(client_turn, what="the client's part of the round")
        calls = asked["required_action"]["submit_tool_outputs"]["tool_calls"]
        assert [c["function"]["name"] for c in calls] == ["lookup"]
        assert [json.loads(line) for line in tool_log.read_text().splitlines()] == [
            {"text": "hi"}]
        r = await http.post(f"/v1/threads/{thread_id}/runs/{run['id']}/submit_tool_outputs",
                            json={"tool_outputs": [{"tool_call_id": calls[0]["id"],
                                                    "output": "from the client"}]})
        assert r.status_code == 200, r.text

        done = await status_of(http, thread_id, run["id"], "completed", "failed")
        assert done["status"] == "completed", done.get("last_error")
        messages = (await http.get(f"/v1/threads/{thread_id}/messages")).json()["data"]
        assert messages[0]["content"][0]["text"]["value"] == "Tool said: from the client"
        sent = [json.loads(line) for line in (
            data_folder / "storage" / "scripted-engine" / "requests.jsonl").read_text(
            ).splitlines()][-1]["messages"]
        outputs = {m["tool_call_id"]: m["content"] for m in sent if m["role"] == "tool"}
        assert outputs == {"call_scripted_0": 'echo {"text": "hi"}',
                           "call_scripted_1": "from the client"}
