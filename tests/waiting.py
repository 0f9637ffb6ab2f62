"""Wait for a condition instead of sleeping a fixed time.

Both helpers poll ``check`` until it returns something truthy and return that value; when the
time runs out they fail the test (``AssertionError`` naming what was awaited and the last value),
so a forgotten ``assert`` in front of them cannot turn a timeout into a pass.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from typing import Any


def wait_for(check: Callable[[], Any], *, timeout: float = 20.0, interval: float = 0.05,
             what: str | None = None) -> Any:
    """Poll a synchronous ``check``; its first truthy value, or fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for "
                                 f"{what or _name(check)} (last value: {value!r})")
        time.sleep(interval)


async def eventually(check: Callable[[], Any], *, timeout: float = 20.0,
                     interval: float = 0.05, what: str | None = None) -> Any:
    """Poll ``check`` (sync, or returning an awaitable) without blocking the event loop."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for "
                                 f"{what or _name(check)} (last value: {value!r})")
        await asyncio.sleep(interval)


def _name(check: Callable[[], Any]) -> str:
    name = getattr(check, "__name__", "condition")
    return "condition" if name == "<lambda>" else name
