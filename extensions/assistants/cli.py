"""``jan assistants logs|rm``: what an assistant's code printed, and removing an assistant."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from jan.sdk import Context
from jan.sdk.errors import ApiError
from jan.sdk.sandbox import assistant_log_path

POLL = 0.25


def configure_logs(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("assistant_id", help="the assistant whose log to show")
    parser.add_argument("-f", "--follow", action="store_true",
                        help="keep printing new lines as the assistant writes them (Ctrl-C stops)")
    parser.add_argument("-n", "--lines", type=int, default=200,
                        help="how many of the last lines to show first (default 200)")


def _tail(path: Path, lines: int) -> tuple[str, int]:
    """The last ``lines`` lines of the log (its rotated part first) and the current size."""
    text = ""
    for part in (path.with_name(path.name + ".1"), path):
        try:
            text += part.read_text(errors="replace")
        except FileNotFoundError:
            continue
    size = path.stat().st_size if path.exists() else 0
    kept = text.splitlines(keepends=True)[-lines:] if lines > 0 else []
    return "".join(kept), size


async def _follow(path: Path, offset: int) -> None:
    while True:
        await asyncio.sleep(POLL)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            continue
        if size < offset:  # rotated: the new file starts from the beginning
            offset = 0
        if size > offset:
            with open(path, "rb") as f:
                f.seek(offset)
                chunk = f.read(size - offset)
            offset += len(chunk)
            sys.stdout.write(chunk.decode("utf-8", "replace"))
            sys.stdout.flush()


async def run_logs(args: argparse.Namespace, ctx: Context) -> int:
    try:
        assistant = await ctx.services.get("assistants").get(args.assistant_id)
    except ApiError as exc:
        print(f"jan: {exc.message}", file=sys.stderr)
        return 1
    path = assistant_log_path(ctx.data.root, assistant.id)
    text, size = _tail(path, args.lines)
    if not text and not args.follow:
        print(f"jan: no log yet for '{assistant.id}' ({path}): it fills when its code runs",
              file=sys.stderr)
        return 0
    sys.stdout.write(text)
    sys.stdout.flush()
    if args.follow:
        print(f"jan: following {path} (Ctrl-C stops)", file=sys.stderr, flush=True)
        try:
            await _follow(path, size)
        except (KeyboardInterrupt, asyncio.CancelledError):
            return 0
    return 0


def configure_rm(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("assistant_id", help="the assistant to delete (its whole folder)")
    parser.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")


async def run_rm(args: argparse.Namespace, ctx: Context) -> int:
    store = ctx.services.get("assistants")
    try:
        assistant = await store.get(args.assistant_id)
        folder = Path(store.folder(assistant.id))
    except ApiError as exc:
        print(f"jan: {exc.message}", file=sys.stderr)
        return 1
    if not args.yes:
        if not sys.stdin.isatty():
            print(f"jan: this deletes {folder} and everything in it; add --yes to confirm",
                  file=sys.stderr)
            return 1
        answer = input(f"Delete assistant '{assistant.id}' and its folder {folder}? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("not deleted")
            return 1
    try:
        await store.delete(assistant.id)
    except ApiError as exc:
        print(f"jan: {exc.message}", file=sys.stderr)
        return 1
    log = assistant_log_path(ctx.data.root, assistant.id)
    for path in (log, log.with_name(log.name + ".1")):
        path.unlink(missing_ok=True)
    print(f"deleted {assistant.id}")
    return 0
