"""``jan models list|import|pull|rm``.

Each ``run(args, ctx)`` gets this extension's activated context in a CLI host and returns an
exit code. Errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from jan.sdk import ApiError
from jan.sdk.openai_shapes import model_to_api

from . import catalog
from .pull import pull

# Import and download failures are ApiErrors too: the class identity of jan.sdk's errors is
# stable, while this package's own classes differ between generations of the extension.
USER_ERRORS = (ApiError,)


def _registry(ctx: Any) -> Any:
    return ctx.services.get("models", provider=ctx.id)


def _fail(message: str) -> int:
    print(f"jan: {message}", file=sys.stderr)
    return 1


def _size(n: int | float | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return "-"


class Bar:
    """A one-line progress bar on stderr (periodic plain lines when it is not a terminal)."""

    def __init__(self, label: str, stream: TextIO | None = None) -> None:
        self.label, self.stream = label, stream or sys.stderr
        self.tty = self.stream.isatty()
        self.start = self.last = time.monotonic()
        self.first: int | None = None
        self.shown = False

    def __call__(self, done: int, total: int | None) -> None:
        now = time.monotonic()
        if self.first is None:
            self.first = done
        final = total is not None and done >= total
        if not final and now - self.last < (0.1 if self.tty else 2.0) and self.shown:
            return
        self.last, self.shown = now, True
        rate = (done - self.first) / max(now - self.start, 1e-6)
        if total:
            filled = int(30 * done / total)
            head = f"{100 * done / total:5.1f}% [{'#' * filled}{'.' * (30 - filled)}]"
        else:
            head = "       [" + "." * 30 + "]"
        line = f"{self.label[:40]:40} {head} {_size(done)}/{_size(total)} {_size(rate)}/s"
        self.stream.write(("\r" + line + "\x1b[K") if self.tty else (line + "\n"))
        if final and self.tty:
            self.stream.write("\n")
        self.stream.flush()


# ---------------------------------------------------------------------------- list
def configure_list(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--catalog", action="store_true",
                        help="show the built-in catalogue of downloadable models")
    parser.add_argument("--json", action="store_true", help="print JSON")


async def run_list(args: argparse.Namespace, ctx: Any) -> int:
    if args.catalog:
        rows = [model_to_api(m) for m in catalog.entries(ctx)]
        if args.json:
            print(json.dumps(rows, indent=2))
            return 0
        for row in rows:
            print(f"{row['id']:32} {row['name']}")
        return 0
    entries = await _registry(ctx).list()
    if args.json:
        print(json.dumps([model_to_api(e, downloaded=e.downloaded) | {"path": e.binary}
                          for e in entries], indent=2))
        return 0
    if not entries:
        print("No models yet: drop a .gguf into the models folder, or run "
              "`jan models import FILE` or `jan models pull ID` (`jan models list --catalog`).")
        return 0
    print(f"{'ID':36} {'SIZE':>9}  {'STATUS':14} PATH")
    for e in entries:
        status = "ready" if e.downloaded else "not downloaded"
        size = e.metadata.get("size") if isinstance(e.metadata, dict) else None
        print(f"{e.id:36} {_size(size):>9}  {status:14} {e.binary or '-'}")
    return 0


# ---------------------------------------------------------------------------- import
def configure_import(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="a .gguf file")
    parser.add_argument("--link", action="store_true",
                        help="reference the file where it is instead of copying it")
    parser.add_argument("--id", dest="model_id", help="model id (default: from the file name)")


async def run_import(args: argparse.Namespace, ctx: Any) -> int:
    try:
        entry = await _registry(ctx).import_path(args.file, link=args.link,
                                                 model_id=args.model_id)
    except USER_ERRORS as exc:
        return _fail(exc.message)
    how = "linked" if args.link else "imported"
    print(f"{how} {args.file} as model '{entry.id}'")
    return 0


# ---------------------------------------------------------------------------- pull
def configure_pull(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="a catalogue id (see `jan models list --catalog`), a "
                                      "model in models/ not yet downloaded, or an http(s) URL")


async def run_pull(args: argparse.Namespace, ctx: Any) -> int:
    try:
        entry, fetched = await pull(_registry(ctx), args.model, progress=Bar, ctx=ctx)
    except USER_ERRORS as exc:
        return _fail(exc.message)
    if not fetched:
        print(f"model '{entry.id}' is already downloaded ({entry.binary})")
    else:
        print(f"downloaded model '{entry.id}' ({entry.binary})")
    return 0


# ---------------------------------------------------------------------------- rm
def configure_rm(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("models", nargs="+", metavar="ID", help="model id(s) to delete")


async def run_rm(args: argparse.Namespace, ctx: Any) -> int:
    registry, status = _registry(ctx), 0
    for model_id in args.models:
        try:
            entry = await registry.get(model_id)
            await registry.delete(model_id)
        except USER_ERRORS as exc:
            status = _fail(exc.message)
            continue
        linked = Path(entry.settings.llama_model_path or "").is_absolute()
        kept = " (the linked file was kept)" if linked else ""
        print(f"deleted model '{model_id}'{kept}")
    return status


COMMANDS = [
    ("models list", "List the models in the data folder", configure_list, run_list),
    ("models import", "Import a GGUF file as a model", configure_import, run_import),
    ("models pull", "Download a model (resumable)", configure_pull, run_pull),
    ("models rm", "Delete models (linked files are kept)", configure_rm, run_rm),
]
