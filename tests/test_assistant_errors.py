"""Assistant authors (issue 16, point 5): errors that point at their code, logs they can read,
and the ``jan assistants new|logs|rm`` commands, through the real API and the real CLI."""

from __future__ import annotations

import json
import logging
import queue
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sandbox_fixtures import FAST, asgi_client, client_for, run_text, write_assistant

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
README = Path(__file__).resolve().parents[1] / "README.md"

RUNTIME_ERROR = """\
from jan.sdk.assistant import assistant, events


def lookup(data):
    return data["missing"]


@events.on(f"assistant:{assistant.id}")
def reply(event):
    return lookup({"present": 1})
"""


async def test_a_runtime_error_shows_the_index_py_line(make_host, data_folder, caplog):
    write_assistant(data_folder, "buggy", RUNTIME_ERROR)
    caplog.set_level(logging.INFO)
    async with make_host(settings=FAST) as jan, asgi_client(jan) as http:
        run, _ = await run_text(client_for(http), "buggy", "go")
    assert run.status == "failed"
    message = run.last_error.message
    assert message.startswith("KeyError: 'missing'"), message
    assert 'File "index.py", line 10, in reply' in message
    assert 'File "index.py", line 5, in lookup' in message
    assert 'return data["missing"]' in message
    assert str(data_folder) not in message  # paths relative to the assistant's folder
    server_log = caplog.text
    assert 'File "index.py", line 5, in lookup' in server_log
    assert "Task exception was never retrieved" not in server_log
    log = (data_folder / "logs" / "assistants" / "buggy.log").read_text()
    assert "KeyError: 'missing'" in log and "line 5" in log


async def test_the_assistants_api_shows_a_code_assistants_sandbox_and_last_error(
        make_host, data_folder):
    """What the UI's assistants page shows: isolation level and the last failure."""
    write_assistant(data_folder, "buggy", RUNTIME_ERROR)
    async with make_host(settings=FAST) as jan, asgi_client(jan) as http:
        before = (await http.get("/v1/assistants/buggy")).json()["jan_sandbox"]
        assert before["last_error"] is None
        run, _ = await run_text(client_for(http), "buggy", "go")
        assert run.status == "failed"
        after = (await http.get("/v1/assistants/buggy")).json()["jan_sandbox"]
        listed = {a["id"]: a for a in (await http.get("/v1/assistants")).json()["data"]}
    assert after["level"] in ("full", "partial", "basic", "off")
    assert after["last_error"]["code"] == "handler_error"
    assert after["last_error"]["message"].startswith("KeyError: 'missing'")
    assert after["last_error"]["at"] > 0
    assert listed["buggy"]["jan_sandbox"] == after
    assert "jan_sandbox" not in listed["jan"]  # a plain assistant has no code


PRINTER = """\
import logging
from jan.sdk.assistant import assistant, events

log = logging.getLogger("printer")


@events.on(f"assistant:{assistant.id}")
def reply(event):
    print("hello from print", event.run_id)
    log.info("hello from logging")
    return "printed"
"""


async def test_print_and_logging_land_in_the_assistant_log(make_host, data_folder):
    write_assistant(data_folder, "printer", PRINTER)
    log = data_folder / "logs" / "assistants" / "printer.log"
    async with make_host(settings=FAST) as jan, asgi_client(jan) as http:
        run, text = await run_text(client_for(http), "printer", "go")
        assert run.status == "completed" and text == "printed"
        deadline = time.monotonic() + 10
        while "hello from logging" not in (log.read_text() if log.exists() else ""):
            assert time.monotonic() < deadline, "logging output never reached the log"
            time.sleep(0.05)
    content = log.read_text()
    assert f"hello from print {run.id}" in content
    assert "INFO printer: hello from logging" in content
    assert f"--- {run.id}" in content  # the host marks where each run starts


NETWORK = """\
import urllib.request
from jan.sdk.assistant import assistant, events


@events.on(f"assistant:{assistant.id}")
def reply(event):
    return urllib.request.urlopen("http://example.com/").read()
"""
MISSING_MODULE = """\
import jan_no_such_module_xyz
from jan.sdk.assistant import assistant, events
"""


