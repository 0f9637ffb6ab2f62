"""One running Jan: data folder + settings + extension host + core services + ASGI app."""

from __future__ import annotations

import hmac
import logging
import os
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from jan.sdk.http import json_response
from jan.sdk.services import INFERENCE, SANDBOX

from . import __version__
from .app import build_app
from .config import Settings, load_settings, resolve_data_folder
from .discovery import bundled_folder
from .registry import HOST_PROVIDER, ExtensionHost

log = logging.getLogger("jan.host")


class Jan:
    """Build with a data folder; ``await start()``; serve ``.app``; ``await stop()``."""

    def __init__(self, data_folder: str | os.PathLike[str] | None = None, *,
                 settings: Settings | None = None, bundled: Path | None | bool = True,
                 entry_points: bool = True, api_key: str | None = None,
                 core_services: bool = True, watch: bool = False,
                 watch_bundled: bool = False) -> None:
        self.data_folder = resolve_data_folder(data_folder)
        self.settings = settings or load_settings(self.data_folder)
        folder = bundled_folder() if bundled is True else (bundled or None)
        self.host = ExtensionHost(self.data_folder, self.settings, bundled=folder,
                                  entry_points=entry_points)
        self.want_core_services = core_services
        self.core: dict[str, Any] = {}
        self.core_errors: dict[str, str] = {}
        self.reloader: Any = None
        self.watch, self.watch_bundled = watch, watch_bundled
        server = self.settings.server
        key = api_key or os.environ.get("JAN_API_KEY") or server.api_key
        self.api_key = key
        self._app = build_app(self.host, [Route("/health", self.health, methods=["GET"])],
                              api_key=key, cors_origins=server.cors_origins,
                              max_body=server.max_body_bytes)

    async def app(self, scope, receive, send) -> None:  # noqa: ANN001 - ASGI
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        await self._app(scope, receive, send)

    async def _lifespan(self, receive, send) -> None:  # noqa: ANN001
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.start()
                except Exception as exc:  # noqa: BLE001 - reported to the server
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def start(self) -> None:
        if self.want_core_services:
            self._start_core_services()
        self.host.load_records()
        await self.host.start()
        if self.watch:
            from .reload import Reloader

            self.reloader = Reloader(self, watch_bundled=self.watch_bundled)
            await self.reloader.start()

    def _start_core_services(self) -> None:
        """The engine and the sandbox belong to the host (they own processes)."""
        factories = {
            INFERENCE: ("jan.host.engine", self.settings.engine),
            SANDBOX: ("jan.host.sandbox", self.settings.sandbox),
        }
        for name, (module_name, section) in factories.items():
            try:
                module = __import__(module_name, fromlist=["create_service"])
                kwargs: dict[str, Any] = {"settings": section, "events": self.host.bus,
                                          "log": logging.getLogger(module_name)}
                if name == SANDBOX:
                    kwargs.update(data=self.host.data, services=self.host.services)
                service = module.create_service(**kwargs)
            except Exception as exc:  # noqa: BLE001 - reported in /health, host keeps going
                log.exception("core service %s unavailable", name)
                self.core_errors[name] = f"{type(exc).__name__}: {exc}"
                continue
            self.core[name] = service
            self.host.services.provide(name, service, provider=HOST_PROVIDER)

    async def stop(self) -> None:
        if self.reloader is not None:
            await self.reloader.stop()
        await self.host.stop()
        for name, service in list(self.core.items()):
            close = getattr(service, "close", None)
            if close is not None:
                try:
                    await close()
                except Exception:
                    log.exception("closing %s failed", name)
        self.core.clear()

    async def health(self, request: Request):  # noqa: ANN201
        if self.api_key and not hmac.compare_digest(
                request.headers.get("authorization", "").encode(),
                f"Bearer {self.api_key}".encode()):
            return json_response({"status": "ok"})  # liveness only; details need the key
        body: dict[str, Any] = {
            "status": "ok",
            "version": __version__,
            "data_folder": str(self.data_folder),
            "extensions": self.host.describe(),
            "manifest_errors": self.host.manifest_errors,
            "core_errors": self.core_errors,
        }
        engine = self.core.get(INFERENCE)
        if engine is not None:
            body["models"] = [m.model_dump(mode="json") for m in engine.loaded()]
        sandbox = self.core.get(SANDBOX)
        if sandbox is not None and hasattr(sandbox, "probe"):
            try:
                report = sandbox.probe()
                body["sandbox"] = report.model_dump(mode="json") if hasattr(
                    report, "model_dump") else report
            except Exception as exc:  # noqa: BLE001
                body["sandbox"] = {"error": str(exc)}
        # Counts an extension reports about its data (files: files, stores, chunks, indexing).
        if self.host.services.providers("files"):
            try:
                body["files"] = self.host.services.get("files").counts()
            except Exception as exc:  # noqa: BLE001 - a broken provider must not break /health
                body["files"] = {"error": str(exc)}
        return json_response(body)
