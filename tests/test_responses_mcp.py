"""``mcp`` tools in ``/v1/responses``: the server runs the model's calls to a real stdio MCP
server (from the test suite) under the user's approval policy, with ``mcp_list_tools`` /
``mcp_call`` / ``mcp_approval_request`` items and OpenAI's streaming events, validated with the
official client's types. The model is scripted here (exact calls); the last test uses SmolLM2
with a forced tool choice. A denied or unanswered call never runs (the tool writes a marker)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from conftest import asgi_client
from openai.types.responses import ResponseStreamEvent
from pydantic import TypeAdapter
from responses_fixtures import (
    SCRIPTED,
    ScriptedEngine,
    call_script,
    fake_model,
    openai_for,
    text_script,
    use_engine,
    write_model,
)
from waiting import eventually

pytest.importorskip("mcp")
pytestmark = pytest.mark.slow  # a real MCP server subprocess

SERVER = Path(__file__).parent / "fixtures" / "mcp_test_server.py"
DEMO = {"type": "mcp", "server_label": "demo", "allowed_tools": ["mark", "echo"]}
EVENT = TypeAdapter(ResponseStreamEvent)


def configure(folder: Path, marker: Path, policy: dict | None = None) -> None:
    (folder / "mcp_config.json").write_text(json.dumps({"mcpServers": {"demo": {
        "command": sys.executable, "args": [str(SERVER)],
        "env": {"MCP_TEST_MARKER": str(marker)}}}}))
    if policy is not None:
        (folder / "storage" / "tools").mkdir(parents=True, exist_ok=True)
        (folder / "storage" / "tools" / "policy.json").write_text(json.dumps(policy))


async def tools_up(http) -> None:
    async def listed():
        r = await http.get("/v1/tools")
        return any(t["name"] == "demo__mark" for t in r.json()["data"])
    await eventually(listed, timeout=60, what="demo tools listed")


@pytest.fixture
def engine() -> ScriptedEngine:
    return ScriptedEngine(text_script("ok"))


@pytest.fixture
def marker(tmp_path) -> Path:
    return tmp_path / "marker.txt"


@pytest.fixture
async def api(make_host, data_folder, engine, marker, request):
    configure(data_folder, marker, getattr(request, "param", None))
    fake_model(data_folder)
    async with make_host(settings=SCRIPTED) as jan, asgi_client(jan) as http:
        use_engine(jan, engine)
        await tools_up(http)
        yield openai_for(http), http


async def stream(http, body: dict) -> list[dict]:
    events = []
    async with http.stream("POST", "/v1/responses", json=body) as r:
        assert r.status_code == 200, await r.aread()
        async for line in r.aiter_lines():
            if line.startswith("data: "):
                event = json.loads(line[6:])
                EVENT.validate_python(event)  # the official client's event types
                events.append(event)
    return events


ALWAYS = {"servers": {"demo": "always"}}


@pytest.mark.parametrize("api", [ALWAYS], indirect=True)
async def test_allowed_call_runs_and_streams_in_openais_order(api, engine, marker):
    client, http = api
    engine.scripts = [call_script("demo__mark", '{"note": "milk"}'), text_script("Noted.")]
    events = await stream(http, {"model": "fake", "input": "Note milk", "tools": [DEMO],
                                 "stream": True})
    kinds = [e["type"] for e in events]
    assert kinds[:12] == [
        "response.created", "response.in_progress",
        "response.output_item.added", "response.mcp_list_tools.in_progress",
        "response.mcp_list_tools.completed", "response.output_item.done",
        "response.output_item.added", "response.mcp_call_arguments.delta",
        "response.mcp_call_arguments.done", "response.mcp_call.in_progress",
        "response.mcp_call.completed", "response.output_item.done"]
    assert kinds[-1] == "response.completed"
    final = events[-1]["response"]
    listing, call, answer = final["output"]
    assert listing["type"] == "mcp_list_tools" and listing["server_label"] == "demo"
    assert sorted(t["name"] for t in listing["tools"]) == ["echo", "mark"]
    assert call["type"] == "mcp_call" and call["name"] == "mark"
    assert call["status"] == "completed" and "PINEAPPLE" in call["output"]
    assert answer["content"][0]["text"] == "Noted." and marker.read_text() == "milk"
    # The model saw the MCP tools (as <server>__<tool>) and then the tool's output.
    assert {t.function.name for t in engine.requests[0].tools} == {"demo__mark", "demo__echo"}
    tool_turn = engine.requests[1].messages[-1]
    assert tool_turn.role == "tool" and "PINEAPPLE" in tool_turn.content
    assert final["usage"]["output_tokens"] == 7 + 3  # both rounds counted

    # The same through the official client (strict validation); a chain lists tools once.
    engine.scripts = [text_script("Fine.")]
    again = await client.responses.create(model="fake", input="And?", tools=[DEMO],
                                          previous_response_id=final["id"])
    assert [o.type for o in again.output] == ["message"]


async def test_approval_request_then_approved_call_runs(api, engine, marker, data_folder):
    client, http = api
    engine.scripts = [call_script("demo__mark", '{"note": "eggs"}'), text_script("Done.")]
    first = await client.responses.create(model="fake", input="Note eggs", tools=[DEMO],
                                          tool_choice={"type": "mcp", "server_label": "demo",
                                                       "name": "mark"})
    assert first.status == "completed"
    ask = first.output[-1]
    assert ask.type == "mcp_approval_request" and ask.name == "mark"
    assert json.loads(ask.arguments) == {"note": "eggs"}
    assert engine.requests[0].tool_choice.name == "demo__mark"
    assert not marker.exists(), "nothing runs before a decision"

    second = await client.responses.create(
        model="fake", previous_response_id=first.id, tools=[DEMO],
        input=[{"type": "mcp_approval_response", "approval_request_id": ask.id,
                "approve": True}])
    call, answer = second.output
    assert call.type == "mcp_call" and call.approval_request_id == ask.id
    assert call.status == "completed" and "PINEAPPLE" in call.output
    assert answer.type == "message" and second.output_text == "Done."
    assert marker.read_text() == "eggs"
    record = (await http.get(f"/v1/tools/approvals/{ask.id}")).json()
    assert record["status"] == "approved" and record["decided_by"] == "api:/v1/responses"
    turns = engine.requests[-1].messages  # the model sees the call and its output
    assert turns[-2].tool_calls[0].name == "demo__mark" and "PINEAPPLE" in turns[-1].content

    # A decision is final: answering the same request the other way is refused.
    r = await http.post("/v1/responses", json={
        "model": "fake", "previous_response_id": first.id, "tools": [DEMO],
        "input": [{"type": "mcp_approval_response", "approval_request_id": ask.id,
                   "approve": False}]})
    assert r.status_code == 400 and "already approved" in r.json()["error"]["message"]
    assert marker.read_text() == "eggs"


async def test_denied_or_unanswered_call_never_runs(api, engine, marker):
    client, http = api
    mark = call_script("demo__mark", '{"note": "x"}')
    engine.scripts = [mark, mark, text_script("Understood.")]
    first = await client.responses.create(model="fake", input="Note x", tools=[DEMO])
    ask = first.output[-1]
    assert ask.type == "mcp_approval_request"
    unanswered = await client.responses.create(model="fake", input="Note y", tools=[DEMO])
    assert unanswered.output[-1].type == "mcp_approval_request"
    denied = await client.responses.create(
        model="fake", previous_response_id=first.id, tools=[DEMO],
        input=[{"type": "mcp_approval_response", "approval_request_id": ask.id,
                "approve": False, "reason": "no"}])
    call = denied.output[0]
    assert call.type == "mcp_call" and call.status == "failed" and call.output is None
    assert denied.output_text == "Understood."
    assert "denied" in engine.requests[-1].messages[-1].content
    assert not marker.exists()

    r = await http.post("/v1/responses", json={
        "model": "fake", "tools": [DEMO], "input": [{
            "type": "mcp_approval_response", "approval_request_id": "mcpr_nope",
            "approve": True}]})
    assert r.status_code == 400 and "mcpr_nope" in r.json()["error"]["message"]
    # Only a request of this response's own history can be answered here: the unanswered
    # one belongs to another chain, and stays pending (so it can never run through this one).
    other = unanswered.output[-1].id
    r = await http.post("/v1/responses", json={
        "model": "fake", "tools": [DEMO], "previous_response_id": first.id, "input": [{
            "type": "mcp_approval_response", "approval_request_id": other, "approve": True}]})
    assert r.status_code == 400 and "history" in r.json()["error"]["message"]
    assert (await http.get(f"/v1/tools/approvals/{other}")).json()["status"] == "pending"
    assert not marker.exists()


@pytest.mark.parametrize("api", [ALWAYS], indirect=True)
async def test_max_tool_calls_stops_the_loop_with_an_answer(api, engine, marker):
    client, _ = api
    echo = call_script("demo__echo", '{"text": "again"}')
    engine.scripts = [echo, text_script("Stopping.")]
    r = await client.responses.create(model="fake", input="Echo forever", tools=[DEMO],
                                      max_tool_calls=1)
    assert r.status == "completed" and r.max_tool_calls == 1
    assert [o.type for o in r.output] == ["mcp_list_tools", "mcp_call", "message"]
    assert engine.requests[-1].tools is None  # the budget is spent: answer without tools
    assert r.output_text == "Stopping."

    # A model that calls anyway: the call is not run, and the response ends there.
    engine.scripts = [echo, echo, text_script("never asked")]
    r = await client.responses.create(model="fake", input="Echo forever", tools=[DEMO],
                                      max_tool_calls=1)
    calls = [o for o in r.output if o.type == "mcp_call"]
    assert [c.status for c in calls] == ["completed", "incomplete"]
    assert "max_tool_calls (1)" in json.dumps(calls[1].error.model_dump())
    assert r.status == "completed" and len(engine.requests) == 2 + 2


async def test_bad_mcp_requests_are_clear_400s(api):
    _, http = api
    cases = [
        ({"tools": [{"type": "mcp", "server_label": "nope"}]}, "tools[0].server_label", "nope"),
        ({"tools": [{"type": "mcp", "server_label": "demo", "server_url": "http://x"}]},
         "tools[0].server_url", "mcp_config.json"),
        ({"tools": [DEMO], "tool_choice": {"type": "mcp", "server_label": "demo",
                                           "name": "crash"}}, "tool_choice.name", "crash"),
        ({"include": ["reasoning.encrypted_content"]}, "include[0]", "not supported"),
    ]
    for extra, param, words in cases:
        r = await http.post("/v1/responses", json={"model": "fake", "input": "hi", **extra})
        assert r.status_code == 400, (extra, r.text)
        err = r.json()["error"]
        assert err["param"] == param and words in err["message"], err


async def test_smollm2_forced_mcp_call_approved_through_the_api(make_host, data_folder,
                                                                smollm_path, marker):
    configure(data_folder, marker)
    write_model(data_folder, smollm_path)
    async with make_host() as jan, asgi_client(jan) as http:
        await tools_up(http)
        client = openai_for(http)
        first = await client.responses.create(
            model="smollm2", input="Note: buy milk", max_output_tokens=40,
            tools=[{"type": "mcp", "server_label": "demo", "allowed_tools": ["mark"]}],
            tool_choice={"type": "mcp", "server_label": "demo", "name": "mark"})
        ask = first.output[-1]
        assert ask.type == "mcp_approval_request" and isinstance(
            json.loads(ask.arguments), dict)
        assert not marker.exists()
        second = await client.responses.create(
            model="smollm2", previous_response_id=first.id, max_output_tokens=30,
            tools=[{"type": "mcp", "server_label": "demo", "allowed_tools": ["mark"]}],
            input=[{"type": "mcp_approval_response", "approval_request_id": ask.id,
                    "approve": True}])
        assert second.status in ("completed", "incomplete")
        assert second.output[0].type == "mcp_call" and "PINEAPPLE" in second.output[0].output
        assert marker.exists()


async def test_time_budget_stops_the_loop_with_an_answer(make_host, data_folder, engine,
                                                         marker):
    configure(data_folder, marker, ALWAYS)
    fake_model(data_folder)
    settings = {**SCRIPTED, "extensions": {"responses": {"tool_loop_timeout": 0.001}}}
    async with make_host(settings=settings) as jan, asgi_client(jan) as http:
        use_engine(jan, engine)
        await tools_up(http)
        echo = call_script("demo__echo", '{"text": "again"}')
        engine.scripts = [echo, echo, text_script("Out of time.")]
        r = await openai_for(http).responses.create(model="fake", input="Echo", tools=[DEMO])
    statuses = [o.status for o in r.output if o.type == "mcp_call"]
    # Checked before each call: the first may start inside the budget, a later one never does,
    # and once it is spent the model gets no tools; a model calling anyway ends the response.
    assert statuses[-1] == "incomplete" and "completed" not in statuses[1:]
    last = [o for o in r.output if o.type == "mcp_call"][-1]
    assert "time budget (0.001s)" in json.dumps(last.error.model_dump())
    assert engine.requests[-1].tools is None and r.status == "completed"
    assert len(engine.requests) <= 3
