"""``jan files add|list|rm``: the same store the API uses, from the terminal."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jan.sdk import ApiError


def _fail(message: str) -> int:
    print(f"jan: {message}", file=sys.stderr)
    return 1


def _ext(ctx: Any) -> Any:
    return ctx.services.get("files", provider=ctx.id)


def configure_add(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", help="files to upload")
    parser.add_argument("--purpose", default="assistants")
    parser.add_argument("--vector-store", help="also index into this vector store (waits)")


def configure_list(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--purpose", default=None)


def configure_rm(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file_ids", nargs="+")


async def run_add(args: argparse.Namespace, ctx: Any) -> int:
    service = _ext(ctx)
    added = []
    try:
        for raw in args.paths:
            path = Path(raw)
            if not path.is_file():
                return _fail(f"no such file: {raw}")
            record = service.files.create(path.name, path.read_bytes(), args.purpose)
            await ctx.events.emit("file.created", record.to_api())
            added.append(record)
            print(f"{record.id}\t{record.bytes}\t{record.filename}")
        if args.vector_store:
            for record in added:
                service.stores.add_file(args.vector_store, record.id)
            await service.stores.indexer.wait_idle(3600)
            for record in added:
                doc = service.stores.file(args.vector_store, record.id)
                error = (doc.get("last_error") or {}).get("message", "")
                print(f"{record.id}\t{doc['status']}\t{error}".rstrip())
    except ApiError as exc:
        return _fail(exc.message)
    return 0


async def run_list(args: argparse.Namespace, ctx: Any) -> int:
    for record in _ext(ctx).files.all():
        if args.purpose and record.purpose != args.purpose:
            continue
        when = datetime.fromtimestamp(record.created_at, tz=UTC).strftime("%Y-%m-%d %H:%M")
        print(f"{record.id}\t{record.bytes}\t{record.purpose}\t{when}\t{record.filename}")
    return 0


async def run_rm(args: argparse.Namespace, ctx: Any) -> int:
    service = _ext(ctx)
    status = 0
    for file_id in args.file_ids:
        try:
            await service.delete_file(file_id)
            print(f"deleted {file_id}")
        except ApiError as exc:
            status = _fail(exc.message)
    return status


COMMANDS = [
    ("files add", "Upload files (optionally index them into a vector store)", configure_add,
     run_add),
    ("files list", "List uploaded files, oldest first", configure_list, run_list),
    ("files rm", "Delete files and their search results", configure_rm, run_rm),
]
