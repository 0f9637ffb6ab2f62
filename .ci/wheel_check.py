"""Check an installed (non-editable) jan: run with the python of a fresh venv holding the wheel.

``python .ci/wheel_check.py`` (standard library only, so nothing but the wheel's own dependencies
is needed) starts a private PostgreSQL cluster (so the PostgreSQL providers can be active too),
scaffolds a code assistant with the installed ``jan``, starts ``jan serve``, answers a chat
completion with the default model, runs the code assistant, and requires ``/health`` to be
``ok`` with every bundled extension active. Exit status 0 only if all of that holds.
"""

from __future__ import annotations

import contextlib
import glob
import importlib.resources
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(check: Callable[[], Any], what: str, timeout: float = 120.0) -> Any:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except Exception as exc:  # noqa: BLE001 - retried until the deadline
            last = exc
        time.sleep(0.2)
    raise SystemExit(f"wheel check: timed out waiting for {what} (last error: {last})")


@contextlib.contextmanager
def postgres() -> Iterator[str]:
    """A throwaway cluster on a free loopback port; yields its DSN."""
    initdb = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not initdb:
        raise SystemExit("wheel check: PostgreSQL server binaries not found")
    pg_bin = Path(initdb[-1]).parent
    root = Path(tempfile.mkdtemp(prefix="jan-wheel-pg-", dir="/var/tmp"))
    as_user: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        pw = pwd.getpwnam("postgres")
        os.chown(root, pw.pw_uid, pw.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    port, data = free_port(), root / "data"
    subprocess.run([*as_user, str(pg_bin / "initdb"), "-D", str(data), "-U", "jan",
                    "--auth=trust", "-E", "UTF8"], check=True, stdout=subprocess.DEVNULL)
    opts = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run([*as_user, str(pg_bin / "pg_ctl"), "-D", str(data), "-o", opts, "-l",
                    str(root / "log"), "-w", "start"], check=True, stdout=subprocess.DEVNULL)
    try:
        yield f"postgresql://jan@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, str(pg_bin / "pg_ctl"), "-D", str(data), "-m", "immediate",
                        "stop"], stdout=subprocess.DEVNULL, check=False)
        shutil.rmtree(root, ignore_errors=True)


def http(method: str, url: str, body: dict | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as resp:
        return json.loads(resp.read())


def bundled_ids() -> set[str]:
    root = importlib.resources.files("jan.bundled")
    return {p.name for p in root.iterdir() if (p / "extension.toml").is_file()}


def check_install() -> None:
    import jan.host

    where = Path(jan.host.__file__).resolve()
    if "site-packages" not in where.parts:
        raise SystemExit(f"wheel check: jan.host comes from {where}, not an installed wheel")


def main() -> int:
    check_install()
    data = Path(tempfile.mkdtemp(prefix="jan-wheel-data-"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with postgres() as dsn:
        (data / "settings.json").write_text(json.dumps({
            "modules": {"threads": "threads-postgresql", "messages": "messages-postgresql"},
            "extensions": {"threads-postgresql": {"dsn": dsn}}}))
        subprocess.run([str(BIN / "jan"), "--data-folder", str(data), "assistants", "new",
                        "Echo", "--id", "echo", "--code"], check=True)
        # SmolLM2 samples: unbounded, a rambling reply can outlast the sandbox's 60 s limit.
        manifest = data / "assistants" / "echo" / "assistant.json"
        manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "max_tokens": 32}))
        server = subprocess.Popen([str(BIN / "jan"), "serve", "--data-folder", str(data),
                                   "--port", str(port)])
        try:
            wait_for(lambda: http("GET", f"{base}/health"), "jan serve to answer")
            models = http("GET", f"{base}/v1/models")["data"]
            model = models[0]["id"]
            chat = http("POST", f"{base}/v1/chat/completions", {
                "model": model, "max_tokens": 8,
                "messages": [{"role": "user", "content": "Say hello"}]})
            assert chat["choices"][0]["message"]["content"], chat
            print(f"wheel check: chat completion from {model}: "
                  f"{chat['choices'][0]['message']['content']!r}")
            run = http("POST", f"{base}/v1/threads/runs", {
                "assistant_id": "echo",
                "thread": {"messages": [{"role": "user", "content": "Say hi"}]}})
            url = f"{base}/v1/threads/{run['thread_id']}/runs/{run['id']}"
            done = wait_for(lambda: (r := http("GET", url))["status"] not in (
                "queued", "in_progress") and r, "the code assistant's run")
            assert done["status"] == "completed", done
            msgs = http("GET", f"{base}/v1/threads/{run['thread_id']}/messages")["data"]
            reply = [m for m in msgs if m["role"] == "assistant"]
            assert reply and reply[0]["content"][0]["text"]["value"], msgs
            print(f"wheel check: code assistant ran in sandbox "
                  f"{done.get('metadata', {}).get('jan_sandbox')}")
            health = http("GET", f"{base}/health")
            states = {e["id"]: e["state"] for e in health["extensions"]}
            missing = {i for i in bundled_ids() if states.get(i) != "active"}
            assert not missing, f"not active: {sorted(missing)}: {health}"
            assert health["status"] == "ok", health
            print(f"wheel check: /health ok, all {len(states)} bundled extensions active")
        except urllib.error.HTTPError as exc:
            raise SystemExit(f"wheel check: {exc.url} answered {exc.code}: "
                             f"{exc.read().decode(errors='replace')}") from None
        finally:
            server.terminate()
            server.wait(timeout=30)
    shutil.rmtree(data, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
