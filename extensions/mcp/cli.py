"""``jan mcp add|remove|list``: edit ``<data>/mcp_config.json`` (a running server applies it)."""

from __future__ import annotations

import argparse
import json
import sys

from jan.sdk import Context

from .config import CONFIG_FILE, read_config, write_servers


def configure_add(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="the server's name (tools become NAME__tool)")
    parser.add_argument("--url", help="a Streamable HTTP server's URL (instead of a command)")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                        help="environment for a stdio server (VALUE may be env:NAME)")
    parser.add_argument("--header", action="append", default=[], metavar="KEY=VALUE",
                        help="HTTP header for a URL server (VALUE may be env:NAME)")
    parser.add_argument("command", nargs=argparse.REMAINDER,
                        help="the stdio server's command line, after -- (options go before NAME)")


def configure_remove(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name")


def configure_list(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON")


def _pairs(items: list[str]) -> dict[str, str] | None:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            return None
        out[key] = value
    return out


def _raw_servers(ctx: Context) -> dict[str, object] | None:
    configs, error = read_config(ctx.data)
    if error:
        print(f"{error}: fix the file first", file=sys.stderr)
        return None
    return {n: c.model_dump(exclude_defaults=True) for n, c in configs.items()}


async def run_add(args: argparse.Namespace, ctx: Context) -> int:
    command = list(args.command)
    if command[:1] == ["--"]:
        command = command[1:]
    env, headers = _pairs(args.env), _pairs(args.header)
    if env is None or headers is None:
        print("--env/--header take KEY=VALUE", file=sys.stderr)
        return 2
    if bool(args.url) == bool(command):
        print("give either --url URL or -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    servers = _raw_servers(ctx)
    if servers is None:
        return 1
    entry: dict[str, object] = ({"url": args.url, "headers": headers} if args.url else
                                {"command": command[0], "args": command[1:], "env": env})
    servers[args.name] = {k: v for k, v in entry.items() if v not in ({}, [])}
    write_servers(ctx.data, servers)
    print(f"Added MCP server {args.name!r} to {CONFIG_FILE}")
    return 0


async def run_remove(args: argparse.Namespace, ctx: Context) -> int:
    servers = _raw_servers(ctx)
    if servers is None:
        return 1
    if args.name not in servers:
        print(f"No MCP server named {args.name!r}", file=sys.stderr)
        return 1
    del servers[args.name]
    write_servers(ctx.data, servers)
    print(f"Removed MCP server {args.name!r}")
    return 0


async def run_list(args: argparse.Namespace, ctx: Context) -> int:
    configs, error = read_config(ctx.data)
    if error:
        print(error, file=sys.stderr)
        return 1
    rows = {n: c.public() for n, c in configs.items()}
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print(f"No MCP servers (add one: jan mcp add NAME -- COMMAND ARGS); file: {CONFIG_FILE}")
    for name, row in rows.items():
        where = row.get("url") or " ".join([row.get("command", ""), *row.get("args", [])])
        print(f"{name}\t{where}{'  (disabled)' if row.get('disabled') else ''}")
    return 0
