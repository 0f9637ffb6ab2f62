"""A run's stream: the queue its SSE events go to, from creation until it ends (``END``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

END = object()
Queue = asyncio.Queue[Any]


async def events(queue: Queue) -> AsyncIterator[tuple[str, Any]]:
    """Everything put on ``queue`` (taken when the run was created) until the run ends."""
    while (item := await queue.get()) is not END:
        yield item
