"""Helpers for the sandbox and runs tests: write assistants and models, run through the client.

Attack files live in ``tests/sandbox_attacks/``; each is an assistant ``index.py`` whose header
says what must happen::

    # expect: denied              (the run completes and its reply starts with "DENIED")
    # expect: failed <text>       (the run fails and last_error contains <text>)
    # requires: seccomp|landlock  (skip only if the probe reports all of these unavailable)
"""

from __future__ import annotations

import json
import os
import re
import textwrap
import zipfile
from pathlib import Path
from typing import Any

import openai
import pytest
from conftest import IN_CI, asgi_client

ATTACKS = Path(__file__).resolve().parent / "sandbox_attacks"
MODEL = "smollm2"
FAST = {"sandbox": {"timeout": 3, "autostart": False}}


def write_assistant(data: Path, assistant_id: str, code: str | None = None,
                    **fields: Any) -> Path:
    folder = data / "assistants" / assistant_id
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "assistant.json").write_text(json.dumps({"id": assistant_id, **fields}))
    if code is not None:
        (folder / "index.py").write_text(textwrap.dedent(code))
    return folder


def write_model(data: Path, gguf: Path, **parameters: Any) -> None:
    folder = data / "models" / MODEL
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.json").write_text(json.dumps({
        "id": MODEL, "object": "model", "name": "SmolLM2 135M", "format": "gguf",
        "engine": "llama-cpp",
        "settings": {"llama_model_path": str(gguf), "ctx_len": 2048, "n_parallel": 2},
        "parameters": {"temperature": 0, **parameters},
    }))


def client_for(http: Any) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url="http://test/v1", api_key="local", http_client=http,
                              _strict_response_validation=True, max_retries=0)


async def run_text(client: openai.AsyncOpenAI, assistant_id: str, text: str,
                   thread_id: str | None = None, **kw: Any) -> tuple[Any, str | None]:
    """Run ``assistant_id`` on a (new) thread with one user message: (run, reply text)."""
    if thread_id is None:
        thread = await client.beta.threads.create(messages=[{"role": "user", "content": text}])
        thread_id = thread.id
    else:
        await client.beta.threads.messages.create(thread_id, role="user", content=text)
    run = await client.beta.threads.runs.create_and_poll(
        thread_id=thread_id, assistant_id=assistant_id, poll_interval_ms=50, **kw)
    replies = await client.beta.threads.messages.list(thread_id=thread_id, order="desc")
    mine = [m for m in replies.data if m.run_id == run.id and m.role == "assistant"]
    reply = mine[0].content[0].text.value if mine else None
    return run, reply


def attack_spec(path: Path) -> dict[str, Any]:
    head = path.read_text().split("\n\n", 1)[0]
    expect = re.search(r"^# expect: (\w+) ?(.*)$", head, re.M)
    requires = re.search(r"^# requires: (.+)$", head, re.M)
    assert expect, f"{path.name} has no '# expect:' header"
    return {"outcome": expect.group(1), "text": expect.group(2).strip(),
            "requires": requires.group(1).split("|") if requires else []}


def need_layers(report: Any, layers: list[str]) -> None:
    """Skip only when every listed layer is reported unavailable; never under CI=true if any is
    available (then the attack must be stopped)."""
    if not layers or any(report.available(name) for name in layers):
        return
    reason = f"isolation layers {layers} unavailable: {report.error or 'see jan sandbox probe'}"
    if IN_CI and report.error is None:
        pytest.fail(f"required under CI: {reason}")
    pytest.skip(reason)


def build_wheel(folder: Path, name: str, value: str) -> Path:
    """A minimal pure-Python wheel, built by hand (no network, no build backend)."""
    wheel = folder / f"{name}-1.0-py3-none-any.whl"
    dist = f"{name}-1.0.dist-info"
    files = {
        f"{name}/__init__.py": f"VALUE = {value!r}\n",
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n",
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: jan-tests\nRoot-Is-Purelib: true\n"
                         "Tag: py3-none-any\n",
    }
    record = "".join(f"{p},,\n" for p in files) + f"{dist}/RECORD,,\n"
    with zipfile.ZipFile(wheel, "w") as z:
        for path, text in {**files, f"{dist}/RECORD": record}.items():
            z.writestr(path, text)
    return wheel


def jan_cli_env() -> dict[str, str]:
    return {**os.environ, "JAN_DATA_FOLDER": ""}


__all__ = ["ATTACKS", "FAST", "MODEL", "asgi_client", "attack_spec", "build_wheel",
           "client_for", "need_layers", "run_text", "write_assistant", "write_model"]
