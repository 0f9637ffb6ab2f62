"""Bus events from other instances: LISTEN on the shared database, re-emit locally.

Stores publish their events with ``Database.publish`` inside the writing transaction, so a
NOTIFY goes out exactly when the write commits (never for a rolled-back one). Every instance
LISTENs; a notification carrying our own origin id is ignored (we already emitted it locally),
any other is emitted on the local bus, where it reaches subscribers as if it happened here.
Only store events travel this way, so nothing is relayed twice and no loop can form.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import psycopg

from .db import CHANNEL, Database


class Relay:
    def __init__(self, db: Database, events: Any, log: logging.Logger) -> None:
        self.db, self.events, self.log = db, events, log
        self.listening = asyncio.Event()
        self.received = 0

    async def run(self) -> None:
        """Listen forever, reconnecting with backoff when the database goes away."""
        delay = 0.2
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(
                    self.db.dsn, autocommit=True, connect_timeout=5)
                async with conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self.listening.set()
                    if delay > 0.2:
                        self.log.info("event relay reconnected")
                    delay = 0.2
                    async for notify in conn.notifies():
                        await self._deliver(notify.payload)
            except psycopg.Error as exc:
                if self.listening.is_set():
                    self.log.warning("event relay lost its connection: %s", str(exc).strip())
                self.listening.clear()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def _deliver(self, raw: str) -> None:
        try:
            message = json.loads(raw)
            if message.get("o") == self.db.origin:
                return
            topic = message["t"]
            data = message["d"] if "ref" not in message else await self.db.load_event(
                int(message["ref"]))
        except Exception as exc:  # noqa: BLE001 - one bad notification never stops the relay
            self.log.warning("ignoring an undeliverable event notification: %s", exc)
            return
        self.received += 1
        await self.events.emit(topic, data)
