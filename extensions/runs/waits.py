"""Runs paused in ``requires_action``: each waits on a future that ``submit_tool_outputs``
resolves. A run cancelled or expired while waiting simply stops waiting (its task is cancelled).
"""

from __future__ import annotations

import asyncio
from typing import Any

from jan.sdk.errors import InvalidRequest
from jan.sdk.inference import ToolCall

from .tools import check_outputs


class Waits:
    def __init__(self) -> None:
        self._pending: dict[str, tuple[asyncio.Future[dict[str, str]], list[ToolCall]]] = {}

    def expect(self, run_id: str, calls: list[ToolCall]) -> asyncio.Future[dict[str, str]]:
        fut: asyncio.Future[dict[str, str]] = asyncio.get_running_loop().create_future()
        self._pending[run_id] = (fut, calls)
        fut.add_done_callback(lambda _f: self._pending.pop(run_id, None))
        return fut

    def check(self, run_id: str, outputs: list[dict[str, Any]]) -> dict[str, str]:
        entry = self._pending.get(run_id)
        if entry is None or entry[0].done():
            raise InvalidRequest(f"Run '{run_id}' is not waiting for tool outputs",
                                 param="run_id")
        return check_outputs(entry[1], outputs)

    def resolve(self, run_id: str, outputs: dict[str, str]) -> None:
        entry = self._pending.get(run_id)
        if entry is not None and not entry[0].done():
            entry[0].set_result(outputs)