async def test_sandbox_errors_say_they_come_from_the_sandbox(make_host, data_folder):
    write_assistant(data_folder, "online", NETWORK)
    write_assistant(data_folder, "needs-dep", MISSING_MODULE)
    async with make_host(settings=FAST) as jan, asgi_client(jan) as http:
        client = client_for(http)
        online, _ = await run_text(client, "online", "go")
        needs, _ = await run_text(client, "needs-dep", "go")
    assert online.status == "failed"
    assert "network access is blocked for assistant code" in online.last_error.message
    assert 'File "index.py", line 7, in reply' in online.last_error.message
    assert needs.status == "failed"
    message = needs.last_error.message
    assert "No module named 'jan_no_such_module_xyz'" in message
    assert "requirements.txt" in message and "jan assistants install needs-dep" in message
    assert 'File "index.py", line 1' in message


INSTRUCTIONS = """\
from jan.sdk.assistant import assistant, events


@events.on(f"assistant:{assistant.id}")
def reply(event):
    return f"instructions: {assistant.instructions}"
"""


async def test_code_reads_its_instructions_from_assistant_json(make_host, data_folder):
    folder = write_assistant(data_folder, "poet", INSTRUCTIONS, instructions="Speak in rhyme.")
    async with make_host(settings=FAST) as jan, asgi_client(jan) as http:
        client = client_for(http)
        _, text = await run_text(client, "poet", "go")
        assert text == "instructions: Speak in rhyme."
        # Edited through the API, the next run sees the new instructions.
        await client.beta.assistants.update("poet", instructions="Speak plainly.")
        _, text2 = await run_text(client, "poet", "go")
    assert text2 == "instructions: Speak plainly."
    assert (folder / "assistant.json").is_file()


# ------------------------------------------------------------------------------ the CLI
def jan(folder: Path, *args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "jan.host.cli", *args, "--data-folder",
                           str(folder)], capture_output=True, text=True, timeout=120, **kw)


def readme_example() -> str:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    return next(b for b in blocks if '@events.on("assistant:shakespeare")' in b)


def test_scaffold_matches_the_readme_example(data_folder):
    done = jan(data_folder, "assistants", "new", "Shakespeare", "--code",
               "--instructions", "Answer like Shakespeare.")
    assert done.returncode == 0, done.stderr
    folder = data_folder / "assistants" / "shakespeare"
    code = (folder / "index.py").read_text()
    body = code.split('"""', 2)[2].lstrip("\n")  # after the module docstring
    assert body == readme_example()
    assert "events.emit" not in code  # publishing the answers is opt-in
    manifest = json.loads((folder / "assistant.json").read_text())
    assert manifest["instructions"] == "Answer like Shakespeare."
    assert manifest["max_tokens"] == 128  # a sampled reply ends well inside the 60 s limit


async def test_logs_and_rm_commands(make_host, data_folder):
    write_assistant(data_folder, "printer", PRINTER)
    log = data_folder / "logs" / "assistants" / "printer.log"
    async with make_host(settings=FAST) as jan_host, asgi_client(jan_host) as http:
        client = client_for(http)
        first, _ = await run_text(client, "printer", "go")
        shown = jan(data_folder, "assistants", "logs", "printer")
        assert shown.returncode == 0, shown.stderr
        assert f"hello from print {first.id}" in shown.stdout
        follow = subprocess.Popen(
            [sys.executable, "-m", "jan.host.cli", "assistants", "logs", "printer", "-f",
             "-n", "0", "--data-folder", str(data_folder)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: [lines.put(x) for x in follow.stdout],
                         daemon=True).start()
        try:
            assert "following" in follow.stderr.readline()  # it says so once it is watching
            second, _ = await run_text(client, "printer", "again")
            while second.id not in lines.get(timeout=15):
                pass
        finally:
            follow.terminate()
            follow.wait(10)
    refused = jan(data_folder, "assistants", "rm", "printer", stdin=subprocess.DEVNULL)
    assert refused.returncode == 1 and "--yes" in refused.stderr
    assert (data_folder / "assistants" / "printer").is_dir()
    removed = jan(data_folder, "assistants", "rm", "printer", "--yes")
    assert removed.returncode == 0, removed.stderr
    assert not (data_folder / "assistants" / "printer").exists()
    assert not log.exists()
    missing = jan(data_folder, "assistants", "logs", "printer")
    assert missing.returncode == 1 and "printer" in missing.stderr
