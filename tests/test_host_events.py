"""The event bus: wildcard delivery, isolation of failing and blocking handlers, requests."""

from __future__ import annotations

import asyncio
import time

from jan.host.events import EventBus


async def test_wildcards_deliver_to_matching_handlers_only():
    bus = EventBus()
    seen: list[tuple[str, str]] = []
    bus.on("message.*", lambda t, d: seen.append(("message.*", t)))
    bus.on("*", lambda t, d: seen.append(("*", t)))
    bus.on("assistant:*", lambda t, d: seen.append(("assistant:*", t)))
    await bus.emit("message.created", {"id": 1})
    await bus.emit("assistant:asst_1", {})
    await bus.drain()
    assert sorted(seen) == sorted([
        ("message.*", "message.created"), ("*", "message.created"),
        ("*", "assistant:asst_1"), ("assistant:*", "assistant:asst_1"),
    ])


async def test_failing_handler_is_isolated():
    bus = EventBus()
    got: list[object] = []

    async def boom(topic, data):
        raise RuntimeError("handler bug")

    bus.on("x", boom)
    bus.on("x", lambda t, d: got.append(d))
    await bus.emit("x", 42)
    await bus.drain()
    assert got == [42]


async def test_blocking_handler_does_not_block_the_loop():
    bus = EventBus()
    bus.on("slow", lambda t, d: time.sleep(0.5))  # a sync handler that blocks
    started = time.monotonic()
    await bus.emit("slow")
    ticks = 0
    while time.monotonic() - started < 0.3:
        await asyncio.sleep(0.01)
        ticks += 1
    assert ticks > 10, "the event loop stalled behind a blocking handler"
    await bus.drain()


async def test_disposed_handler_stops_receiving():
    bus = EventBus()
    got: list[str] = []
    sub = bus.on("e", lambda t, d: got.append(t))
    await bus.emit("e")
    await bus.drain()
    sub.dispose()
    await bus.emit("e")
    await bus.drain()
    assert got == ["e"]


async def test_request_returns_first_answer():
    bus = EventBus()

    async def silent(topic, data):
        return None

    async def answer(topic, data):
        await asyncio.sleep(0.01)
        return {"echo": data}

    bus.on("rpc.echo", silent)
    bus.on("rpc.echo", answer)
    assert await bus.request("rpc.echo", "hi", timeout=2) == {"echo": "hi"}
    assert await bus.request("rpc.nobody", "hi", timeout=2) is None
