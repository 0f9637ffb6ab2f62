"""Runs through the official client: code assistants (fast) and, marked slow, the real model.

Polling (``create_and_poll``), streaming (``runs.stream``) and the raw SSE wire, thread-and-run,
list/retrieve/cancel, failures with ``last_error``, and the runs' files on disk.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pytest
from sandbox_fixtures import asgi_client, client_for, run_text, write_assistant, write_model
from waiting import eventually

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

ECHO = """
from jan.sdk.assistant import events, thread

@events.on("assistant:echo")
def reply(event):
    msgs = thread.messages()
    if msgs[-1]["content"] == "boom":
        return 1 / 0
    if msgs[-1]["content"] == "slow":
        import time
        time.sleep(30)
    return {"content": " | ".join(m["role"] + ":" + m["content"] for m in msgs),
            "metadata": {"seen": str(len(msgs))}}
"""


@pytest.fixture
async def api(make_host, data_folder):
    write_assistant(data_folder, "echo", ECHO, name="Echo", instructions="Be an echo.")
    write_assistant(data_folder, "plain", None, name="Plain")
    async with make_host(settings={"sandbox": {"timeout": 20, "autostart": False}}) as jan, \
            asgi_client(jan) as http:
        yield client_for(http), http


async def test_code_run_polls_to_completed_and_is_stored(api, data_folder):
    client, _ = api
    run, reply = await run_text(client, "echo", "hello")
    assert run.status == "completed" and run.last_error is None
    assert reply == "user:hello"
    assert run.assistant_id == "echo" and run.instructions == "Be an echo."
    assert run.metadata["jan_sandbox"] in ("full", "partial", "basic")
    assert "rlimits" in run.metadata["jan_sandbox_layers"]
    stored = json.loads((data_folder / "threads" / run.thread_id / "runs" /
                         f"{run.id}.json").read_text())
    assert stored["status"] == "completed" and stored["id"] == run.id
    msgs = await client.beta.threads.messages.list(thread_id=run.thread_id, order="asc")
    last = msgs.data[-1]
    assert (last.role, last.run_id, last.assistant_id) == ("assistant", run.id, "echo")
    assert last.metadata["seen"] == "1"


async def test_run_options_additional_messages_and_instructions(api):
    client, _ = api
    thread = await client.beta.threads.create(messages=[{"role": "user", "content": "one"}])
    run = await client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id="echo", instructions="Override.",
        additional_instructions="And more.", metadata={"k": "v"},
        additional_messages=[{"role": "user", "content": "two"}], poll_interval_ms=50)
    assert run.status == "completed"
    assert run.instructions == "Override.\n\nAnd more." and run.metadata["k"] == "v"
    msgs = await client.beta.threads.messages.list(thread_id=thread.id, order="desc", limit=1)
    assert msgs.data[0].content[0].text.value == "user:one | user:two"


async def test_streaming_events_in_order(api):
    client, _ = api
    thread = await client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    names, text = [], []
    async with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id="echo") as s:
        async for event in s:
            names.append(event.event)
            if event.event == "thread.message.delta":
                text.append(event.data.delta.content[0].text.value)
        final = await s.get_final_run()
    assert names == ["thread.run.created", "thread.run.queued", "thread.run.in_progress",
                     "thread.message.created", "thread.message.in_progress",
                     "thread.message.delta", "thread.message.completed",
                     "thread.run.completed"]
    assert "".join(text) == "user:hi" and final.status == "completed"


async def test_raw_sse_wire_ends_with_done(api):
    _, http = api
    thread = (await http.post("/v1/threads", json={})).json()
    await http.post(f"/v1/threads/{thread['id']}/messages", json={"role": "user", "content": "x"})
    async with http.stream("POST", f"/v1/threads/{thread['id']}/runs",
                           json={"assistant_id": "echo", "stream": True}) as resp:
        body = (await resp.aread()).decode()
    assert resp.headers["content-type"].startswith("text/event-stream")
    assert body.startswith("event: thread.run.created\ndata: {")
    assert body.rstrip().endswith("data: [DONE]")


async def test_create_thread_and_run_list_and_retrieve(api):
    client, _ = api
    run = await client.beta.threads.create_and_run_poll(
        assistant_id="echo", thread={"messages": [{"role": "user", "content": "first"}]},
        poll_interval_ms=50)
    assert run.status == "completed"
    second, _ = await run_text(client, "echo", "second", thread_id=run.thread_id)
    page = await client.beta.threads.runs.list(thread_id=run.thread_id, limit=1, order="asc")
    assert [r.id for r in page.data] == [run.id] and page.has_more
    rest = await client.beta.threads.runs.list(thread_id=run.thread_id, after=run.id,
                                               order="asc")
    assert [r.id for r in rest.data] == [second.id] and not rest.has_more
    again = await client.beta.threads.runs.retrieve(run.id, thread_id=run.thread_id)
    assert again.model_dump() == run.model_dump()


async def test_handler_error_fails_the_run_with_its_message(api):
    client, _ = api
    run, reply = await run_text(client, "echo", "boom")
    assert run.status == "failed" and reply is None
    assert "ZeroDivisionError" in run.last_error.message and run.failed_at
    ok, _ = await run_text(client, "echo", "fine", thread_id=run.thread_id)
    assert ok.status == "completed"


async def test_cancel_stops_the_worker_and_the_next_run_works(api):
    client, _ = api
    thread = await client.beta.threads.create(messages=[{"role": "user", "content": "slow"}])
    run = await client.beta.threads.runs.create(thread_id=thread.id, assistant_id="echo")
    async def started():
        return (await client.beta.threads.runs.retrieve(run.id, thread_id=thread.id)
                ).status == "in_progress"
    await eventually(started, timeout=30, what="the slow run to start")
    cancelled = await client.beta.threads.runs.cancel(run.id, thread_id=thread.id)
    assert cancelled.status == "cancelled" and cancelled.cancelled_at
    again, text = await run_text(client, "echo", "quick", thread_id=thread.id)
    assert again.status == "completed" and text.endswith("user:quick")
    with pytest.raises(Exception) as err:
        await client.beta.threads.runs.cancel(again.id, thread_id=thread.id)
    assert getattr(err.value, "status_code", None) == 400


async def test_unknown_ids_and_bad_bodies_are_openai_errors(api, data_folder):
    client, http = api
    import openai

    with pytest.raises(openai.NotFoundError):
        await client.beta.threads.runs.create(thread_id="thread_nope", assistant_id="echo")
    thread = await client.beta.threads.create()
    with pytest.raises(openai.NotFoundError):
        await client.beta.threads.runs.create(thread_id=thread.id, assistant_id="nobody")
    with pytest.raises(openai.NotFoundError):
        await client.beta.threads.runs.retrieve("run_nope", thread_id=thread.id)
    resp = await http.post(f"/v1/threads/{thread.id}/runs", json={"model": "x"})
    assert resp.status_code == 400 and resp.json()["error"]["param"] == "assistant_id"


async def test_an_interrupted_run_reads_back_as_expired(api, data_folder):
    client, _ = api
    run, _ = await run_text(client, "echo", "x")
    path = data_folder / "threads" / run.thread_id / "runs" / f"{run.id}.json"
    stale = json.loads(path.read_text()) | {"status": "in_progress", "completed_at": None}
    path.write_text(json.dumps(stale))
    again = await client.beta.threads.runs.retrieve(run.id, thread_id=run.thread_id)
    assert again.status == "expired" and "interrupted" in again.last_error.message


# ----------------------------------------------------------------------------- the real model
COUNT = "Count from 1 to 300, separated by commas."


@pytest.fixture
async def model_api(make_host, data_folder, smollm_path):
    write_model(data_folder, smollm_path, max_tokens=40)
    write_assistant(data_folder, "plain", None, name="Plain", instructions="You count.",
                    max_tokens=5, model="smollm2")
    write_assistant(data_folder, "coder", CODER, model="smollm2")
    async with make_host(settings={"sandbox": {"timeout": 120, "autostart": False}}) as jan, \
            asgi_client(jan) as http:
        yield client_for(http), http


CODER = """
from jan.sdk.assistant import events, models, thread

