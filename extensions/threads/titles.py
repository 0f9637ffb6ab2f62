"""Every thread gets a title from its first exchange, however it was made (API, UI, CLI).

A thread with no title (or Jan's placeholder) is named after its first user message, when that
message is created. Titles the user or a client set are never overwritten.
"""

from __future__ import annotations

from typing import Any

from jan.sdk.errors import ApiError

PLACEHOLDERS = {"", "new thread", "untitled"}
MAX_TITLE = 60


def title_from(text: str) -> str:
    words = " ".join(text.split())
    return words if len(words) <= MAX_TITLE else words[: MAX_TITLE - 1].rstrip() + "…"


def _text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    return " ".join(str((part.get("text") or {}).get("value", "")) for part in content or ()
                    if isinstance(part, dict) and part.get("type") == "text")


class AutoTitler:
    """A ``message.created`` handler; ``services`` is read per event (providers may change)."""

    def __init__(self, services: Any, log: Any) -> None:
        self.services, self.log = services, log
        self.titled: set[str] = set()  # threads titled by us in this process: skip the lookup

    async def __call__(self, topic: str, message: Any) -> None:
        if not isinstance(message, dict) or message.get("role") != "user":
            return
        thread_id, text = message.get("thread_id"), _text(message)
        if not isinstance(thread_id, str) or thread_id in self.titled or not text.strip():
            return
        try:
            threads = self.services.get("threads")
            thread = await threads.get(thread_id)
            if (thread.title or "").strip().lower() not in PLACEHOLDERS:
                self.titled.add(thread_id)
                return
            self.titled.add(thread_id)
            await threads.update(thread_id, {"title": title_from(text)})
        except ApiError as exc:  # the thread went away meanwhile: nothing to name
            self.log.debug("no title for %s: %s", thread_id, exc)
