"""``jan``: one argparse tree built from the manifests, importing only what a command needs.

``jan --help`` (and ``jan models --help``) list commands from each manifest's
``contributes.commands`` (``host/commands.py``) without importing any extension. Running
``jan models list`` imports and activates only the ``models`` extension (plus what it depends
on), the way VSCode activates an extension ``onCommand:``; the engine and the sandbox are
created only if the command actually asks for them. A command an extension registers without
declaring it in its manifest still works: then every extension is imported to find it.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from . import __version__
from .commands import (
    HOST_COMMANDS,
    IndexedCommand,
    data_folder_path,
    leading_words,
    match,
    read_index,
)

GLOBAL_VALUE_OPTIONS = {"--data-folder"}


def _global_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
    # On subcommands the default is SUPPRESS so `jan --data-folder X models list` keeps X.
    default = None if top else argparse.SUPPRESS
    parser.add_argument("--data-folder", default=default, metavar="DIR",
                        help="data folder (default: $JAN_DATA_FOLDER or ~/jan)")
    parser.add_argument("-v", "--verbose", action="store_true",
                        default=False if top else argparse.SUPPRESS, help="debug logging")


def _top_parser() -> tuple[argparse.ArgumentParser, argparse._SubParsersAction]:
    parser = argparse.ArgumentParser(
        prog="jan", description="A local, private ChatGPT alternative with an "
        "OpenAI-compatible API. Global options may come before or after the command.")
    parser.add_argument("--version", action="version", version=f"jan {__version__}")
    _global_options(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    return parser, sub


def _add_serve(sub: argparse._SubParsersAction) -> None:
    serve = sub.add_parser("serve", help=HOST_COMMANDS["serve"],
                           description="Start the OpenAI-compatible API server.")
    _global_options(serve, top=False)
    serve.add_argument("--host", default=None, help="bind address (default: $JAN_HOST, "
                       "settings.json server.host, or 127.0.0.1)")
    serve.add_argument("--port", type=int, default=None, help="port (default: $JAN_PORT, "
                       "settings.json server.port, or 1337)")
    serve.add_argument("--api-key", help="require 'Authorization: Bearer KEY' (or $JAN_API_KEY)")
    serve.add_argument("--reload", action="store_true",
                       help="also watch the bundled extensions folder (extension development)")
    serve.set_defaults(handler=_serve)


def _add_host_commands(sub: argparse._SubParsersAction, words: list[str]) -> None:
    _add_serve(sub)
    if words[:1] == ["extensions"]:
        from .manage import add_extension_commands  # loads settings helpers: only when used

        add_extension_commands(sub, lambda p: _global_options(p, top=False))
    else:
        sub.add_parser("extensions", help=HOST_COMMANDS["extensions"], add_help=False)
    doctor = sub.add_parser("doctor", help=HOST_COMMANDS["doctor"],
                            description="Check the data folder's disk space and the setup.")
    _global_options(doctor, top=False)
    doctor.set_defaults(handler=_doctor)


def _doctor(args: argparse.Namespace) -> int:
    from .doctor import run_doctor  # pydantic and settings: only when the command runs

    return run_doctor(args)


def build_parser(index: list[IndexedCommand], specs: dict[str, Any],
                 words: list[str] | None = None) -> argparse.ArgumentParser:
    """The command tree: ``specs`` (imported ``CommandSpec``s by name) get their full
    arguments; the rest of ``index`` are listed with their manifest description only."""
    parser, sub = _top_parser()
    _add_host_commands(sub, words or [])
    names = {c.name: c for c in index}
    for name, spec in specs.items():
        names.setdefault(name, IndexedCommand(name, spec.help, spec.owner))
    groups: dict[str, argparse._SubParsersAction] = {"": sub}
    for name in sorted(names):
        entry = names[name]
        *path, leaf = name.split()
        parent = ""
        for word in path:
            key = f"{parent} {word}".strip()
            if key not in groups:
                leaves = sorted(n.split()[len(key.split())] for n in names
                                if n.startswith(key + " "))
                group = groups[parent].add_parser(word, help=f"{', '.join(dict.fromkeys(leaves))}",
                                                  description=f"jan {key} commands")
                _global_options(group, top=False)
                groups[key] = group.add_subparsers(dest=f"cmd_{key.replace(' ', '_')}",
                                                   metavar="COMMAND", required=True)
            parent = key
        spec = specs.get(name)
        help_text = entry.description or (spec.help if spec else "")
        cmd = groups[parent].add_parser(leaf, help=help_text, description=help_text)
        _global_options(cmd, top=False)
        if spec is not None:
            if spec.configure is not None:
                spec.configure(cmd)
            cmd.set_defaults(handler=_run_extension_command, spec=spec)
    return parser


def _serve(args: argparse.Namespace) -> int:
    from .server import serve

    return serve(data_folder=args.data_folder, host=args.host, port=args.port,
                 api_key=args.api_key, reload_bundled=args.reload)


def _run_extension_command(args: argparse.Namespace) -> int:
    import asyncio

    return asyncio.run(_run_in_host(args.spec, args))


async def _run_in_host(spec: Any, args: argparse.Namespace) -> int:
    import inspect

    from .runtime import Jan

    jan = Jan(args.data_folder, core_services="lazy")
    try:
        if not await jan.start_for_command(spec.owner, spec.name):
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


def commands_of(data_folder: str | None, owners: set[str] | None) -> dict[str, Any]:
    """Import ``owners`` (all enabled extensions if None), without activating, for commands."""
    import logging

    from .hooks import collect_commands
    from .runtime import Jan

    log = logging.getLogger("jan.cli")
    jan = Jan(data_folder, core_services=False)
    jan.host.load_records()
    specs: dict[str, Any] = {}
    for rec in jan.host.records.values():
        if rec.state in ("failed", "disabled") or (owners is not None and rec.id not in owners):
            continue
        try:
            instance, _package = jan.host.instantiate(rec)
            declared = {c.name for c in rec.manifest.contributes.commands}
            for spec in collect_commands(rec.id, instance):
                if spec.name.split()[0] in HOST_COMMANDS:
                    log.warning("extension %s may not redefine 'jan %s'", rec.id, spec.name)
                    continue
                if spec.name not in declared:
                    log.info("extension %s registers 'jan %s' without declaring it in "
                             "contributes.commands", rec.id, spec.name)
                specs[spec.name] = spec
        except Exception as exc:  # noqa: BLE001 - a broken extension costs only its commands
            log.warning("no commands from %s: %s", rec.id, exc)
    return specs


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
    import logging

    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    folder = _data_folder_arg(argv)
    words = leading_words(argv, GLOBAL_VALUE_OPTIONS)
    index = [] if words[:1] and words[0] in HOST_COMMANDS else read_index(data_folder_path(folder))
    specs: dict[str, Any] = {}
    if words and words[0] not in HOST_COMMANDS:
        target = match(index, words)
        group = " ".join(words) + " "
        if target is not None or not any(c.name.startswith(group) for c in index):
            # A declared command imports its owner only; an unknown one looks everywhere.
            specs = commands_of(folder, {target.owner} if target else None)
        if target is not None and target.name not in specs:
            print(f"jan: extension {target.owner} declares 'jan {target.name}' but does not "
                  "provide it (is it broken? see `jan extensions list`)", file=sys.stderr)
            return 1
    parser = build_parser(index, specs, words)
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
