"""The sandbox service: probe, worker lifecycle, pub/sub, own environments, RPC framing.

Real subprocesses throughout (the bootstrap under ``python -I``, the real kernel layers).
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import subprocess
import sys
import threading

import pytest
from conftest import IN_CI
from sandbox_fixtures import FAST, asgi_client, build_wheel, client_for, run_text, write_assistant
from waiting import eventually

from jan.host.sandbox import SandboxSettings, probe
from jan.host.sandbox.rpc import Channel, ProtocolError, WorkerRequest, parse_inbound
from jan.sdk.events import DATA_CHANGED
from jan.sdk.sandbox import install_requirements

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

PID_ECHO = """
import os
from jan.sdk.assistant import events, thread

@events.on("assistant:{id}")
def reply(event):
    text = thread.messages()[-1]["content"]
    if text == "crash":
        os._exit(3)
    return f"{{VERSION}} pid={{os.getpid()}}"

VERSION = "{version}"
"""


def test_probe_reports_every_layer_with_reasons():
    report = probe(SandboxSettings())
    assert report.error is None, report.error
    for layer in ("env", "fds", "process_group", "rlimits", "netns", "landlock", "seccomp"):
        assert layer in report.layers and report.layers[layer].detail
    assert report.layers["rlimits"].active and report.layers["env"].active
    kernel = [n for n in ("netns", "landlock", "seccomp") if report.layers[n].available]
    if IN_CI:  # the CI machines are root on a recent kernel: all three must be there
        assert kernel == ["netns", "landlock", "seccomp"], report.model_dump()
    if report.available("landlock"):
        assert report.checks["read_etc_passwd"].startswith("denied")
    if report.available("seccomp"):
        assert report.checks["seccomp_mode"] == "2"
        assert report.checks["inet_socket"].startswith("denied")
        assert report.checks["unix_socket"].startswith("denied")
    assert report.level == ("full" if len(kernel) == 3 else "partial" if kernel else "basic")


def test_probe_off_mode_and_layer_switches():
    off = probe(SandboxSettings(mode="off"))
    assert off.level == "off" and not off.layers["landlock"].active
    no_net = probe(SandboxSettings(layers={"netns": False}))
    assert not no_net.layers["netns"].active
    assert no_net.layers["netns"].available == probe().layers["netns"].available


def test_cli_sandbox_probe_prints_the_report(data_folder):
    out = subprocess.run([sys.executable, "-m", "jan.host.cli", "sandbox", "probe",
                          "--data-folder", str(data_folder)], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "isolation level:" in out.stdout and "landlock" in out.stdout
    js = subprocess.run([sys.executable, "-m", "jan.host.cli", "sandbox", "probe", "--json",
                         "--data-folder", str(data_folder)], capture_output=True, text=True,
                        timeout=120)
    assert json.loads(js.stdout)["level"] in ("full", "partial", "basic")


async def test_health_shows_the_isolation_level(make_host):
    async with make_host(settings=FAST) as jan, asgi_client(jan) as http:
        body = (await http.get("/health")).json()
    assert body["sandbox"]["level"] == probe().level


async def test_strict_mode_refuses_below_the_required_level(make_host, data_folder):
    write_assistant(data_folder, "strict", PID_ECHO.format(id="strict", version="v1"))
    settings = {"sandbox": {**FAST["sandbox"], "mode": "strict",
                            "required": ["landlock", "seccomp", "no-such-layer"]}}
    async with make_host(settings=settings) as jan, asgi_client(jan) as http:
        assert (await http.get("/health")).json()["sandbox"]["ok"] is False
        run, reply = await run_text(client_for(http), "strict", "hi")
    assert run.status == "failed" and reply is None
    assert "no-such-layer" in run.last_error.message


async def test_crash_fails_that_run_and_the_next_gets_a_fresh_worker(make_host, data_folder):
    folder = write_assistant(data_folder, "echo", PID_ECHO.format(id="echo", version="v1"))
    async with make_host(settings=FAST) as jan, asgi_client(jan) as http:
        client = client_for(http)
        run1, text1 = await run_text(client, "echo", "hello")
        run2, text2 = await run_text(client, "echo", "hello again")
        assert text1.split()[0] == "v1" and text1 == text2  # the same warm worker
        crashed, _ = await run_text(client, "echo", "crash")
        assert crashed.status == "failed"
        assert "exited with status 3" in crashed.last_error.message
        run3, text3 = await run_text(client, "echo", "back?")
        assert run3.status == "completed" and text3 != text1  # a new process
        # Editing index.py restarts the worker with the new code.
        (folder / "index.py").write_text(PID_ECHO.format(id="echo", version="v2"))
        _, text4 = await run_text(client, "echo", "new code?")
        assert text4.startswith("v2 ")


PUBLISHER = """
from jan.sdk.assistant import events

