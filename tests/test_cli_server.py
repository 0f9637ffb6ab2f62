"""Where ``jan serve`` listens, how clients find it, and one server per data folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from cli_fixtures import jan
from conftest import RunningServer, free_port, start_server

from jan.sdk.server_address import read_address, server_url

pytestmark = pytest.mark.slow


def serve_without_port(folder: Path, env: dict[str, str]) -> RunningServer:
    """``jan serve`` with no --port: the port must come from the environment or settings."""
    log_path = folder.parent / "serve.log"
    proc = subprocess.Popen([sys.executable, "-m", "jan.host.cli", "serve", "--data-folder",
                             str(folder)], stdout=log_path.open("wb"), stderr=subprocess.STDOUT,
                            env={**os.environ, **env}, start_new_session=True)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert proc.poll() is None, log_path.read_text()
        address = read_address(folder)
        if address is not None:
            try:
                if httpx.get(address.url + "/health", timeout=1).status_code == 200:
                    return RunningServer(proc, address.url, log_path)
            except httpx.HTTPError:
                pass
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"no server came up:\n{log_path.read_text()}")


def test_port_from_env_then_settings_and_the_address_file(data_folder):
    port = free_port()
    server = serve_without_port(data_folder, {"JAN_PORT": str(port)})
    try:
        address = json.loads((data_folder / "server.json").read_text())
        assert address["port"] == port and address["pid"] == server.proc.pid
        assert server_url(data_folder) == f"http://127.0.0.1:{port}"
    finally:
        assert server.stop() == 0
    assert not (data_folder / "server.json").exists()  # a stopped server is not advertised

    port = free_port()
    (data_folder / "settings.json").write_text(json.dumps({"server": {"port": port}}))
    env = {k: "" for k in ("JAN_PORT", "JAN_HOST")}
    server = serve_without_port(data_folder, env)
    try:
        assert read_address(data_folder).port == port
    finally:
        server.stop()


def test_a_second_server_on_the_same_folder_is_refused(data_folder):
    first = start_server(data_folder)
    try:
        second = jan(data_folder, "serve", "--port", str(free_port()), timeout=90)
        assert second.returncode == 1
        assert "another jan server is already serving" in second.stderr
        assert f"pid {first.proc.pid}" in second.stderr and first.url in second.stderr
        assert httpx.get(first.url + "/health").status_code == 200  # the first is untouched
        assert read_address(data_folder).pid == first.proc.pid
    finally:
        first.stop()
