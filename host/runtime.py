"""One running Jan: data folder + settings + extension host + core services + ASGI app."""

from __future__ import annotations

import hmac
import logging
import os
from pathlib import Path
from typing import Any, Literal

from starlette.requests import Request
from starlette.routing import Route

from jan.sdk.http import json_response
from jan.sdk.inference import REMOTE_INFERENCE
from jan.sdk.services import INFERENCE, SANDBOX

from . import __version__
from .app import build_app
from .config import Settings, allowed_hosts, load_settings, resolve_data_folder
from .discovery import bundled_folder
from .doctor import disk_report
from .openapi import openapi_endpoint
from .registry import HOST_PROVIDER, ExtensionHost
from .reports import metrics_endpoint, service_reports

log = logging.getLogger("jan.host")


class Jan:
    """Build with a data folder; ``await start()``; serve ``.app``; ``await stop()``."""

    def __init__(self, data_folder: str | os.PathLike[str] | None = None, *,
                 settings: Settings | None = None, bundled: Path | None | bool = True,
                 entry_points: bool = True, api_key: str | None = None,
                 core_services: bool | Literal["lazy"] = True, watch: bool = False,
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
        builtin = [Route("/health", self.health, methods=["GET"]),
                   Route("/metrics", metrics_endpoint(self.host.services), methods=["GET"]),
                   Route("/openapi.json", openapi_endpoint(self.host), methods=["GET"])]
        self._app = build_app(self.host, builtin,
                              api_key=key, cors_origins=server.cors_origins,
                              max_body=server.max_body_bytes,
                              allowed_hosts=allowed_hosts(server))

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
        problems = self.problems()
        if problems:
            log.warning("jan is degraded: %s", "; ".join(problems))
        if self.watch:
            from .reload import Reloader

            self.reloader = Reloader(self, watch_bundled=self.watch_bundled)
            await self.reloader.start()

    async def start_for_command(self, ext_id: str, command: str) -> bool:
        """Start just enough to run ``jan <command>`` of ``ext_id``: that extension, what it
        depends on, the providers settings.json chose, and extensions activated
        ``onCommand:`` it. The engine and sandbox are created only if the command uses them."""
        if self.want_core_services:
            self._start_core_services()
        self.host.load_records()
        rec = self.host.records.get(ext_id)
        declared = rec.manifest.contributes.commands if rec else []
        if not any(c.name == command for c in declared):
            # Not in the manifest: nothing says what it needs, so start everything as before.
            await self.host.start()
            await self.host.activate_for_command(command)
            return await self.host.activate(ext_id)
        self.host.plan()
        for chosen in dict.fromkeys(self.settings.modules.values()):
            await self.host.activate(chosen)
        uses = next((c.requires for c in declared if c.name == command), [])
        for other in list(self.host.records.values()):
            if other.state == "inactive" and self.host.wants_startup(other) and \
                    set(uses) & set(other.manifest.provides):
                await self.host.activate(other.id)
        await self.host.activate_for_command(command)
        return await self.host.activate(ext_id)

    def _start_core_services(self) -> None:
        """The engine and the sandbox belong to the host (they own processes)."""
        for name in (INFERENCE, SANDBOX):
            if self.want_core_services == "lazy":
                self.host.services.provide_lazy(name, lambda n=name: self._create_core(n, True),
                                                provider=HOST_PROVIDER)
                continue
            try:
                service = self._create_core(name, False)
            except Exception:  # noqa: BLE001 - reported in /health, host keeps going
                continue
            self.host.services.provide(name, service, provider=HOST_PROVIDER)

    def _create_core(self, name: str, lazy: bool) -> Any:
        module_name, section = {INFERENCE: ("jan.host.engine", self.settings.engine),
                                SANDBOX: ("jan.host.sandbox", self.settings.sandbox)}[name]
        try:
            module = __import__(module_name, fromlist=["create_service"])
            kwargs: dict[str, Any] = {"settings": section, "events": self.host.bus,
                                      "log": logging.getLogger(module_name)}
            kwargs["data"] = self.host.data  # the engine keeps its KV state cache there
            if name == SANDBOX:
                kwargs["services"] = self.host.services
            service = module.create_service(**kwargs)
        except Exception as exc:
            if not lazy:
                log.exception("core service %s unavailable", name)
            self.core_errors[name] = f"{type(exc).__name__}: {exc}"
            raise
        if name == INFERENCE and hasattr(service, "remote"):
            service.remote = self._remote_engine
        self.core[name] = service
        return service

    def _remote_engine(self) -> Any:
        """The ``remote-inference`` provider (engine-openai), or None when none is active."""
        if not self.host.services.providers(REMOTE_INFERENCE):
            return None
        return self.host.services.get(REMOTE_INFERENCE)

    def problems(self) -> list[str]:
        """What is missing: failed core services and bundled extensions that failed to load.

        A bundled extension that is merely inactive (lazy) or disabled by the user is fine."""
        out = [f"core service '{name}' failed: {why}" for name, why in self.core_errors.items()]
        for rec in self.host.records.values():
            if rec.candidate.source == "bundled" and rec.state == "failed":
                out.append(f"bundled extension '{rec.id}' failed: {rec.reason}")
        return out

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
        keyed = bool(self.api_key) and hmac.compare_digest(
            request.headers.get("authorization", "").encode(), f"Bearer {self.api_key}".encode())
        services, service_problems = service_reports(self.host.services)
        problems = self.problems() + service_problems
        if self.api_key and not keyed:  # liveness only; what is broken (and why) needs the key
            return json_response({"status": "degraded" if problems else "ok"})
        body: dict[str, Any] = {
            "status": "degraded" if problems else "ok",
            "problems": problems,
            "version": __version__,
            "extensions": self.host.describe(),
            "manifest_errors": self.host.manifest_errors,
            "core_errors": self.core_errors,
        }
        if keyed:  # where the user's files are is only for a client holding the key
            body["data_folder"] = str(self.data_folder)
        try:
            disk = disk_report(self.data_folder)
            body["disk"] = {"free_bytes": disk.free_bytes, "total_bytes": disk.total_bytes,
                            "low": disk.low}
        except OSError as exc:
            body["disk"] = {"error": str(exc)}
        for name, details in services.items():  # each service under its own name
            body.setdefault(name, details)
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
        return json_response(body)