@events.on("assistant:coder")
def reply(event):
    history = thread.messages()
    whole = models[0].chat(history, max_tokens=8)
    pieces = list(models.stream(history, max_tokens=8))
    return {"content": whole, "metadata": {"pieces": str(len(pieces)),
            "same": str("".join(pieces) == whole), "model": models[0].id}}
"""


@pytest.mark.slow
async def test_plain_assistant_replies_with_its_model_poll_and_stream(model_api):
    client, _ = model_api
    run, reply = await run_text(client, "plain", COUNT)
    assert run.status == "completed", run.last_error
    assert run.model == "smollm2" and reply
    assert run.usage.completion_tokens == 5  # the assistant's max_tokens beats model.json's 40
    deltas = []
    async with client.beta.threads.runs.stream(thread_id=run.thread_id,
                                               assistant_id="plain") as s:
        async for event in s:
            if event.event == "thread.message.delta":
                deltas.append(event.data.delta.content[0].text.value)
        final = await s.get_final_messages()
    assert len(deltas) > 1 and "".join(deltas) == final[0].content[0].text.value


@pytest.mark.slow
async def test_settings_precedence_thread_then_request(model_api):
    client, _ = model_api
    thread = await client.beta.threads.create(
        messages=[{"role": "user", "content": COUNT}],
        extra_body={"assistants": [{"assistant_id": "plain",
                                    "model": {"id": "smollm2",
                                              "parameters": {"max_tokens": 3}}}]})
    by_thread = await client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id="plain", poll_interval_ms=50)
    assert by_thread.usage.completion_tokens == 3
    by_request = await client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id="plain", max_completion_tokens=6, poll_interval_ms=50)
    assert by_request.usage.completion_tokens == 6


@pytest.mark.slow
async def test_code_assistant_calls_the_real_model(model_api):
    client, _ = model_api
    run, reply = await run_text(client, "coder", "Say hello.")
    assert run.status == "completed", run.last_error
    msgs = await client.beta.threads.messages.list(thread_id=run.thread_id, order="desc")
    meta = msgs.data[0].metadata
    assert reply and meta["model"] == "smollm2" and meta["same"] == "True"
    assert int(meta["pieces"]) > 1


@pytest.mark.slow
async def test_cli_scaffold_runs_and_lists(make_host, data_folder, smollm_path):
    write_model(data_folder, smollm_path, max_tokens=8)

    def jan(*args: str) -> str:
        out = subprocess.run([sys.executable, "-m", "jan.host.cli", *args, "--data-folder",
                              str(data_folder)], capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stdout + out.stderr
        return out.stdout

    created = jan("assistants", "new", "My Helper", "--code")
    assert created.split()[0] == "my-helper"
    assert (data_folder / "assistants" / "my-helper" / "index.py").is_file()
    listing = jan("assistants", "list")
    assert any(line.startswith("my-helper\t") and "\tcode\t" in line
               for line in listing.splitlines())
    async with make_host(settings={"sandbox": {"timeout": 120}}) as host, \
            asgi_client(host) as http:
        run, reply = await run_text(client_for(http), "my-helper", "Say hi.")
    assert run.status == "completed", run.last_error
    assert reply


async def test_a_run_failing_at_once_still_streams_its_events(make_host, data_folder):
    # The model's file does not exist: the run fails right after it starts, typically before
    # the server begins sending the body; the stream must still carry every event.
    write_model(data_folder, data_folder / "missing.gguf")
    write_assistant(data_folder, "ghost", None, name="Ghost", model="smollm2")
    async with make_host(settings={"sandbox": {"autostart": False}}) as jan, \
            asgi_client(jan) as http:
        client = client_for(http)
        thread = await client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
        names = []
        async with client.beta.threads.runs.stream(thread_id=thread.id,
                                                   assistant_id="ghost") as s:
            async for event in s:
                names.append(event.event)
            final = await s.get_final_run()
    assert names == ["thread.run.created", "thread.run.queued", "thread.run.in_progress",
                     "thread.run.failed"]
    assert final.status == "failed" and "not downloaded" in final.last_error.message


def _runs_extension(jan):  # noqa: ANN001, ANN202
    return jan.host.records["runs"].instance


async def test_a_run_cancelled_before_its_first_step_ends_cancelled(make_host, data_folder):
    import importlib

    from jan.sdk.models import Thread, new_id

    write_assistant(data_folder, "echo", ECHO, name="Echo")
    async with make_host(settings={"sandbox": {"autostart": False}}) as jan:
        runner = _runs_extension(jan).runner
        schemas = importlib.import_module(type(runner).__module__.rsplit(".", 1)[0] + ".schemas")
        thread = await runner.svc("threads").create(Thread(id=new_id("thread")))
        run, queue = await runner.create(thread, schemas.RunCreateRequest(assistant_id="echo",
                                                                         stream=True))
        runner.tasks[run.id].cancel()  # what unloading the extension does, too
        names = [name async for name, _ in runner.events(queue)]
        assert names == ["thread.run.created", "thread.run.queued", "thread.run.cancelled"]
        stored = runner.get(thread.id, run.id)
        assert stored.status == "cancelled" and stored.cancelled_at
        assert run.id not in runner.runs and run.id not in runner.tasks


async def test_deleting_a_thread_cancels_its_runs_and_stays_deleted(make_host, data_folder):
    write_assistant(data_folder, "echo", ECHO, name="Echo")
    async with make_host(settings={"sandbox": {"timeout": 20, "autostart": False}}) as jan, \
            asgi_client(jan) as http:
        client, runner = client_for(http), _runs_extension(jan).runner
        thread = await client.beta.threads.create(messages=[{"role": "user", "content": "slow"}])
        run = await client.beta.threads.runs.create(thread_id=thread.id, assistant_id="echo")
        for _ in range(100):
            if (await client.beta.threads.runs.retrieve(run.id, thread_id=thread.id)
                    ).status == "in_progress":
                break
            await asyncio.sleep(0.02)
        await client.beta.threads.delete(thread.id)
        for _ in range(250):
            if run.id not in runner.runs:
                break
            await asyncio.sleep(0.02)
        assert run.id not in runner.runs  # cancelled, not left sleeping for 30 s
        await asyncio.sleep(0.1)
        assert not (data_folder / "threads" / thread.id).exists()
        listed = (await http.get("/v1/threads", params={"limit": 100})).json()["data"]
        assert thread.id not in [t["id"] for t in listed]


async def test_runs_of_threads_without_a_folder_live_in_the_extension_storage(
        make_host, data_folder):
    import importlib

    async with make_host(settings={"sandbox": {"autostart": False}}) as jan:
        ext = _runs_extension(jan)
        schemas = importlib.import_module(type(ext.store).__module__.rsplit(".", 1)[0]
                                          + ".schemas")
        store = ext.store
        run = schemas.Run(id="run_a", thread_id="thread_db", assistant_id="x")
        store.save(run)
        assert (ext.ctx.storage.root / "thread_db" / "run_a.json").is_file()
        assert not (data_folder / "threads" / "thread_db").exists()
        assert store.get("thread_db", "run_a").id == "run_a"
        assert [r.id for r in store.list("thread_db", limit=5, order="asc", after=None,
                                         before=None).data] == ["run_a"]
        store.forget("thread_db")
        store.save(run)  # a run ending after its thread was deleted is not written back
        assert not (ext.ctx.storage.root / "thread_db").exists()


@pytest.mark.slow
async def test_history_limit_above_a_store_page_is_paged(make_host, data_folder, smollm_path):
    write_model(data_folder, smollm_path, max_tokens=2)
    write_assistant(data_folder, "plain", None, name="Plain", model="smollm2", max_tokens=2)
    settings = {"sandbox": {"autostart": False}, "extensions": {"runs": {"history_limit": 150}}}
    async with make_host(settings=settings) as jan, asgi_client(jan) as http:
        client = client_for(http)
        thread = await client.beta.threads.create()
        for i in range(120):
            await client.beta.threads.messages.create(thread.id, role="user", content=f"m{i}")
        run = await client.beta.threads.runs.create_and_poll(
            thread_id=thread.id, assistant_id="plain", poll_interval_ms=50)
        assert run.status == "completed", run.last_error
        capped = await client.beta.threads.runs.create_and_poll(
            thread_id=thread.id, assistant_id="plain", poll_interval_ms=50,
            additional_messages=[{"role": "user", "content": "m120"}])
    # 121 messages vs 120 (plus one reply): more than one page of history reached the model.
    assert capped.usage.prompt_tokens > run.usage.prompt_tokens > 120 * 3
