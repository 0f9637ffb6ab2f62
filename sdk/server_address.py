"""Where the running ``jan serve`` of a data folder listens, for client commands.

A running server writes ``<data>/server.json`` (pid, host, port, url) and removes it on exit.
Client commands (``jan chat``, ``jan run``, ``jan models ps|start|stop``...) read it, so a server
started on another port for the same data folder is found without flags. Precedence for a
client, highest first: an explicit ``--url``, ``$JAN_URL``, the address file of a live server,
``$JAN_HOST``/``$JAN_PORT``, ``settings.json`` ``server.host``/``server.port``, the default.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

ADDRESS_FILE = "server.json"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 1337


class ServerAddress(BaseModel):
    pid: int
    host: str
    port: int
    url: str
    """What a client on this machine connects to (loopback for a wildcard bind)."""
    started: float = 0.0
    data_folder: str = ""


def connect_url(host: str, port: int) -> str:
    """The URL a local client uses for a server bound to ``host:port``."""
    if host in ("", "0.0.0.0", "::", "[::]"):
        host = DEFAULT_HOST
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True


def read_address(data_folder: str | os.PathLike[str]) -> ServerAddress | None:
    """The recorded address of a live server, or ``None`` (no file, broken file, dead pid)."""
    try:
        raw = json.loads((Path(data_folder) / ADDRESS_FILE).read_text(encoding="utf-8"))
        address = ServerAddress.model_validate(raw)
    except (OSError, ValueError, ValidationError):
        return None
    return address if pid_alive(address.pid) else None


def configured_bind(host_settings: dict[str, Any] | None) -> tuple[str, int]:
    """``$JAN_HOST``/``$JAN_PORT`` over ``settings.json`` ``server.host``/``server.port``."""
    server = (host_settings or {}).get("server") or {}
    server = server if isinstance(server, dict) else {}
    host = os.environ.get("JAN_HOST") or server.get("host") or DEFAULT_HOST
    port_text = os.environ.get("JAN_PORT") or server.get("port") or DEFAULT_PORT
    try:
        port = int(port_text)
    except (TypeError, ValueError):
        raise ValueError(f"the port must be a number, not {port_text!r} "
                         "(check $JAN_PORT and settings.json server.port)") from None
    if not 0 < port < 65536:
        raise ValueError(f"the port must be between 1 and 65535, not {port}")
    return str(host), port


def server_url(data_folder: str | os.PathLike[str] | None, explicit: str | None = None,
               host_settings: dict[str, Any] | None = None) -> str:
    """The base URL (without ``/v1``) a client command should talk to."""
    url = explicit or os.environ.get("JAN_URL")
    if not url and data_folder is not None:
        found = read_address(data_folder)
        url = found.url if found else None
    if not url:
        url = connect_url(*configured_bind(host_settings))
    url = url.rstrip("/")
    return url[: -len("/v1")] if url.endswith("/v1") else url


def client_key(explicit: str | None, host_settings: dict[str, Any] | None) -> str | None:
    """The bearer key a client sends: ``--api-key``, ``$JAN_API_KEY``, ``server.api_key``."""
    if explicit or os.environ.get("JAN_API_KEY"):
        return explicit or os.environ.get("JAN_API_KEY")
    server = (host_settings or {}).get("server")
    return server.get("api_key") if isinstance(server, dict) else None
