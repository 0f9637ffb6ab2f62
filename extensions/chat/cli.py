"""``jan chat`` (a REPL) and ``jan run MODEL [PROMPT]`` (one-shot, pipes in, streams out).

Both are ordinary HTTP clients of the running ``jan serve`` (streaming ``/v1/chat/completions``),
so they see exactly what any OpenAI client sees. The server is found through the data folder's
address file (``jan.sdk.server_address``), unless ``--url`` or ``$JAN_URL`` names one. ``jan chat``
saves the conversation through ``/v1/threads``, turn by turn; a server without those routes still
chats, with a warning.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from jan.sdk.server_address import client_key, server_url

from .chat_client import ChatError, Reply, ThreadSaver, check_model, stream_reply
from .repl import Repl


def _connection(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", default=None,
                        help="server URL (default: $JAN_URL, else the server running for the "
                             "data folder, else $JAN_HOST/$JAN_PORT or settings.json)")
    parser.add_argument("--api-key", default=None, help="bearer key (default: $JAN_API_KEY)")
    parser.add_argument("--system", default=None, help="system prompt")
    parser.add_argument("--max-tokens", type=int, default=None, help="cap on each reply")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", "-m", default="*",
                        help="model id (default: the server's default model)")
    parser.add_argument("--thread", default=None, metavar="ID",
                        help="resume a saved thread (see `jan threads list`)")
    parser.add_argument("--no-save", action="store_true", help="do not save a thread")
    _connection(parser)


def configure_run(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="model id (see `jan models list`)")
    parser.add_argument("prompt", nargs="*", help="the prompt; stdin is appended when piped. "
                        "Without either, an interactive chat starts")
    parser.add_argument("--save", action="store_true", help="save a one-shot as a thread")
    _connection(parser)


def _base_url(args: argparse.Namespace, ctx: Any) -> str:
    data = getattr(ctx, "data", None)
    return server_url(data.root if data is not None else None, args.url,
                      getattr(ctx, "host_settings", None))


@asynccontextmanager
async def _client(args: argparse.Namespace, ctx: Any) -> AsyncIterator[httpx.AsyncClient]:
    base = _base_url(args, ctx)
    key = client_key(args.api_key, getattr(ctx, "host_settings", None))
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    timeout = httpx.Timeout(10.0, read=None)  # a long reply is not a timeout
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=timeout) as client:
        try:
            (await client.get("/health")).raise_for_status()
        except httpx.HTTPError as exc:
            raise ChatError(f"no jan server at {base} ({exc}). Start one with `jan serve`, "
                            "or pass --url.") from None
        yield client


def _params(args: argparse.Namespace) -> dict[str, Any]:
    return {"max_tokens": args.max_tokens} if args.max_tokens else {}


async def run(args: argparse.Namespace, ctx: Any = None) -> int:
    """``jan chat``."""
    return await _chat(args, ctx, args.model, save=not args.no_save, thread=args.thread)


async def _chat(args: argparse.Namespace, ctx: Any, model: str, *, save: bool,
                thread: str | None) -> int:
    try:
        async with _client(args, ctx) as client:
            model = await check_model(client, model)
            repl = Repl(client, model=model, system=args.system, params=_params(args),
                        save=save, out=sys.stdout, err=sys.stderr, stdin=sys.stdin)
            return await repl.run(thread)
    except ChatError as exc:
        print(f"jan: {exc}", file=sys.stderr)
        return 1
    except httpx.HTTPError as exc:
        print(f"jan: lost the server: {exc}", file=sys.stderr)
        return 1


async def run_oneshot(args: argparse.Namespace, ctx: Any = None) -> int:
    """``jan run MODEL [PROMPT]``: like ``ollama run``."""
    prompt = " ".join(args.prompt)
    if not sys.stdin.isatty():
        piped = sys.stdin.read()
        prompt = f"{prompt}\n\n{piped}" if prompt and piped.strip() else (prompt or piped)
    elif not prompt:
        return await _chat(args, ctx, args.model, save=True, thread=None)
    if not prompt.strip():
        print("jan: nothing to send: give a prompt or pipe text in", file=sys.stderr)
        return 2
    messages = [{"role": "system", "content": args.system}] if args.system else []
    messages.append({"role": "user", "content": prompt})
    try:
        async with _client(args, ctx) as client:
            model = await check_model(client, args.model)
            reply = Reply(model=model)
            await stream_reply(client, {"model": model, "messages": messages, "stream": True,
                                        **_params(args)}, reply, sys.stdout)
            sys.stdout.write("\n")
            sys.stdout.flush()
            if reply.finish_reason == "length":
                print("[reply cut at max_tokens]", file=sys.stderr)
            if args.save:
                await _save(client, prompt, reply)
    except ChatError as exc:
        print(f"jan: {exc}", file=sys.stderr)
        return 1
    except httpx.HTTPError as exc:
        print(f"jan: lost the server: {exc}", file=sys.stderr)
        return 1
    return 0


async def _save(client: httpx.AsyncClient, prompt: str, reply: Reply) -> None:
    saver = ThreadSaver(client, sys.stderr)
    await saver.save_user(prompt, reply.model)
    await saver.save_reply(reply)
    if saver.thread_id:
        print(f"Saved as thread {saver.thread_id}", file=sys.stderr)
