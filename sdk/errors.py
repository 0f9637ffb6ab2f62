"""Errors that become OpenAI-shaped HTTP responses.

Raise an ``ApiError`` (or one of its subclasses) anywhere in a route, a service or an
extension; the host turns it into ``{"error": {"message", "type", "param", "code"}}`` with the
right status. Anything else that escapes a route becomes a 500 without a traceback.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error a client should see, with its HTTP status and OpenAI error fields."""

    status: int = 500
    type: str = "server_error"
    code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        type: str | None = None,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        if type is not None:
            self.type = type
        if code is not None:
            self.code = code
        self.param = param
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }


class InvalidRequest(ApiError):
    status = 400
    type = "invalid_request_error"


class Unauthorized(ApiError):
    status = 401
    type = "authentication_error"
    code = "invalid_api_key"


class NotFound(ApiError):
    status = 404
    type = "invalid_request_error"
    code = "not_found"


class Conflict(ApiError):
    status = 409
    type = "invalid_request_error"
    code = "conflict"


class Overloaded(ApiError):
    """The server is busy (a full queue): the client should retry later."""

    status = 503
    type = "server_error"
    code = "overloaded"

    def __init__(self, message: str, *, retry_after: int = 1, **kw: Any) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after)}, **kw)


class Unavailable(ApiError):
    """A backing service (database, engine runner) cannot be reached right now."""

    status = 503
    type = "server_error"
    code = "service_unavailable"
