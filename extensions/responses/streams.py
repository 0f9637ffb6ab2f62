"""Closing what a response reads from, however the response ends."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import anyio

from jan.sdk.http import StreamingResponse

log = logging.getLogger("jan.responses")


async def aclose_quietly(source: Any) -> None:
    close = getattr(source, "aclose", None)
    if close is not None:
        with anyio.CancelScope(shield=True):
            try:
                await close()
            except Exception:  # noqa: BLE001 - closing must not mask the outcome
                log.debug("closing a generation failed", exc_info=True)


async def chain(first: Any, rest: AsyncIterator[Any]) -> AsyncIterator[Any]:
    yield first
    async for ev in rest:
        yield ev


class ClosingStream(StreamingResponse):
    """An SSE response that closes its generators however it ends.

    Starlette stops iterating a body on disconnect without closing it; a generator parked at a
    ``yield`` would keep its generation running until garbage collection.
    """

    def __init__(self, inner: StreamingResponse, *resources: Any) -> None:
        self.__dict__.update(inner.__dict__)
        self._resources = resources

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            for resource in (self.body_iterator, *self._resources):
                await aclose_quietly(resource)
