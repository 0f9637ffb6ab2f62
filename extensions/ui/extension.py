"""The ``ui`` extension: the browser chat UI at ``/``, served from this package's ``static/``.

The pages are plain HTML, CSS and a few ES modules that talk only to the public API (the same
``/v1`` any client uses), so the UI doubles as proof that an extension can contribute a whole
user interface. The one route of its own, ``POST /ui/render``, turns Markdown into safe HTML on
the server (see ``render.py``). Every response carries a strict Content-Security-Policy: no
inline script, nothing from other origins, images only from this origin or ``data:``.
"""

from __future__ import annotations

import asyncio
import mimetypes
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from jan.sdk import Extension, NotFound, hookimpl
from jan.sdk.http import Request, Response, json_response, read_body

from .render import pygments_css, render

STATIC = Path(__file__).with_name("static")
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; "
       "form-action 'self'; frame-ancestors 'none'; object-src 'none'")
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html",
         ".svg": "image/svg+xml", ".json": "application/json"}


class RenderRequest(BaseModel):
    """``POST /ui/render``: Markdown texts in, sanitised HTML out (same order)."""

    model_config = ConfigDict(extra="forbid")

    texts: list[str] = Field(max_length=200)


def _asset(name: str) -> Path:
    """A file under ``static/`` (no traversal: the resolved path must stay inside)."""
    try:  # a NUL or an unencodable character is no file name: 404 like any other miss
        path = (STATIC / name).resolve()
        found = path.is_file() and STATIC.resolve() in path.parents
    except (OSError, ValueError, UnicodeError):
        found = False
    if not found:
        raise NotFound(f"No UI asset '{name}'", code="unknown_url")
    return path


class UiExtension(Extension):
    def activate(self, ctx: Any) -> None:
        self.ctx = ctx
        self.css = pygments_css().encode()

    @hookimpl
    def register_routes(self, register: Callable[..., Any]) -> None:
        if not self.ctx.settings.get("enabled", True):
            return
        register("/", self.index, methods=["GET"])
        register("/ui/static/{name:path}", self.static, methods=["GET"])
        register("/ui/code.css", self.code_css, methods=["GET"])
        register("/ui/render", self.render, methods=["POST"])

    async def index(self, request: Request) -> Response:
        body = _asset("index.html").read_bytes()
        return Response(body, media_type="text/html; charset=utf-8",
                        headers={**HEADERS, "Cache-Control": "no-cache"})

    async def static(self, request: Request) -> Response:
        path = _asset(request.path_params["name"])
        media = TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "text/plain"
        # Assets change only with the package: revalidate cheaply, never serve stale after an
        # upgrade (no build step means no content hashes in the names).
        etag = f'"{path.stat().st_mtime_ns:x}-{path.stat().st_size:x}"'
        headers = {**HEADERS, "Cache-Control": "no-cache", "ETag": etag}
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        return Response(path.read_bytes(), media_type=media, headers=headers)

    async def code_css(self, request: Request) -> Response:
        return Response(self.css, media_type="text/css",
                        headers={**HEADERS, "Cache-Control": "max-age=3600"})

    async def render(self, request: Request) -> Response:
        body = await read_body(request, RenderRequest)
        html = await asyncio.to_thread(lambda: [render(t) for t in body.texts])
        return json_response({"html": html}, headers=HEADERS)
