"""The attack suite: hostile ``index.py`` files, each run through the official client.

Every attack must end ``failed`` or with the attack visibly denied (its reply starts with
``DENIED``), and afterwards the host must still serve: ``/health`` answers, a benign code
assistant still completes, and neither the TCP listener nor the pathname UNIX socket listener
(in a temp dir outside the data folder) the attacks aim at saw a connection.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import httpx
import openai
import pytest
from conftest import free_port, write_settings
from sandbox_fixtures import (
    ATTACKS,
    FAST,
    asgi_client,
    attack_spec,
    client_for,
    need_layers,
    run_text,
    write_assistant,
)

from jan.host.sandbox import SandboxSettings, probe

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

CANARY = """
from jan.sdk.assistant import events, thread

@events.on("assistant:canary")
def reply(event):
    return "canary ok: " + thread.messages()[-1]["content"]
"""
REPORT = probe(SandboxSettings.parse(FAST["sandbox"]))
ATTACK_FILES = sorted(ATTACKS.glob("*.py"))


class Listener:
    """A TCP server standing in for anything on the host's loopback (the API port included), and
    a pathname UNIX socket server standing in for a session bus or docker.sock."""

    def __init__(self) -> None:
        self.connections = 0
        self.servers: list[asyncio.Server] = []
        self.tmp = tempfile.TemporaryDirectory(prefix="jan-ux-")
        self.unix_path = Path(self.tmp.name) / "host.sock"

    async def __aenter__(self) -> int:
        async def on_connect(reader, writer):
            self.connections += 1
            writer.close()

        self.servers = [await asyncio.start_server(on_connect, "127.0.0.1", 0),
                        await asyncio.start_unix_server(on_connect, str(self.unix_path))]
        self.unix_path.chmod(0o777)  # reachable by anyone: only the sandbox may stop it
        return self.servers[0].sockets[0].getsockname()[1]

    async def __aexit__(self, *exc) -> None:
        for server in self.servers:
            server.close()
            await server.wait_closed()
        self.tmp.cleanup()


def stage(data: Path, attack: Path, port: int, secret_path: Path, unix_path: Path) -> None:
    folder = write_assistant(data, "attacker", attack.read_text(), name="Attacker")
    (folder / "port.txt").write_text(str(port))
    (folder / "unix.txt").write_text(str(unix_path))
    (folder / "target.txt").write_text(str(secret_path))
    write_assistant(data, "canary", CANARY)


async def secret_thread(client: openai.AsyncOpenAI, data: Path) -> Path:
    thread = await client.beta.threads.create(
        messages=[{"role": "user", "content": "TOP SECRET: the launch code is 0000"}])
    path = data / "threads" / thread.id / "messages.jsonl"
    assert path.is_file(), "the threads/messages layout changed: the attack needs a real file"
    return path


def check_outcome(spec: dict, run, reply: str | None) -> None:
    if spec["outcome"] == "denied":
        assert run.status == "completed", f"expected a denial, got {run.status}: {run.last_error}"
        assert reply and reply.startswith("DENIED"), reply
    else:
        assert run.status == "failed", f"expected failure, got {run.status}: {reply}"
        assert spec["text"].lower() in run.last_error.message.lower(), run.last_error.message
        assert run.last_error.code == "server_error"


@pytest.mark.parametrize("attack", ATTACK_FILES, ids=[p.stem for p in ATTACK_FILES])
async def test_attack_is_stopped_and_host_keeps_serving(attack, make_host, data_folder,
                                                        monkeypatch):
    spec = attack_spec(attack)
    need_layers(REPORT, spec["requires"])
    monkeypatch.setenv("JAN_TEST_SECRET", "s3cr3t-value")
    listener = Listener()
    async with listener as port, make_host(settings=FAST) as jan, asgi_client(jan) as http:
        client = client_for(http)
        stage(data_folder, attack, port, await secret_thread(client, data_folder),
              listener.unix_path)
        run, reply = await run_text(client, "attacker", "go")
        check_outcome(spec, run, reply)
        assert run.metadata["jan_sandbox"] == REPORT.level
        assert (await http.get("/health")).status_code == 200
        canary, text = await run_text(client, "canary", "still there?")
        assert canary.status == "completed" and text == "canary ok: still there?"
        assert listener.connections == 0
    assert not (data_folder / "assistants" / "evil.txt").exists()


@pytest.mark.slow
async def test_real_server_port_and_secrets_stay_out_of_reach(jan_server, data_folder):
    """Against a real `jan serve`: its own API port, its environment, its /proc entries."""
    port = free_port()
    for name in ("tcp_connect", "env_secret", "proc_environ"):
        need_layers(REPORT, attack_spec(ATTACKS / f"{name}.py")["requires"])
        folder = write_assistant(data_folder, name, (ATTACKS / f"{name}.py").read_text())
        (folder / "port.txt").write_text(str(port))
    write_settings(data_folder, FAST)
    server = jan_server(port=port, env={"JAN_TEST_SECRET": "s3cr3t-value"})
    async with openai.AsyncOpenAI(base_url=server.base_url, api_key="local", max_retries=0,
                                  _strict_response_validation=True) as client:
        for name in ("tcp_connect", "env_secret", "proc_environ"):
            run, reply = await run_text(client, name, "go")
            assert run.status == "completed" and reply.startswith("DENIED"), (name, reply)
        async with httpx.AsyncClient() as http:
            assert (await http.get(server.url + "/health")).status_code == 200
    assert "s3cr3t-value" not in server.log()
