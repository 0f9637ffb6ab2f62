"""Which ``assistant:...`` topics each worker hears; their events are handed on as calls.

An assistant subscribes when its ``index.py`` loads (the topics it names) or while it handles a
call (the relay's ``events.subscribe``), always under ``may_subscribe``. An assistant never
hears its own events, and a chain of events longer than ``MAX_HOPS`` is dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from jan.sdk.models import Assistant

from .relay import MAX_HOPS, may_subscribe, subscribe_refusal

Deliver = Callable[[str, str, dict[str, Any]], None]  # (assistant id, topic, payload)


class Subscriptions:
    def __init__(self, events: Any, deliver: Deliver, log: logging.Logger) -> None:
        self.events, self.deliver, self.log = events, deliver, log
        self._subs: dict[str, dict[str, Any]] = {}  # assistant id -> topic -> disposable

    def topics(self, assistant_id: str) -> set[str]:
        return set(self._subs.get(assistant_id, {}))

    def add(self, assistant_id: str, topic: str) -> None:
        subs = self._subs.setdefault(assistant_id, {})
        if topic in subs or self.events is None:
            return

        async def handler(event_topic: str, payload: Any) -> None:
            if not isinstance(payload, dict) or payload.get("source") == assistant_id:
                return  # never echo an assistant's own events back to it
            if int(payload.get("hops", 0)) > MAX_HOPS:
                return
            self.deliver(assistant_id, event_topic, payload)

        subs[topic] = self.events.on(topic, handler)

    def load(self, assistant_id: str, assistant: Assistant, topics: Any) -> None:
        """What the (untrusted) worker asked for at load time, under the relay's rule."""
        for topic in topics if isinstance(topics, list) else []:
            if isinstance(topic, str) and may_subscribe(assistant, topic):
                self.add(assistant_id, topic)
            else:
                self.log.warning("%s: dropped", subscribe_refusal(assistant_id, str(topic)[:200]))

    def drop(self, assistant_id: str) -> None:
        for disposable in self._subs.pop(assistant_id, {}).values():
            disposable.dispose()

    def drop_all(self) -> None:
        for assistant_id in list(self._subs):
            self.drop(assistant_id)
