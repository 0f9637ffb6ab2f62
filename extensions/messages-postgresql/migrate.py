"""``jan threads migrate --to postgresql|files``: copy every thread and message across.

It speaks only the ``ThreadStore``/``MessageStore`` interfaces, so it works between any two
providers. Idempotent and resumable: what the target already has (same id) is skipped, so a
run interrupted half-way simply continues on the next try. At the end it re-reads both sides
and verifies that every source thread and message is in the target, with matching counts.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from jan.sdk.errors import ApiError
from jan.sdk.models import Message, Thread
from jan.sdk.services import every

FILES = {"threads": "threads", "messages": "messages"}  # the file-based providers' ids


@dataclass
class Stores:
    threads: Any
    messages: Any


@dataclass
class Report:
    threads_copied: int = 0
    threads_present: int = 0
    messages_copied: int = 0
    messages_present: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


async def all_threads(store: Any) -> list[Thread]:
    return [t async for t in every(store.list)]


async def all_messages(store: Any, thread_id: str) -> list[Message]:
    return [m async for m in every(store.list, thread_id)]


async def copy_thread(thread: Thread, src: Stores, dst: Stores, present: bool,
                      report: Report) -> None:
    if present:
        report.threads_present += 1
    else:
        await dst.threads.create(thread)
        report.threads_copied += 1
    have = set() if not present else {m.id for m in await all_messages(dst.messages, thread.id)}
    for message in await all_messages(src.messages, thread.id):
        if message.id in have:
            report.messages_present += 1
            continue
        await dst.messages.create(message)
        report.messages_copied += 1


async def verify(threads: list[Thread], src: Stores, dst: Stores, report: Report) -> int:
    """Compare both sides thread by thread; return the number of source messages."""
    target = {t.id for t in await all_threads(dst.threads)}
    total = 0
    for thread in threads:
        if thread.id not in target:
            report.problems.append(f"thread {thread.id} is missing in the target")
            continue
        wanted = [m.id for m in await all_messages(src.messages, thread.id)]
        got = {m.id for m in await all_messages(dst.messages, thread.id)}
        total += len(wanted)
        missing = [mid for mid in wanted if mid not in got]
        if missing:
            report.problems.append(
                f"thread {thread.id}: {len(missing)} of {len(wanted)} messages missing "
                f"in the target (first: {missing[0]})")
    return total


async def migrate(src: Stores, dst: Stores, out: Callable[[str], None] = print) -> Report:
    report = Report()
    threads = await all_threads(src.threads)
    present = {t.id for t in await all_threads(dst.threads)}
    for n, thread in enumerate(threads, 1):
        await copy_thread(thread, src, dst, thread.id in present, report)
        if n % 100 == 0:
            out(f"... {n}/{len(threads)} threads")
    messages = await verify(threads, src, dst, report)
    out(f"threads: {report.threads_copied} copied, {report.threads_present} already there; "
        f"messages: {report.messages_copied} copied, {report.messages_present} already there")
    if report.ok:
        out(f"verified: all {len(threads)} threads and {messages} messages are in the target")
    for problem in report.problems:
        out(f"MISMATCH: {problem}")
    return report


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--to", required=True, choices=["postgresql", "files"],
                        help="where to copy every thread and message (from the other one)")


async def run(args: argparse.Namespace, ctx: Any) -> int:
    """The command body; ``ctx`` is the activated messages-postgresql context."""
    pg = Stores(ctx.exports("threads-postgresql").threads, ctx.exports(ctx.id).messages)
    try:
        files = Stores(ctx.services.get("threads", provider=FILES["threads"]),
                       ctx.services.get("messages", provider=FILES["messages"]))
    except ApiError as exc:
        print(f"jan: the file-based stores are not available: {exc.message}")
        return 1
    src, dst = (files, pg) if args.to == "postgresql" else (pg, files)
    try:
        report = await migrate(src, dst)
    except ApiError as exc:
        print(f"jan: migration stopped (run it again to resume): {exc.message}")
        return 1
    return 0 if report.ok else 1
