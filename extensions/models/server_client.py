"""The running server, as ``jan models ps|start|stop|list`` see it (through its public API).

Loaded models live in the server's engine, not in this CLI process: the commands ask the server
found through the data folder's address file (``jan.sdk.server_address``).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import httpx

from jan.sdk import ApiError, Unavailable
from jan.sdk.server_address import client_key, read_address, server_url


def _client(ctx: Any, url: str | None = None) -> httpx.AsyncClient:
    base = server_url(ctx.data.root, url, ctx.host_settings)
    key = client_key(None, ctx.host_settings)
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.AsyncClient(base_url=base, headers=headers, timeout=httpx.Timeout(10, read=300))


async def call(ctx: Any, method: str, path: str, url: str | None = None) -> dict[str, Any]:
    """One API call; a ``Unavailable`` naming the address when no server answers."""
    async with _client(ctx, url) as client:
        try:
            r = await client.request(method, path)
        except httpx.HTTPError as exc:
            raise Unavailable(f"no jan server at {client.base_url} ({exc}); start one with "
                              "`jan serve`") from None
    try:
        body = r.json()
    except ValueError:
        body = {}
    if r.status_code >= 400:
        err = body.get("error") if isinstance(body, dict) else None
        message = err.get("message") if isinstance(err, dict) else r.text[:200]
        raise ApiError(str(message), status=r.status_code)
    return body


async def loaded(ctx: Any, url: str | None = None) -> list[dict[str, Any]] | None:
    """The server's loaded models, or ``None`` when no server runs for this data folder."""
    if url is None and read_address(ctx.data.root) is None and not os.environ.get("JAN_URL"):
        return None
    try:
        health = await call(ctx, "GET", "/health", url)
    except ApiError:
        return None
    return list(health.get("models") or [])


def rss_bytes(pid: int | None) -> int | None:
    """Resident memory of a runner process (Linux ``/proc``); ``None`` if unknown."""
    if not pid:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def idle_for(model: dict[str, Any]) -> str:
    if model.get("busy"):
        return "busy"
    seconds = max(0, int(time.time() - float(model.get("last_used") or time.time())))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"
