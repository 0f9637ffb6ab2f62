"""``jan threads list|show|rm|rename|export|import``, through the services (so any provider
works). Lists are sorted by last activity (the newest message, else the thread's own times)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from jan.sdk import Context
from jan.sdk.errors import ApiError, NotFound
from jan.sdk.models import Message, Thread, new_id
from jan.sdk.openai_shapes import message_to_api, thread_to_api, ts_to_s
from jan.sdk.services import every

EXPORT_VERSION = 1


def configure_list(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--limit", type=int, default=0, help="at most this many (default: all)")
    parser.add_argument("--json", action="store_true", help="print JSON")


def configure_show(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("thread_id", metavar="ID")
    parser.add_argument("--json", action="store_true", help="print JSON (the API's shapes)")


def configure_rm(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("thread_ids", nargs="+", metavar="ID", help="thread id(s) to delete")


def configure_rename(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("thread_id", metavar="ID")
    parser.add_argument("title", nargs="+", help="the new title")


def configure_export(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("thread_id")
    parser.add_argument("--format", choices=["json", "markdown"], default="json")


def configure_import(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="a JSON file written by `jan threads export`")


def _all_threads(ctx: Context) -> AsyncIterator[Thread]:
    return every(ctx.services.get("threads").list, order="desc")


async def _all_messages(ctx: Context, thread_id: str) -> list[Message]:
    return [m async for m in every(ctx.services.get("messages").list, thread_id)]


def _when(ts: int) -> str:
    return datetime.fromtimestamp(ts_to_s(ts), tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


async def _activity(ctx: Context, thread: Thread) -> tuple[int, int]:
    """``(last activity in ms, message count)``: the newest message, else the creation (a
    rename or a metadata change is not activity)."""
    messages = await _all_messages(ctx, thread.id)
    last = max([thread.created or 0, *(m.created or 0 for m in messages)])
    return last, len(messages)


async def run_list(args: argparse.Namespace, ctx: Context) -> int:
    rows = []
    async for thread in _all_threads(ctx):
        last, count = await _activity(ctx, thread)
        rows.append((last, count, thread))
    rows.sort(key=lambda r: r[0], reverse=True)
    if args.limit:
        rows = rows[: args.limit]
    if args.json:
        print(json.dumps([thread_to_api(t) | {"last_activity_at": ts_to_s(last),
                                              "message_count": count}
                          for last, count, t in rows], ensure_ascii=False, indent=2))
        return 0
    for last, count, thread in rows:
        print(f"{thread.id}\t{_when(last)}\t{count} messages\t{thread.title or '(untitled)'}")
    return 0


async def run_show(args: argparse.Namespace, ctx: Context) -> int:
    try:
        thread = await ctx.services.get("threads").get(args.thread_id)
        messages = await _all_messages(ctx, thread.id)
    except ApiError as exc:
        print(f"jan: {exc.message}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({"thread": thread_to_api(thread),
                          "messages": [message_to_api(m) for m in messages]},
                         ensure_ascii=False, indent=2))
        return 0
    print(f"{thread.title or '(untitled)'}  [{thread.id}, {len(messages)} messages]")
    for message in messages:
        marks = _marks(message)
        print(f"\n{message.role} · {_when(message.created)}{marks}")
        print(message.text)
    return 0


def _marks(message: Message) -> str:
    meta = message.metadata or {}
    if meta.get("interrupted") == "true":
        return " (interrupted)"
    if meta.get("finish_reason") == "length":
        return " (cut at max_tokens)"
    return ""


async def run_rm(args: argparse.Namespace, ctx: Context) -> int:
    threads, status = ctx.services.get("threads"), 0
    for thread_id in args.thread_ids:
        try:
            await threads.delete(thread_id)
        except ApiError as exc:
            print(f"jan: {exc.message}", file=sys.stderr)
            status = 1
            continue
        print(f"deleted thread {thread_id}")
    return status


async def run_rename(args: argparse.Namespace, ctx: Context) -> int:
    title = " ".join(" ".join(args.title).split())
    if not title:
        print("jan: the title is empty", file=sys.stderr)
        return 2
    try:
        thread = await ctx.services.get("threads").update(args.thread_id, {"title": title})
    except ApiError as exc:
        print(f"jan: {exc.message}", file=sys.stderr)
        return 1
    print(f"renamed thread {thread.id} to {thread.title!r}")
    return 0


def to_markdown(thread: Thread, messages: list[Message]) -> str:
    lines = [f"# {thread.title or thread.id}", "", f"_Thread `{thread.id}`, created "
             f"{_when(thread.created)}_", ""]
    for message in messages:
        who = message.role + (f" ({message.assistant_id})" if message.assistant_id else "")
        lines += [f"## {who} · {_when(message.created)}", "", message.text, ""]
    return "\n".join(lines)


async def run_export(args: argparse.Namespace, ctx: Context) -> int:
    try:
        thread = await ctx.services.get("threads").get(args.thread_id)
        messages = await _all_messages(ctx, thread.id)
    except ApiError as exc:
        print(f"jan: {exc.message}", file=sys.stderr)
        return 1
    if args.format == "markdown":
        sys.stdout.write(to_markdown(thread, messages))
    else:
        doc = {"version": EXPORT_VERSION, "thread": thread.to_file(),
               "messages": [m.to_file() for m in messages]}
        sys.stdout.write(json.dumps(doc, ensure_ascii=False, indent=2) + "\n")
    return 0


def _read_export(path: str) -> tuple[Thread, list[dict[str, Any]]]:
    doc = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(doc, dict) or not isinstance(doc.get("thread"), dict):
        raise ValueError("not a thread export: expected {\"thread\": {...}, \"messages\": [...]}")
    messages = doc.get("messages") or []
    if not isinstance(messages, list):
        raise ValueError("'messages' must be a list")
    return Thread.model_validate(doc["thread"]), messages


async def run_import(args: argparse.Namespace, ctx: Context) -> int:
    try:
        thread, records = _read_export(args.file)
        messages = [Message.model_validate({**r, "thread_id": thread.id}) for r in records]
    except (OSError, ValueError, ValidationError) as exc:
        print(f"jan: cannot import {args.file}: {exc}", file=sys.stderr)
        return 1
    threads = ctx.services.get("threads")
    try:
        await threads.get(thread.id)
        thread.id = new_id("thread")  # already here: import as a copy, never overwrite
    except NotFound:
        pass
    try:
        thread = await threads.create(thread)
        store = ctx.services.get("messages")
        for message in messages:
            message.thread_id = thread.id
            await store.create(message)
    except ApiError as exc:
        print(f"jan: import failed: {exc.message}", file=sys.stderr)
        return 1
    print(thread.id)
    return 0