@events.on("assistant:pub")
def reply(event):
    events.emit("assistant:pub", {"msg": "hello", "thread": event.thread_id})
    denied = []
    for topic in ("assistant:sub", "message.created"):
        try:
            events.emit(topic, {"forged": True})
        except PermissionError:
            denied.append(topic)
    return "published; denied " + ",".join(denied)
"""
SUBSCRIBER = """
import json
from jan.sdk.assistant import assistant, events

@events.on("assistant:pub")
def heard(event):
    (assistant.workspace / "heard.json").write_text(json.dumps(
        {"source": event.source, "data": event.data, "kind": event.kind}))
    events.emit("assistant:sub", {"relayed": event.data["msg"]})
"""


async def test_pub_sub_between_two_code_assistants(make_host, data_folder):
    write_assistant(data_folder, "pub", PUBLISHER)
    # Hearing another assistant takes a grant in the subscriber's assistant.json.
    sub = write_assistant(data_folder, "sub", SUBSCRIBER, events=["assistant:pub"])
    settings = {"sandbox": {"timeout": 10, "autostart": True}}
    async with make_host(settings=settings) as jan, asgi_client(jan) as http:
        relayed: asyncio.Queue = asyncio.Queue()
        jan.host.bus.on("assistant:sub", lambda topic, data: relayed.put_nowait(data))
        await jan.core["sandbox"].start("sub")  # autostart may still be on its way
        run, text = await run_text(client_for(http), "pub", "go")
        assert run.status == "completed", run.last_error
        assert text == "published; denied assistant:sub,message.created"
        got = await asyncio.wait_for(relayed.get(), 10)
    assert got == {"source": "sub", "data": {"relayed": "hello"}, "hops": 2}
    heard = json.loads((sub / "workspace" / "heard.json").read_text())
    assert heard == {"source": "pub", "data": {"msg": "hello", "thread": run.thread_id},
                     "kind": "event"}


USES_DEP = """
from jan.sdk.assistant import assistant, events

@events.on(f"assistant:{{assistant.id}}")
def reply(event):
    try:
        import {name}
    except ImportError as exc:
        return f"missing: {{exc}}"
    return "found " + {name}.VALUE
