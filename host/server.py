"""Serve a ``Jan`` with uvicorn: graceful on SIGINT/SIGTERM, loopback unless a key is set.

One server per data folder: an exclusive lock on ``<data>/server.lock`` is held while serving
(the kernel drops it if the process dies), and ``<data>/server.json`` records the address so
client commands find the server (``jan.sdk.server_address``). A second ``jan serve`` on the same
folder is refused with a message naming the first.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import uvicorn

from jan.sdk.server_address import (
    ADDRESS_FILE,
    ServerAddress,
    configured_bind,
    connect_url,
    read_address,
)
from jan.sdk.storage import atomic_write_json

from . import extension_logs
from .app import require_key_for
from .config import load_settings, resolve_data_folder
from .runtime import Jan

log = logging.getLogger("jan.host.server")
LOCK_FILE = "server.lock"


class AlreadyServing(Exception):
    """Another ``jan serve`` holds this data folder."""


def _take_lock(folder: Path) -> IO[str]:
    handle = (folder / LOCK_FILE).open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        other = read_address(folder)
        where = (f"pid {other.pid}, {other.url}/v1" if other else "starting or unknown address")
        raise AlreadyServing(
            f"jan: another jan server is already serving {folder} ({where}). Stop it first, "
            "or use another --data-folder. Client commands (jan chat, jan run, jan models ps) "
            "find the running server by themselves.") from None
    return handle


@contextlib.contextmanager
def single_instance(folder: Path, host: str, port: int) -> Iterator[ServerAddress]:
    """Hold the folder's server lock and publish the address while the block runs."""
    handle = _take_lock(folder)
    address = ServerAddress(pid=os.getpid(), host=host, port=port, url=connect_url(host, port),
                            started=time.time(), data_folder=str(folder))
    try:
        atomic_write_json(folder / ADDRESS_FILE, address.model_dump())
        yield address
    finally:
        with contextlib.suppress(OSError):
            current = read_address(folder)
            if current is None or current.pid == os.getpid():
                (folder / ADDRESS_FILE).unlink(missing_ok=True)
        handle.close()


def resolve_bind(folder: Path, host: str | None, port: int | None) -> tuple[str, int]:
    """Flags over ``$JAN_HOST``/``$JAN_PORT`` over ``settings.json`` ``server.host|port``."""
    settings = load_settings(folder).model_dump(mode="json")
    try:
        conf_host, conf_port = configured_bind(settings)
    except ValueError as exc:
        raise SystemExit(f"jan: {exc}") from None
    return host or conf_host, port or conf_port


def serve(*, data_folder: str | None, host: str | None = None, port: int | None = None,
          api_key: str | None = None, reload_bundled: bool = False) -> int:
    folder = resolve_data_folder(data_folder)
    host, port = resolve_bind(folder, host, port)
    try:
        with single_instance(folder, host, port):
            return _run(folder, host, port, api_key, reload_bundled)
    except AlreadyServing as exc:
        print(exc, file=sys.stderr, flush=True)
        return 1


def _run(folder: Path, host: str, port: int, api_key: str | None, reload_bundled: bool) -> int:
    extension_logs.install(folder)
    jan = Jan(folder, api_key=api_key, watch=True, watch_bundled=reload_bundled)
    require_key_for(host, jan.api_key)
    config = uvicorn.Config(
        jan.app, host=host, port=port, lifespan="on", interface="asgi3", log_level="warning",
        timeout_graceful_shutdown=int(os.environ.get("JAN_SHUTDOWN_GRACE", "10")),
        access_log=False,  # http="auto": httptools (a dependency) when importable, else h11
    )
    server = uvicorn.Server(config)
    # uvicorn re-raises the signal it caught once its graceful shutdown is done; with these
    # no-op handlers in place that re-raise lands here, and a clean shutdown exits 0.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: None)
    print(f"jan: serving {jan.data_folder} on http://{host}:{port}/v1", flush=True)
    server.run()
    return 0 if server.started else 1
