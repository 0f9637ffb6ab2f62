"""Assistant runs with a function tool, the real SmolLM2 model and the official client:
requires_action → submit_tool_outputs → completed, polled and streamed, with run steps and the
calls kept in messages.jsonl in Jan's message shape."""

from __future__ import annotations

import json

import pytest
from sandbox_fixtures import asgi_client, client_for, write_assistant, write_model

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}


@pytest.fixture
async def api(make_host, data_folder, smollm_path):
    write_model(data_folder, smollm_path, max_tokens=40)
    write_assistant(data_folder, "weather", None, name="Weather", model="smollm2",
                    instructions="You tell the weather.", tools=[WEATHER])
    async with make_host(settings={"sandbox": {"autostart": False}}) as jan, \
            asgi_client(jan) as http:
        yield client_for(http), http


async def test_function_tool_run_polls_through_requires_action(api, data_folder):
    client, _ = api
    thread = await client.beta.threads.create(
        messages=[{"role": "user", "content": "Weather in Paris?"}])
    run = await client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id="weather", tool_choice="required",
        poll_interval_ms=50)
    assert run.status == "requires_action", run.last_error
    assert run.required_action.type == "submit_tool_outputs"
    calls = run.required_action.submit_tool_outputs.tool_calls
    assert calls and calls[0].function.name == "get_weather"
    assert calls[0].id.startswith("call_")
    assert isinstance(json.loads(calls[0].function.arguments)["city"], str)
    assert [t.function.name for t in run.tools] == ["get_weather"]

    run = await client.beta.threads.runs.submit_tool_outputs_and_poll(
        run_id=run.id, thread_id=thread.id, poll_interval_ms=50,
        tool_outputs=[{"tool_call_id": c.id, "output": "22 C and sunny"} for c in calls])
    assert run.status == "completed", run.last_error
    assert run.required_action is None and run.usage.completion_tokens > 0

    steps = await client.beta.threads.runs.steps.list(run_id=run.id, thread_id=thread.id,
                                                      order="asc")
    kinds = [s.type for s in steps.data]
    assert kinds == ["tool_calls", "message_creation"]
    tool_step = steps.data[0].step_details.tool_calls[0]
    assert tool_step.function.output == "22 C and sunny" and tool_step.id == calls[0].id
    msgs = await client.beta.threads.messages.list(thread_id=thread.id, order="desc")
    assert msgs.data[0].content[0].text.value.strip()  # the final answer

    lines = (data_folder / "threads" / thread.id / "messages.jsonl").read_text().splitlines()
    stored = [json.loads(line) for line in lines]
    with_calls = [m for m in stored if m.get("metadata", {}).get("tool_calls")]
    assert len(with_calls) == 1
    rec = with_calls[0]["metadata"]["tool_calls"][0]
    assert rec["tool"]["id"] == calls[0].id and rec["state"] == "ready"
    assert rec["response"] == {"content": "22 C and sunny"}


async def test_submit_tool_outputs_streamed_and_checked(api):
    client, http = api
    thread = await client.beta.threads.create(
        messages=[{"role": "user", "content": "Weather in Rome?"}])
    run = await client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id="weather",
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        poll_interval_ms=50)
    assert run.status == "requires_action"
    base = f"/v1/threads/{thread.id}/runs/{run.id}/submit_tool_outputs"
    bad = await http.post(base, json={"tool_outputs": [{"tool_call_id": "call_nope",
                                                        "output": "x"}]})
    assert bad.status_code == 400 and bad.json()["error"]["param"].startswith("tool_outputs")
    calls = run.required_action.submit_tool_outputs.tool_calls
    events = []
    async with client.beta.threads.runs.submit_tool_outputs_stream(
            run_id=run.id, thread_id=thread.id,
            tool_outputs=[{"tool_call_id": c.id, "output": "18 C"} for c in calls]) as stream:
        async for event in stream:
            events.append(event.event)
    assert events[-1] == "thread.run.completed"
    assert "thread.message.completed" in events
    again = await http.post(base, json={"tool_outputs": []})
    assert again.status_code == 400


TOOL_CODER = """
import json
from jan.sdk.assistant import events, models, thread

WEATHER = __WEATHER__

@events.on("assistant:toolcoder")
def reply(event):
    history = thread.messages()
    first = models[0].chat(history, tools=[WEATHER], tool_choice="required",
                           parallel_tool_calls=False, max_tokens=60)
    call = first.tool_calls[0]
    city = json.loads(call["function"]["arguments"])["city"]
    answer = models[0].chat(history + [first.message(), {"role": "tool",
                            "tool_call_id": call["id"], "content": "9 C"}], max_tokens=8)
    return {"content": answer, "metadata": {"tool": call["function"]["name"], "city": city,
            "id": call["id"], "reason": first.finish_reason}}
""".replace("__WEATHER__", json.dumps(WEATHER))


async def test_code_assistant_chat_with_tools_returns_calls(make_host, data_folder, smollm_path):
    write_model(data_folder, smollm_path, max_tokens=40)
    write_assistant(data_folder, "toolcoder", TOOL_CODER, model="smollm2")
    async with make_host(settings={"sandbox": {"timeout": 400, "autostart": False}}) as jan, \
            asgi_client(jan) as http:
        client = client_for(http)
        thread = await client.beta.threads.create(
            messages=[{"role": "user", "content": "Weather in Oslo?"}])
        run = await client.beta.threads.runs.create_and_poll(
            thread_id=thread.id, assistant_id="toolcoder", poll_interval_ms=50)
        assert run.status == "completed", run.last_error
        msgs = await client.beta.threads.messages.list(thread_id=thread.id, order="desc")
        meta = msgs.data[0].metadata
        assert meta["tool"] == "get_weather" and meta["id"].startswith("call_")
        assert meta["city"] and meta["reason"] == "tool_calls"
        assert msgs.data[0].content[0].text.value.strip()