"""


async def test_installed_dependency_is_importable_only_in_its_assistant(make_host, data_folder,
                                                                        tmp_path):
    name = f"jan_tinydep_{os.getpid()}"
    wheel = build_wheel(tmp_path, name, "from the wheel")
    for aid in ("with-dep", "without-dep"):
        write_assistant(data_folder, aid, USES_DEP.format(name=name))
    (data_folder / "assistants" / "with-dep" / "requirements.txt").write_text(
        f"--no-index\n{wheel}\n")
    result = install_requirements(data_folder / "assistants" / "with-dep")
    assert result.ok, result.output
    assert (data_folder / "assistants" / "with-dep" / ".venv").is_dir()
    async with make_host(settings=FAST) as jan, asgi_client(jan) as http:
        client = client_for(http)
        _, found = await run_text(client, "with-dep", "import it")
        _, missing = await run_text(client, "without-dep", "import it")
    assert found == "found from the wheel"
    assert missing.startswith("missing: No module named")
    assert importlib.util.find_spec(name) is None  # the host never sees it either


def test_inbound_rpc_is_validated():
    ok = parse_inbound(b'{"jsonrpc":"2.0","id":1,"method":"models.list","params":{}}')
    assert isinstance(ok, WorkerRequest)
    for bad in (b"{nope", b"[1,2]", b'{"jsonrpc":"2.0","id":1,"method":"exec"}',
                b'{"jsonrpc":"2.0","id":-1,"method":"models.list"}',
                b'{"jsonrpc":"2.0","id":"h1","result":1,"extra":1}',
                b'{"jsonrpc":"2.0","id":"x1","result":1}'):
        with pytest.raises(ProtocolError):
            parse_inbound(bad)


async def test_channel_caps_a_line_while_reading():
    r, w = os.pipe()
    r2, w2 = os.pipe()
    channel = Channel(r, w2, max_bytes=1024)
    await channel.open()
    os.write(w, b'{"jsonrpc":"2.0","id":"h1","result":"x"}\n')
    assert (await channel.read()).result == "x"
    os.write(w, b"A" * 5000)
    with pytest.raises(ProtocolError, match="larger than the 1024 byte limit"):
        await channel.read()
    channel.close()
    for fd in (w, r2):
        os.close(fd)


def test_supervisor_takes_a_folder_or_a_path(tmp_path):
    from jan.host.sandbox import Supervisor
    from jan.sdk.storage import Folder

    for data in (tmp_path, str(tmp_path), Folder(tmp_path)):
        sup = Supervisor(data=data, settings=FAST["sandbox"], events=None, services=None)
        sup.probe()
        assert sup.data_root == tmp_path.resolve()  # not "/" (a Path's own .root)
    with pytest.raises(TypeError):
        Supervisor(data=42, settings=FAST["sandbox"], events=None, services=None)


def test_process_limit_is_seccomp_or_a_counted_fallback():
    blocked = probe(SandboxSettings())
    if blocked.available("seccomp"):
        assert "seccomp denies new processes" in blocked.layers["rlimits"].detail
    spawning = probe(SandboxSettings(allow_spawn=True))
    assert "RLIMIT_NPROC=" in spawning.layers["rlimits"].detail, spawning.layers["rlimits"]


@pytest.mark.parametrize("layers", [{}, {"seccomp": False}], ids=["seccomp", "no-seccomp"])
async def test_workers_start_while_the_user_runs_many_threads(make_host, data_folder, layers):
    """RLIMIT_NPROC counts every task of the uid: a small budget must not stop the worker's own
    reader thread when the host (or anything else of that user) runs many threads. (The kernel
    exempts uid 0 from RLIMIT_NPROC, so this only bites as a normal user; the probe test above
    checks the choice itself everywhere.)"""
    write_assistant(data_folder, "crowd", PID_ECHO.format(id="crowd", version="v1"))
    stop = threading.Event()
    crowd = [threading.Thread(target=stop.wait, daemon=True) for _ in range(80)]
    for t in crowd:
        t.start()
    try:
        settings = {"sandbox": {**FAST["sandbox"], "processes": 8, "layers": layers}}
        async with make_host(settings=settings) as jan, asgi_client(jan) as http:
            run, text = await run_text(client_for(http), "crowd", "hi")
    finally:
        stop.set()
    assert run.status == "completed", run.last_error
    assert text.startswith("v1 pid=")


HOST_TOPIC = """
from jan.sdk.assistant import assistant, events

@events.on("message.created")
def eavesdrop(event):
    (assistant.workspace / "leak.txt").write_text(repr(event.data))

@events.on("assistant:*")
def everyone(event):
    (assistant.workspace / "wildcard.txt").write_text(repr(event.data))

@events.on("assistant:ping")
def ping(event):
    (assistant.workspace / "ping.txt").write_text("pong")
