"""``jan``: one argparse tree. Host commands live here; extensions add theirs by hook."""

from __future__ import annotations

import argparse
import asyncio
import inspect
import logging
import os
import sys
from typing import Any

from . import __version__
from .hooks import CommandSpec, collect_commands

log = logging.getLogger("jan.cli")
HOST_COMMANDS = {"serve", "extensions"}


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-folder", help="data folder (default: $JAN_DATA_FOLDER or ~/jan)")


def build_parser(ext_commands: list[CommandSpec]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jan", description="A local, private ChatGPT "
                                     "alternative with an OpenAI-compatible API.")
    parser.add_argument("--version", action="version", version=f"jan {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = sub.add_parser("serve", help="start the API server")
    _common(serve)
    serve.add_argument("--host", default=None, help="bind address (default: $JAN_HOST, "
                       "settings.json server.host, or 127.0.0.1)")
    serve.add_argument("--port", type=int, default=None, help="port (default: $JAN_PORT, "
                       "settings.json server.port, or 1337)")
    serve.add_argument("--api-key", help="require 'Authorization: Bearer KEY' (or $JAN_API_KEY)")
    serve.add_argument("--reload", action="store_true",
                       help="also watch the bundled extensions folder (extension development)")
    serve.set_defaults(handler=_serve)

    from .manage import add_extension_commands

    add_extension_commands(sub, _common)
    groups: dict[str, argparse._SubParsersAction] = {"": sub}
    for spec in sorted(ext_commands, key=lambda c: c.name):
        *path, leaf = spec.name.split()
        if (path or [leaf])[0] in HOST_COMMANDS:
            log.warning("extension %s may not redefine 'jan %s'", spec.owner, spec.name)
            continue
        parent_key = ""
        for word in path:
            key = f"{parent_key} {word}".strip()
            if key not in groups:
                group = groups[parent_key].add_parser(word, help=f"{word} commands")
                groups[key] = group.add_subparsers(dest=f"cmd_{key.replace(' ', '_')}",
                                                   metavar="COMMAND", required=True)
            parent_key = key
        cmd = groups[parent_key].add_parser(leaf, help=spec.help, description=spec.help)
        _common(cmd)
        if spec.configure is not None:
            spec.configure(cmd)
        cmd.set_defaults(handler=_run_extension_command, spec=spec)
    return parser


def _serve(args: argparse.Namespace) -> int:
    from .server import serve

    return serve(data_folder=args.data_folder, host=args.host, port=args.port,
                 api_key=args.api_key, reload_bundled=args.reload)


def _run_extension_command(args: argparse.Namespace) -> int:
    return asyncio.run(_run_in_host(args.spec, args))


async def _run_in_host(spec: CommandSpec, args: argparse.Namespace) -> int:
    from .runtime import Jan

    jan = Jan(args.data_folder)
    await jan.start()
    try:
        if not await jan.host.activate(spec.owner):
            rec = jan.host.records.get(spec.owner)
            print(f"jan: extension {spec.owner} is not available: {rec and rec.reason}",
                  file=sys.stderr)
            return 1
        ctx = jan.host.records[spec.owner].context
        result: Any = spec.run(args, ctx) if spec.run else None
        if inspect.isawaitable(result):
            result = await result
        return int(result or 0)
    finally:
        await jan.stop()


def _extension_commands(data_folder: str | None) -> list[CommandSpec]:
    """Import every enabled extension (without activating it) to learn its commands."""
    from .runtime import Jan

    jan = Jan(data_folder, core_services=False)
    jan.host.load_records()
    commands: list[CommandSpec] = []
    for rec in jan.host.records.values():
        if rec.state in ("failed", "disabled"):
            continue
        try:
            instance, package = jan.host.instantiate(rec)
            commands += collect_commands(rec.id, instance)
        except Exception as exc:  # noqa: BLE001 - a broken extension costs only its commands
            log.debug("no commands from %s: %s", rec.id, exc)
    return commands


def _data_folder_arg(argv: list[str]) -> str | None:
    for i, arg in enumerate(argv):
        if arg == "--data-folder" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--data-folder="):
            return arg.partition("=")[2]
    return None


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = "-v" in argv or "--verbose" in argv
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    needs_ext = bool(argv) and argv[0] not in (*HOST_COMMANDS, "--version")
    commands = _extension_commands(_data_folder_arg(argv)) if needs_ext else []
    parser = build_parser(commands)
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 0
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `jan ... | head`: the reader left, which is not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
