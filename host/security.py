"""Browser safety for a loopback server: DNS rebinding and cross-site requests.

A web page can make the browser talk to ``127.0.0.1`` in two ways, both refused here before
any route runs:

- **DNS rebinding**: the page's own name is re-pointed at 127.0.0.1, so the browser sends
  ``Host: evil.example``. Only loopback names, IP literals and the configured host names are
  served.
- **Cross-site requests**: a ``text/plain`` or form POST needs no CORS preflight, and a GET
  by ``<script>`` or ``fetch(no-cors)`` reaches the server too. Browsers mark those with an
  ``Origin`` header and/or ``Sec-Fetch-Site: cross-site``; an ``Origin`` outside the CORS
  allowlist (and not the server's own) or a cross-site fetch is refused on every route.

Clients that send neither header (curl, the SDKs, scripts) are untouched, whatever their
``Content-Type``.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from starlette.types import Scope

from jan.sdk.errors import ApiError

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "[::1]", "::1"})


class Forbidden(ApiError):
    status = 403
    type = "invalid_request_error"
    code = "forbidden"


def _host_name(authority: str) -> str:
    """``Host`` header value without its port, lower-case (``[::1]:1337`` -> ``[::1]``)."""
    authority = authority.strip().lower()
    if authority.startswith("["):
        return authority.split("]", 1)[0] + "]"
    return authority.rsplit(":", 1)[0] if authority.count(":") == 1 else authority


def _never_rebound(name: str) -> bool:
    """Loopback names, and IP literals: rebinding needs a DNS name (a page whose origin is an
    IP address is that address), so ``Host: 192.168.1.5:1337`` on a LAN bind stays served."""
    if name in LOOPBACK_NAMES or name.endswith(".localhost"):
        return True
    try:
        ipaddress.ip_address(name.strip("[]"))
        return True
    except ValueError:
        return False


def _origin(value: str) -> str:
    """``scheme://host[:port]`` normalised, as browsers send and CORS allowlists list it."""
    parts = urlsplit(value.strip().lower())
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else value


class BrowserGuard:
    """Checks one request's ``Host``, ``Origin`` and ``Sec-Fetch-Site`` headers."""

    def __init__(self, *, allowed_hosts: list[str], cors_origins: list[str]) -> None:
        self.hosts = {_host_name(h) for h in allowed_hosts if h}
        self.any_host = "*" in allowed_hosts  # explicit opt-out, e.g. behind a reverse proxy
        self.origins = {_origin(o) for o in cors_origins if o != "*"}
        self.any_origin = "*" in cors_origins

    def check(self, scope: Scope) -> None:
        headers = _headers(scope)
        host = headers.get("host")
        if host is not None and not self.any_host:
            name = _host_name(host)
            if not (_never_rebound(name) or name in self.hosts):
                raise Forbidden(f"Host '{host[:100]}' is not allowed (only localhost and the "
                                "names in settings.json server.allowed_hosts are served)",
                                code="host_not_allowed")
        origin = headers.get("origin")
        if origin is not None and not self._origin_ok(origin, host):
            raise Forbidden(f"Cross-origin requests from '{origin[:100]}' are not allowed (add "
                            "it to settings.json server.cors_origins to allow it)",
                            code="cross_origin_forbidden")
        if (headers.get("sec-fetch-site") == "cross-site" and origin is None
                and not _is_navigation(scope, headers)):
            raise Forbidden("Cross-site requests are not allowed", code="cross_origin_forbidden")

    def _origin_ok(self, origin: str, host: str | None) -> bool:
        value = _origin(origin)
        if self.any_origin or value in self.origins:
            return True
        # The server's own pages (same origin): scheme://<Host header>.
        netloc = urlsplit(value).netloc
        return host is not None and netloc == host.strip().lower()


def _headers(scope: Scope) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in scope.get("headers") or []:
        out.setdefault(key.decode("latin-1").lower(), value.decode("latin-1"))
    return out


def _is_navigation(scope: Scope, headers: dict[str, str]) -> bool:
    """A link followed from another site: the page cannot read the answer, nor change state."""
    return scope.get("method") in ("GET", "HEAD") and headers.get("sec-fetch-mode") == "navigate"
