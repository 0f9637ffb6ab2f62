"""Helpers for route handlers: parse and validate requests, answer JSON and SSE.

Route endpoints are Starlette endpoints (``async def endpoint(request) -> Response``);
these helpers make every bad input a 400 naming the field, in OpenAI's error shape.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import AsyncIterator
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from .errors import ApiError, InvalidRequest
from .storage import storage_error

M = TypeVar("M", bound=BaseModel)

__all__ = [
    "Request", "Response", "JSONResponse", "StreamingResponse",
    "read_body", "parse", "json_response", "sse_response", "PageQuery", "page_query",
    "validation_message", "loads_strict", "dumps_strict",
]


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON (numbers must be finite)")


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):  # 1e999 is valid JSON syntax but overflows to infinity
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def loads_strict(raw: bytes | str) -> Any:
    """``json.loads`` that refuses ``NaN``, ``Infinity``, ``-Infinity`` and overflowing numbers."""
    return json.loads(raw, parse_constant=_no_constant, parse_float=_finite)


def dumps_strict(data: Any) -> str:
    """Compact JSON; a non-finite float raises ``ValueError`` instead of emitting ``NaN``."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def validation_message(exc: ValidationError, *, top_level: bool = False
                       ) -> tuple[str, str | None]:
    """The first pydantic error as ``(message, param)``, e.g. ``("Invalid 'limit': ...", "limit")``.

    ``param`` is the field's path (``messages.0.content``), or only its first part when
    ``top_level``; pydantic's union-member tags (``list[str]``) are left out.
    """
    err = exc.errors()[0]
    loc = [str(p) for p in err.get("loc", ()) if p != "body" and "[" not in str(p)]
    param = (loc[0] if top_level else ".".join(loc)) if loc else None
    if err.get("type") == "missing" and param:
        return f"Missing required parameter: '{param}'", param
    msg = err.get("msg", "invalid value")
    return (f"Invalid '{param}': {msg}" if param else msg), param


def parse(model: type[M], data: Any, *, top_level: bool = False) -> M:
    """Validate ``data`` into ``model`` or raise a 400 naming the offending field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        message, param = validation_message(exc, top_level=top_level)
        raise InvalidRequest(message, param=param) from None


async def read_body(request: Request, model: type[M] | None = None, *, optional: bool = False):
    """The request's JSON body, validated into ``model`` when given.

    An empty body is ``{}`` when ``optional``; malformed JSON or a non-object is a 400.
    """
    raw = await request.body()
    if not raw.strip():
        if not optional:
            raise InvalidRequest("Request body must be a JSON object", param=None)
        data: Any = {}
    else:
        try:
            data = loads_strict(raw)
            # Lone surrogates ("\ud800") parse but cannot be stored or encoded later.
            json.dumps(data, ensure_ascii=False).encode()
        except RecursionError:
            raise InvalidRequest("Request body is nested too deeply") from None
        except UnicodeEncodeError:
            raise InvalidRequest("Request body contains invalid Unicode (a lone surrogate)"
                                 ) from None
        except ValueError as exc:
            raise InvalidRequest(f"Request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidRequest("Request body must be a JSON object")
    return parse(model, data) if model is not None else data


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    if isinstance(data, BaseModel):
        data = data.model_dump(mode="json")
    body = dumps_strict(data).encode()
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def _sse_line(payload: Any, event: str | None = None) -> bytes:
    text = payload if isinstance(payload, str) else dumps_strict(payload)
    prefix = f"event: {event}\n" if event else ""
    return f"{prefix}data: {text}\n\n".encode()


def sse_response(events: AsyncIterator[Any], *, done: bool = True) -> StreamingResponse:
    """Stream ``events`` as Server-Sent Events, then ``data: [DONE]``.

    Items are JSON-able payloads or ``(event_name, payload)`` tuples. An ``ApiError`` raised
    mid-stream becomes an ``error`` event in OpenAI's shape instead of a cut connection; any
    other exception becomes a generic server error (never a traceback).
    """

    async def body() -> AsyncIterator[bytes]:
        try:
            async for item in events:
                if isinstance(item, tuple):
                    yield _sse_line(item[1], event=item[0])
                else:
                    yield _sse_line(item)
        except ApiError as exc:
            yield _sse_line(exc.body())
        except OSError as exc:
            err = storage_error(exc)
            if err is None:
                logging.getLogger("jan.http").exception("stream failed")
            yield _sse_line((err or ApiError("Internal error while streaming")).body())
        except Exception:  # noqa: BLE001 - reported to the client without internals
            logging.getLogger("jan.http").exception("stream failed")
            yield _sse_line(ApiError("Internal error while streaming").body())
        finally:
            # A client that left stops this generator; close the source too, so whatever
            # produces the events (a generation, a run) is cancelled rather than orphaned.
            aclose = getattr(events, "aclose", None)
            if aclose is not None:
                await aclose()
        if done:
            yield b"data: [DONE]\n\n"

    return StreamingResponse(
        body(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


class PageQuery(BaseModel):
    limit: int = 20
    order: Literal["asc", "desc"] = "desc"
    after: str | None = None
    before: str | None = None


def page_query(request: Request, *, max_limit: int = 100) -> PageQuery:
    """Parse ``limit`` (1..max_limit), ``order`` (asc|desc), ``after``, ``before``."""
    q = parse(PageQuery, dict(request.query_params))
    if not 1 <= q.limit <= max_limit:
        raise InvalidRequest(f"Invalid 'limit': must be between 1 and {max_limit}", param="limit")
    return q
