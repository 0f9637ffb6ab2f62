"""The ASGI app: routes contributed by extensions, behind one error, auth and size layer.

The route table is rebuilt whenever an extension is (de)activated and swapped in one
assignment, so requests already running keep the handler they started with. Every error
leaves as OpenAI's ``{"error": {...}}`` body; no traceback ever reaches a client.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import logging
from typing import Any

from starlette.middleware.cors import CORSMiddleware
from starlette.requests import ClientDisconnect
from starlette.routing import Match, Route, request_response
from starlette.types import ASGIApp, Receive, Scope, Send

from jan.sdk.errors import ApiError, NotFound, Unauthorized, Unavailable
from jan.sdk.storage import storage_error

from .hooks import RouteSpec
from .registry import ExtensionHost
from .security import BrowserGuard

log = logging.getLogger("jan.host.app")


class BodyTooLarge(ApiError):
    status = 413
    type = "invalid_request_error"
    code = "request_too_large"


class MethodNotAllowed(ApiError):
    status = 405
    type = "invalid_request_error"
    code = "method_not_allowed"


async def send_error(send: Send, exc: ApiError) -> None:
    body = json.dumps(exc.body()).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in exc.headers.items()]
    await send({"type": "http.response.start", "status": exc.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class _TrackedEndpoint:
    """An extension's endpoint as an ASGI app that counts in-flight requests for reload."""

    def __init__(self, host: ExtensionHost, spec: RouteSpec) -> None:
        self.host, self.spec = host, spec
        self.app = request_response(spec.endpoint)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        rec = self.host.records.get(self.spec.owner)
        if rec is not None:
            rec.inflight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            if rec is not None:
                rec.inflight -= 1


class Router:
    def __init__(self, host: ExtensionHost, builtin: list[Route]) -> None:
        self.host, self.builtin = host, builtin
        self.routes: tuple[tuple[Route, str | None], ...] = ()
        self.rebuild()
        host.on_routes_changed.append(self.rebuild)

    def rebuild(self) -> None:
        table: list[tuple[Route, str | None]] = [(r, None) for r in self.builtin]
        for spec in sorted(self.host.routes(), key=_literal_first):
            endpoint = _TrackedEndpoint(self.host, spec)
            table.append((Route(spec.path, endpoint, methods=spec.methods), spec.owner))
        self.routes = tuple(table)

    async def _wait_for_reloads(self, records: list, timeout: float = 30) -> None:
        try:
            async with asyncio.timeout(timeout):
                for rec in records:
                    await rec.ready.wait()
        except TimeoutError:
            raise Unavailable("An extension is still reloading; retry shortly") from None

    def _match(self, scope: Scope) -> tuple[Route | None, str | None, bool]:
        partial = False
        for route, owner in self.routes:
            match, child = route.matches(scope)
            if match == Match.FULL:
                scope.update(child)
                return route, owner, False
            partial = partial or match == Match.PARTIAL
        return None, None, partial

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        for attempt in range(3):
            route, owner, partial = self._match(scope)
            rec = self.host.records.get(owner) if owner else None
            if rec is not None and rec.state == "reloading":
                await self._wait_for_reloads([rec])
                continue
            if route is not None:
                await route.handle(scope, receive, send)
                return
            # The route may belong to an extension mid-reload (its old routes are already
            # gone, the new ones not yet there): wait for it rather than answer 404.
            reloading = [r for r in self.host.records.values() if r.state == "reloading"]
            if reloading:
                await self._wait_for_reloads(reloading)
                continue
            if attempt == 0 and await self.host.activate_for_path(scope["path"]):
                continue
            break
        if partial:
            raise MethodNotAllowed(f"Method {scope['method']} is not allowed on {scope['path']}")
        raise NotFound(f"No route for {scope['method']} {scope['path']}", code="unknown_url")


def _literal_first(spec: RouteSpec) -> tuple[int, ...]:
    """``/v1/threads/runs`` must win over ``/v1/threads/{thread_id}``, whoever registered first."""
    return tuple(1 if "{" in part else 0 for part in spec.path.strip("/").split("/"))


def _is_public_asset(path: str) -> bool:
    """The UI's page and static files: a browser cannot send a bearer key to load them."""
    return path == "/" or path == "/ui/code.css" or path.startswith("/ui/static/")


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class Guard:
    """Errors, browser safety, body size cap and the bearer key, around everything else."""

    def __init__(self, app: ASGIApp, *, api_key: str | None, max_body: int,
                 browser: BrowserGuard | None = None) -> None:
        self.app, self.api_key, self.max_body = app, api_key, max_body
        self.browser = browser or BrowserGuard(allowed_hosts=[], cors_origins=[])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: dict[str, Any]) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            self.browser.check(scope)  # before routing: a refused page learns nothing more
            self._check_auth(scope)
            receive = self._capped(scope, receive)
            await self.app(scope, receive, tracking_send)
        except ApiError as exc:
            if not started:
                await send_error(send, exc)
        except ClientDisconnect:  # the client left while sending its body: nobody to answer
            log.debug("client left during %s %s", scope.get("method"), scope.get("path"))
        except OSError as exc:
            full = storage_error(exc)  # a full disk anywhere is a 507, not a bare 500
            if full is None:
                log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            else:
                log.warning("%s %s: %s", scope.get("method"), scope.get("path"), exc)
            if not started:
                await send_error(send, full or ApiError("Internal server error"))
        except Exception:
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if not started:
                await send_error(send, ApiError("Internal server error"))

    def _check_auth(self, scope: Scope) -> None:
        if not self.api_key or scope["path"] == "/health" or scope["method"] == "OPTIONS":
            return
        if scope["method"] in ("GET", "HEAD") and _is_public_asset(scope["path"]):
            return  # the browser UI's own files hold no data; it asks for the key itself
        headers = dict(scope.get("headers") or [])
        auth = headers.get(b"authorization", b"")
        if not hmac.compare_digest(auth, f"Bearer {self.api_key}".encode()):
            raise Unauthorized("Missing or invalid API key (Authorization: Bearer <key>)")

    def _capped(self, scope: Scope, receive: Receive) -> Receive:
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        limit = self.max_body
        if length is not None and length.isdigit() and int(length) > limit:
            raise BodyTooLarge(f"Request body exceeds {limit} bytes")
        seen = 0

        async def capped() -> dict[str, Any]:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > limit:
                raise BodyTooLarge(f"Request body exceeds {limit} bytes")
            return message

        return capped


def build_app(host: ExtensionHost, builtin: list[Route], *, api_key: str | None,
              cors_origins: list[str], max_body: int,
              allowed_hosts: list[str] | None = None) -> ASGIApp:
    app: ASGIApp = Router(host, builtin)
    if cors_origins:
        app = CORSMiddleware(app, allow_origins=cors_origins, allow_methods=["*"],
                             allow_headers=["*"], allow_credentials=False, max_age=600)
    browser = BrowserGuard(allowed_hosts=allowed_hosts or [], cors_origins=cors_origins)
    return Guard(app, api_key=api_key, max_body=max_body, browser=browser)


def require_key_for(bind_host: str, api_key: str | None) -> None:
    """Binding beyond loopback without a key would expose everything: refuse."""
    if not _is_loopback(bind_host) and not api_key:
        raise SystemExit(
            f"Refusing to listen on {bind_host} without an API key: set JAN_API_KEY or "
            "settings.json server.api_key (clients then send 'Authorization: Bearer <key>')."
        )
