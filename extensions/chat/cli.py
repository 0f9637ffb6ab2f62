"""``jan chat``: a terminal chat against the running server, saved as a thread.

It is an ordinary HTTP client of ``jan serve`` (streaming ``/v1/chat/completions``), so it sees
exactly what any OpenAI client sees. Lines come from stdin (a pipe works as well as a terminal);
``/exit`` or end of input quits. The conversation is saved through ``/v1/threads`` and
``/v1/threads/{id}/messages``; a server without those routes still chats, with a warning.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from typing import Any, TextIO

import httpx

DEFAULT_URL = "http://127.0.0.1:1337"
EXIT_WORDS = {"/exit", "/quit", "/bye"}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", "-m", default="*",
                        help="model id (default: the server's default model)")
    parser.add_argument("--url", default=None,
                        help=f"server URL (default: $JAN_URL or {DEFAULT_URL})")
    parser.add_argument("--api-key", default=None, help="bearer key (default: $JAN_API_KEY)")
    parser.add_argument("--system", default=None, help="system prompt")
    parser.add_argument("--max-tokens", type=int, default=None, help="cap on each reply")
    parser.add_argument("--no-save", action="store_true", help="do not save a thread")


class ChatError(Exception):
    """Something to tell the user (server down, unknown model...), without a traceback."""


def _base_url(args: argparse.Namespace) -> str:
    url = (args.url or os.environ.get("JAN_URL") or DEFAULT_URL).rstrip("/")
    return url[: -len("/v1")] if url.endswith("/v1") else url


def _api_key(args: argparse.Namespace, ctx: Any) -> str | None:
    if args.api_key or os.environ.get("JAN_API_KEY"):
        return args.api_key or os.environ.get("JAN_API_KEY")
    settings = getattr(ctx, "host_settings", None) or {}
    server = settings.get("server") if isinstance(settings, dict) else None
    return server.get("api_key") if isinstance(server, dict) else None


def _error_text(response: httpx.Response, body: bytes) -> str:
    try:
        err = json.loads(body)["error"]
        return f"{err.get('message')} ({response.status_code} {err.get('code') or err.get('type')})"
    except (ValueError, KeyError, TypeError):
        return f"HTTP {response.status_code}: {body[:200].decode(errors='replace')}"


class ThreadSaver:
    """Saves the conversation through the threads API, if the server has one."""

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
                      else _error_text(r, r.content))
            self._give_up(reason)
            return None
        return r.json()

    async def save(self, user_text: str, reply: str, model: str) -> None:
        if not self.enabled:
            return
        if self.thread_id is None:
            title = " ".join(user_text.split())[:60]
            meta = {"title": title, "source": "jan chat", "model": model}
            # Jan's threads take a title; a plain OpenAI-shaped store may only take metadata.
            jan_assistant = {"assistant_id": "jan", "assistant_name": "Jan",
                             "model": {"id": model}}
            made = await self._post(
                "/v1/threads", {"title": title, "metadata": meta, "assistants": [jan_assistant]},
                {"metadata": meta}, {})
            if not made or not made.get("id"):
                return
            self.thread_id = made["id"]
        path = f"/v1/threads/{self.thread_id}/messages"
        if await self._post(path, {"role": "user", "content": user_text}) is not None:
            await self._post(path, {"role": "assistant", "content": reply,
                                    "metadata": {"model": model}},
                             {"role": "assistant", "content": reply})


async def stream_reply(client: httpx.AsyncClient, body: dict[str, Any], out: TextIO
                       ) -> tuple[str, str]:
    """Stream one reply to ``out``; return ``(text, model id)``."""
    parts: list[str] = []
    model = body["model"]
    async with client.stream("POST", "/v1/chat/completions", json=body) as r:
        if r.status_code != 200:
            raise ChatError(_error_text(r, await r.aread()))
        async for line in r.aiter_lines():
            if not line.startswith("data: "):
                continue
            data = line[len("data: "):]
            if data == "[DONE]":
                break
            chunk = json.loads(data)
            if "error" in chunk:
                raise ChatError(chunk["error"].get("message") or "the server failed mid-reply")
            model = chunk.get("model", model)
            for choice in chunk.get("choices") or ():
                text = (choice.get("delta") or {}).get("content")
                if text:
                    parts.append(text)
                    out.write(text)
                    out.flush()
    out.write("\n")
    out.flush()
    return "".join(parts), model


async def chat_loop(args: argparse.Namespace, client: httpx.AsyncClient, inp: TextIO,
                    out: TextIO, err: TextIO) -> int:
    interactive = inp.isatty()
    history: list[dict[str, str]] = []
    if args.system:
        history.append({"role": "system", "content": args.system})
    saver = ThreadSaver(client, err, enabled=not args.no_save)
    if interactive:
        print("Chatting with the jan server; /exit to quit.", file=err, flush=True)
    while True:
        if interactive:
            out.write("> ")
            out.flush()
        line = await asyncio.to_thread(inp.readline)
        if not line:
            break
        text = line.rstrip("\r\n")
        if text.strip() in EXIT_WORDS:
            break
        if not text.strip():
            continue
        history.append({"role": "user", "content": text})
        body: dict[str, Any] = {"model": args.model, "messages": history, "stream": True}
        if args.max_tokens:
            body["max_tokens"] = args.max_tokens
        try:
            reply, model = await stream_reply(client, body, out)
        except ChatError as exc:
            history.pop()
            print(f"error: {exc}", file=err, flush=True)
            continue
        history.append({"role": "assistant", "content": reply})
        await saver.save(text, reply, model)
    if saver.thread_id:
        print(f"Saved as thread {saver.thread_id}", file=err, flush=True)
    return 0


async def run(args: argparse.Namespace, ctx: Any = None) -> int:
    base = _base_url(args)
    key = _api_key(args, ctx)
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    timeout = httpx.Timeout(10.0, read=None)  # a long reply is not a timeout
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=timeout) as client:
        try:
            (await client.get("/health")).raise_for_status()
        except httpx.HTTPError as exc:
            print(f"jan chat: no jan server at {base} ({exc}). Start one with `jan serve`, "
                  "or pass --url.", file=sys.stderr)
            return 1
        try:
            return await chat_loop(args, client, sys.stdin, sys.stdout, sys.stderr)
        except httpx.HTTPError as exc:
            print(f"jan chat: lost the server at {base}: {exc}", file=sys.stderr)
            return 1
