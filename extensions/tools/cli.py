"""``jan tools list`` and ``jan tools call NAME JSON`` (for trying a tool by hand)."""

from __future__ import annotations

import argparse
import json
import sys

from jan.sdk import Context


def configure_list(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON")


def configure_call(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="the tool's name (see `jan tools list`)")
    parser.add_argument("arguments", nargs="?", default="{}", help="a JSON object")
    parser.add_argument("--timeout", type=float, default=None, help="seconds")


async def run_list(args: argparse.Namespace, ctx: Context) -> int:
    service = ctx.services.get("tools")
    rows = [{**t.model_dump(), "policy": service.approvals.policy(t.name, t.server)}
            for t in await service.list()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("No tools.")
    for t in rows:
        first = t["description"].splitlines()[0] if t["description"] else ""
        print(f"{t['name']}\t{t['source']}\t{t['policy']}\t{first}")
    return 0


async def run_call(args: argparse.Namespace, ctx: Context) -> int:
    try:
        arguments = json.loads(args.arguments)
    except json.JSONDecodeError as exc:
        print(f"ARGUMENTS is not JSON: {exc}", file=sys.stderr)
        return 2
    if not isinstance(arguments, dict):
        print("ARGUMENTS must be a JSON object", file=sys.stderr)
        return 2
    result = await ctx.services.get("tools").call(args.name, arguments, timeout=args.timeout)
    print(result.output)
    return 1 if result.is_error else 0
