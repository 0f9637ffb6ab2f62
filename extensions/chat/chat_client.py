"""The HTTP side of ``jan chat`` / ``jan run``: one streamed reply, and the thread it is saved in.

Everything goes through the public API of the running server, as any OpenAI client would.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, TextIO

import httpx

SETTABLE = {
    "temperature": float, "top_p": float, "top_k": int, "min_p": float, "max_tokens": int,
    "seed": int, "frequency_penalty": float, "presence_penalty": float,
    "repeat_penalty": float, "stop": str,
}


class ChatError(Exception):
    """Something to tell the user (server down, unknown model...), without a traceback."""


def error_text(response: httpx.Response, body: bytes) -> str:
    try:
        err = json.loads(body)["error"]
        return f"{err.get('message')} ({response.status_code} {err.get('code') or err.get('type')})"
    except (ValueError, KeyError, TypeError):
        return f"HTTP {response.status_code}: {body[:200].decode(errors='replace')}"


@dataclass
class Reply:
    """One reply as it streams: ``parts`` grows, so an interrupted reply keeps what came."""

    model: str
    parts: list[str] = field(default_factory=list)
    finish_reason: str | None = None
    interrupted: bool = False
    error: str | None = None

    @property
    def text(self) -> str:
        return "".join(self.parts)


async def stream_reply(client: httpx.AsyncClient, body: dict[str, Any], reply: Reply,
                       out: TextIO) -> None:
    """Stream one reply into ``reply`` and ``out``; raise ``ChatError`` on a server error."""
    async with client.stream("POST", "/v1/chat/completions", json=body) as r:
        if r.status_code != 200:
            raise ChatError(error_text(r, await r.aread()))
        async for line in r.aiter_lines():
            if not line.startswith("data: "):
                continue
            data = line[len("data: "):]
            if data == "[DONE]":
                break
            chunk = json.loads(data)
            if "error" in chunk:
                raise ChatError(chunk["error"].get("message") or "the server failed mid-reply")
            reply.model = chunk.get("model", reply.model)
            for choice in chunk.get("choices") or ():
                text = (choice.get("delta") or {}).get("content")
                if choice.get("finish_reason"):
                    reply.finish_reason = choice["finish_reason"]
                if text:
                    reply.parts.append(text)
                    out.write(text)
                    out.flush()


async def get_json(client: httpx.AsyncClient, path: str, **params: Any) -> Any:
    r = await client.get(path, params=params or None)
    if r.status_code != 200:
        raise ChatError(error_text(r, r.content))
    return r.json()


async def model_ids(client: httpx.AsyncClient) -> list[str]:
    return [m["id"] for m in (await get_json(client, "/v1/models")).get("data", [])]


async def check_model(client: httpx.AsyncClient, model: str) -> str:
    """``model`` if the server knows it; otherwise a ``ChatError`` listing the models."""
    if model == "*":
        return model
    r = await client.get(f"/v1/models/{model}")
    if r.status_code == 200:
        return model
    if r.status_code != 404:
        raise ChatError(error_text(r, r.content))
    known = await model_ids(client)
    listing = ", ".join(known) if known else "none (see `jan models list --catalog`)"
    raise ChatError(f"unknown model '{model}'. Available models: {listing}")


class ThreadSaver:
    """Saves the conversation turn by turn through the threads API, if the server has one."""

    def __init__(self, client: httpx.AsyncClient, err: TextIO, enabled: bool = True) -> None:
        self.client, self.err, self.enabled = client, err, enabled
        self.thread_id: str | None = None

    def _give_up(self, why: str) -> None:
        self.enabled = False
        print(f"warning: the conversation is not being saved: {why}", file=self.err, flush=True)

    async def _post(self, path: str, body: dict[str, Any], *fallbacks: dict[str, Any]
                    ) -> dict[str, Any] | None:
        """POST ``body``; on a 400, try the simpler ``fallbacks`` before giving up."""
        try:
            r = await self.client.post(path, json=body)
            for fallback in fallbacks:
                if r.status_code != 400:
                    break
                r = await self.client.post(path, json=fallback)
        except httpx.HTTPError as exc:
            self._give_up(f"{path}: {exc}")
            return None
        if r.status_code >= 400:
            reason = ("this server has no threads API" if r.status_code in (404, 405)
                      else error_text(r, r.content))
            self._give_up(reason)
            return None
        return r.json()

    async def _ensure_thread(self, first_text: str, model: str) -> bool:
        if self.thread_id is not None:
            return True
        title = " ".join(first_text.split())[:60]
        meta = {"title": title, "source": "jan chat", "model": model}
        # Jan's threads take a title; a plain OpenAI-shaped store may only take metadata.
        jan_assistant = {"assistant_id": "jan", "assistant_name": "Jan", "model": {"id": model}}
        made = await self._post(
            "/v1/threads", {"title": title, "metadata": meta, "assistants": [jan_assistant]},
            {"metadata": meta}, {})
        if made and made.get("id"):
            self.thread_id = made["id"]
        return self.thread_id is not None

    async def save_user(self, text: str, model: str) -> str | None:
        """Save the user's turn as soon as it is sent; returns the message id."""
        if not self.enabled or not await self._ensure_thread(text, model):
            return None
        made = await self._post(f"/v1/threads/{self.thread_id}/messages",
                                {"role": "user", "content": text})
        return made.get("id") if made else None

    async def save_reply(self, reply: Reply) -> str | None:
        """Save a reply, marked when it was interrupted, cut by ``max_tokens`` or failed."""
        if not self.enabled or self.thread_id is None or not reply.text:
            return None
        meta = {"model": reply.model, "finish_reason": reply.finish_reason or "stop"}
        if reply.interrupted:
            meta.update(interrupted="true", finish_reason="interrupted")
        if reply.error:
            meta.update(error=reply.error[:500], finish_reason="error")
        path = f"/v1/threads/{self.thread_id}/messages"
        made = await self._post(path, {"role": "assistant", "content": reply.text,
                                       "metadata": meta},
                                {"role": "assistant", "content": reply.text})
        return made.get("id") if made else None

    async def forget(self, message_id: str | None) -> None:
        """Delete a saved reply that ``/retry`` replaces (best effort)."""
        if self.enabled and self.thread_id and message_id:
            try:
                await self.client.delete(f"/v1/threads/{self.thread_id}/messages/{message_id}")
            except httpx.HTTPError:
                pass


async def load_thread(client: httpx.AsyncClient, thread_id: str
                      ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A thread and all its messages (oldest first), through the API."""
    thread = await get_json(client, f"/v1/threads/{thread_id}")
    messages: list[dict[str, Any]] = []
    after: str | None = None
    while True:
        params: dict[str, Any] = {"order": "asc", "limit": 100}
        if after:
            params["after"] = after
        page = await get_json(client, f"/v1/threads/{thread_id}/messages", **params)
        messages += page.get("data", [])
        if not page.get("has_more") or not page.get("data"):
            return thread, messages
        after = page["data"][-1]["id"]


def message_text(message: dict[str, Any]) -> str:
    parts = message.get("content") or []
    if isinstance(parts, str):
        return parts
    return "".join((p.get("text") or {}).get("value", "") for p in parts
                   if isinstance(p, dict) and p.get("type") == "text")