"""


async def test_load_time_subscriptions_to_host_topics_are_dropped(make_host, data_folder):
    """Host topics and wildcards are dropped; a topic assistant.json grants is heard."""
    folder = write_assistant(data_folder, "spy", HOST_TOPIC, events=["assistant:ping"])
    async with make_host(settings=FAST) as jan:
        sup = jan.core["sandbox"]
        await sup.start("spy")
        assert sup.subscriptions.topics("spy") == {"assistant:ping"}
        await jan.host.bus.emit("message.created", {"thread_id": "thread_x", "secret": 1})
        await jan.host.bus.emit("assistant:ping", {"source": "host", "data": None})
        # ping is delivered after anything queued before it
        await eventually((folder / "workspace" / "ping.txt").exists, timeout=10,
                         what="the ping event delivered to the worker")
    assert (folder / "workspace" / "ping.txt").read_text() == "pong"


LATE_LISTENER = """
from jan.sdk.assistant import assistant, events

def rang(event):
    (assistant.workspace / "bell.txt").write_text(repr(event.data))

@events.on("assistant:late")
def reply(event):
    events.on("assistant:bell", rang)  # granted in assistant.json: heard from now on
    try:
        events.on("assistant:gong", rang)  # not granted
    except PermissionError as exc:
        return f"denied: {exc}"
    return "subscribed to both"
"""


async def test_subscribing_while_handling_a_run(make_host, data_folder):
    """A topic subscribed during a call is heard afterwards; an ungranted one is refused."""
    folder = write_assistant(data_folder, "late", LATE_LISTENER, events=["assistant:bell"])
    async with make_host(settings=FAST) as jan, asgi_client(jan) as http:
        run, text = await run_text(client_for(http), "late", "go")
        assert run.status == "completed", run.last_error
        assert text.startswith("denied: ") and "assistant:gong" in text
        assert jan.core["sandbox"].subscriptions.topics("late") == {"assistant:bell"}
        await jan.host.bus.emit("assistant:bell", {"source": "host", "data": "ding"})
        bell = folder / "workspace" / "bell.txt"
        await eventually(bell.exists, what="the bell event delivered to the worker")
    assert bell.read_text() == "'ding'"
    assert not (folder / "workspace" / "leak.txt").exists()


async def test_an_invalid_name_under_assistants_does_not_block_restarts(make_host, data_folder):
    write_assistant(data_folder, "echo", PID_ECHO.format(id="echo", version="v1"))
    root = data_folder / "assistants"
    settings = {"sandbox": {**FAST["sandbox"], "autostart": True}}  # restarts check has_code
    async with make_host(settings=settings) as jan:
        sup = jan.core["sandbox"]
        await sup.start("echo")
        before = sup._workers["echo"]
        await jan.host.bus.emit(DATA_CHANGED, {"area": "assistants", "paths": [
            *(str(root / bad / "x") for bad in (".DS_Store", ".Trash", "._echo", "bad id!")),
            str(root / "echo" / "index.py")]})
        for _ in range(200):
            if sup._workers.get("echo") not in (None, before):
                break
            await asyncio.sleep(0.05)
        assert sup._workers.get("echo") not in (None, before), "echo was not restarted"


BAD_METADATA = """
from jan.sdk.assistant import events, thread

CASES = {
    "list": [1, 2],
    "int-value": {"n": 1},
    "too-many": {f"k{i}": "v" for i in range(17)},
    "long-key": {"k" * 65: "v"},
    "long-value": {"k": "v" * 513},
    "good": {"k": "v"},
}

@events.on("assistant:meta")
def reply(event):
    case = thread.messages()[-1]["content"]
    return {"content": "reply " + case, "metadata": CASES[case]}
"""


async def test_reply_metadata_is_validated_not_fatal(make_host, data_folder):
    write_assistant(data_folder, "meta", BAD_METADATA)
    async with make_host(settings=FAST) as jan, asgi_client(jan) as http:
        client = client_for(http)
        for case in ("list", "int-value", "too-many", "long-key", "long-value", "good"):
            run, text = await run_text(client, "meta", case)
            assert run.status == "completed", (case, run.last_error)
            assert text == "reply " + case
            msgs = await client.beta.threads.messages.list(thread_id=run.thread_id, order="desc")
            meta = dict(msgs.data[0].metadata)
            meta.pop("sandbox", None)
            assert meta == ({"k": "v"} if case == "good" else {}), case
