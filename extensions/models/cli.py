"""``jan models list|ps|start|stop|import|pull|rm``.

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

from . import catalog, server_client
from .importer import already_imported
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
        print(f"{'ID':32} {'SIZE':>9}  NAME")
        for row in rows:
            meta = row.get("metadata") or {}
            size = meta.get("size") or meta.get("approx_size")
            shown = ("~" if not meta.get("size") and size else "") + _size(size)
            print(f"{row['id']:32} {shown:>9}  {row['name']}")
        return 0
    entries = await _registry(ctx).list()
    running = {m["model_id"] for m in await server_client.loaded(ctx) or []}
    if args.json:
        print(json.dumps([model_to_api(e, downloaded=e.downloaded)
                          | {"path": e.binary, "loaded": e.id in running}
                          for e in entries], indent=2))
        return 0
    if not entries:
        print("No models yet: drop a .gguf into the models folder, or run "
              "`jan models import FILE` or `jan models pull ID` (`jan models list --catalog`).")
        return 0
    print(f"{'ID':36} {'SIZE':>9}  {'STATUS':14} PATH")
    for e in entries:
        status = "loaded" if e.id in running else "ready" if e.downloaded else "not downloaded"
        size = e.metadata.get("size") if isinstance(e.metadata, dict) else None
        print(f"{e.id:36} {_size(size):>9}  {status:14} {e.binary or '-'}")
    return 0


# ---------------------------------------------------------------------------- ps/start/stop
def configure_ps(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--url", default=None, help="server URL (default: the running server "
                        "of the data folder)")


async def run_ps(args: argparse.Namespace, ctx: Any) -> int:
    models = await server_client.loaded(ctx, args.url)
    if models is None:
        return _fail("no jan server is running for this data folder (start one with `jan serve`)")
    rows = [m | {"memory_bytes": server_client.rss_bytes(m.get("pid")),
                 "idle": server_client.idle_for(m)} for m in models]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("No model is loaded (models load on first use, or with `jan models start ID`).")
        return 0
    print(f"{'ID':36} {'PID':>8} {'MEMORY':>9} {'CTX':>6} {'SLOTS':>5} {'BUSY':>4} IDLE")
    for m in rows:
        print(f"{m['model_id']:36} {m.get('pid') or '-':>8} {_size(m['memory_bytes']):>9} "
              f"{m.get('ctx_len', '-'):>6} {m.get('n_parallel', '-'):>5} "
              f"{m.get('busy', 0):>4} {m['idle']}")
    return 0


def configure_start_stop(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="ID", help="model id (see `jan models list`)")
    parser.add_argument("--url", default=None, help="server URL (default: the running server "
                        "of the data folder)")


async def run_start(args: argparse.Namespace, ctx: Any) -> int:
    try:
        body = await server_client.call(ctx, "POST", f"/v1/models/{args.model}/start", args.url)
    except USER_ERRORS as exc:
        return _fail(exc.message)
    pid = (body.get("loaded") or {}).get("pid")
    print(f"model '{body.get('id', args.model)}' is loaded (runner pid {pid})")
    return 0


async def run_stop(args: argparse.Namespace, ctx: Any) -> int:
    try:
        body = await server_client.call(ctx, "POST", f"/v1/models/{args.model}/stop", args.url)
    except USER_ERRORS as exc:
        return _fail(exc.message)
    model_id = body.get("id", args.model)
    print(f"model '{model_id}' stopped" if body.get("stopped")
          else f"model '{model_id}' was not loaded")
    return 0


# ---------------------------------------------------------------------------- import
def configure_import(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="a .gguf file")
    parser.add_argument("--link", action="store_true",
                        help="reference the file where it is instead of copying it")
    parser.add_argument("--id", dest="model_id", help="model id (default: from the file name)")


async def run_import(args: argparse.Namespace, ctx: Any) -> int:
    src = Path(args.file).expanduser()
    check = src.is_file() and not args.model_id  # an explicit --id may want a second entry
    existing = already_imported(await _registry(ctx).list(), src) if check else None
    if existing is not None:
        print(f"{args.file} is already imported as model '{existing}' (nothing copied)")
        return 0
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
    ("models ps", "Show the models loaded in the running server (memory, idle time)",
     configure_ps, run_ps),
    ("models start", "Load a model in the running server", configure_start_stop, run_start),
    ("models stop", "Unload a model from the running server", configure_start_stop, run_stop),
    ("models import", "Import a GGUF file as a model", configure_import, run_import),
    ("models pull", "Download a model (resumable)", configure_pull, run_pull),
    ("models rm", "Delete models (linked files are kept)", configure_rm, run_rm),
]
