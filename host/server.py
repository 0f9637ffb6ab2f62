"""Serve a ``Jan`` with uvicorn: graceful on SIGINT/SIGTERM, loopback unless a key is set."""

from __future__ import annotations

import logging
import os
import signal

import uvicorn

from .app import require_key_for
from .runtime import Jan

log = logging.getLogger("jan.host.server")


def serve(*, data_folder: str | None, host: str, port: int, api_key: str | None = None,
          reload_bundled: bool = False) -> int:
    jan = Jan(data_folder, api_key=api_key, watch=True, watch_bundled=reload_bundled)
    require_key_for(host, jan.api_key)
    config = uvicorn.Config(
        jan.app, host=host, port=port, lifespan="on", interface="asgi3", log_level="warning",
        timeout_graceful_shutdown=int(os.environ.get("JAN_SHUTDOWN_GRACE", "10")),
        access_log=False,
    )
    server = uvicorn.Server(config)
    # uvicorn re-raises the signal it caught once its graceful shutdown is done; with these
    # no-op handlers in place that re-raise lands here, and a clean shutdown exits 0.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: None)
    print(f"jan: serving {jan.data_folder} on http://{host}:{port}/v1", flush=True)
    server.run()
    return 0 if server.started else 1
