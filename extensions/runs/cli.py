"""``jan assistants new|list|install`` and ``jan sandbox probe``."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

from jan.sdk import Context
from jan.sdk.errors import NotFound
from jan.sdk.models import Assistant
from jan.sdk.sandbox import ENV_DIR, env_site_dirs, install_requirements
from jan.sdk.services import every
from jan.sdk.storage import check_id

INDEX_TEMPLATE = '''"""{name}: this assistant's own code.

It runs in a sandbox (no network, no files but its own folder) and talks to Jan through
jan.sdk.assistant. Edit and save: the next run uses the new code. print() and logging go to
`jan assistants logs {id}`."""

from jan.sdk.assistant import assistant, events, models, thread


@events.on("assistant:{id}")
def reply(event):
    messages = thread.messages()             # the run's thread, oldest first
    if assistant.instructions:               # "instructions" from assistant.json
        messages = [{{"role": "system", "content": assistant.instructions}}, *messages]
    return models.chat(messages)             # the run's reply, at most max_tokens (assistant.json)
'''
# The scaffold's cap on each models.chat reply (top-level "max_tokens" in assistant.json): a
# sampled reply may otherwise run on past the sandbox's 60 s limit for a call and fail the run
# (measured: 256 tokens of SmolLM2-135M, cold, on 2 busy cores took 53-61 s).
SCAFFOLD_MAX_TOKENS = 128


def slug(name: str) -> str:
    value = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return value[:60] or "assistant"


def configure_new(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name")
    parser.add_argument("--id", help="folder name / id (default: from the name)")
    parser.add_argument("--code", action="store_true", help="add a runnable index.py")
    parser.add_argument("--model", default="*", help="model id (default: any model)")
    parser.add_argument("--instructions", default="You are a helpful assistant.")


async def run_new(args: argparse.Namespace, ctx: Context) -> int:
    store = ctx.services.get("assistants")
    assistant_id = check_id(args.id or slug(args.name), what="id")
    try:
        await store.get(assistant_id)
        print(f"jan: assistant '{assistant_id}' already exists")
        return 1
    except NotFound:
        pass
    cap = {"max_tokens": SCAFFOLD_MAX_TOKENS} if args.code else {}
    await store.create(Assistant(id=assistant_id, name=args.name, model=args.model,
                                 instructions=args.instructions, **cap))
    folder = Path(store.folder(assistant_id))
    if args.code:
        (folder / "index.py").write_text(INDEX_TEMPLATE.format(name=args.name, id=assistant_id))
        (folder / "requirements.txt").write_text("# one requirement per line, then run "
                                                 f"`jan assistants install {assistant_id}`\n")
    print(f"{assistant_id}\t{folder}")
    return 0


async def _all(store: Any) -> list[Assistant]:
    return [a async for a in every(store.list)]


async def run_list(args: argparse.Namespace, ctx: Context) -> int:
    store = ctx.services.get("assistants")
    for a in await _all(store):
        folder = Path(store.folder(a.id))
        kind = "code" if (folder / "index.py").is_file() else "plain"
        env = "env" if env_site_dirs(folder) else "-"
        print(f"{a.id}\t{a.name or a.id}\t{a.model}\t{kind}\t{env}")
    return 0


def configure_install(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("assistant_id")
    parser.add_argument("--target", help=f"install here instead of <folder>/{ENV_DIR} "
                        "(must be inside the assistant's folder: the sandbox reads nothing else)")


async def run_install(args: argparse.Namespace, ctx: Context) -> int:
    store = ctx.services.get("assistants")
    await store.get(args.assistant_id)
    folder = Path(store.folder(args.assistant_id))
    target = Path(args.target).expanduser() if args.target else None
    if target is not None and folder.resolve() not in target.resolve().parents:
        print(f"jan: --target must be inside {folder} (the sandbox can read nothing outside it)")
        return 1
    try:
        result = install_requirements(folder, target=target)
    except FileNotFoundError as exc:
        print(f"jan: {exc}")
        return 1
    if not result.ok:
        print(result.output)
        print(f"jan: installing requirements for '{args.assistant_id}' failed")
        return 1
    print(f"installed into {result.site_packages}")
    try:
        await ctx.services.get("sandbox").restart(args.assistant_id)
    except Exception:  # noqa: BLE001 - the next run picks the new environment up anyway
        pass
    return 0


def configure_probe(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the full report as JSON")


async def run_probe(args: argparse.Namespace, ctx: Context) -> int:
    report = ctx.services.get("sandbox").probe()
    if args.json:
        print(json.dumps(report.model_dump(mode="json"), indent=2))
        return 0 if report.ok else 1
    print(f"sandbox mode: {report.mode}   isolation level: {report.level}   "
          f"{'ok' if report.ok else 'REFUSED (strict mode cannot reach its required layers)'}")
    for name, layer in report.layers.items():
        state = "active" if layer.active else ("available" if layer.available else "unavailable")
        print(f"  {name:<14}{state:<13}{layer.detail}")
    for name, value in report.checks.items():
        print(f"  check {name}: {value}")
    if report.error:
        print(f"  error: {report.error}")
    return 0 if report.ok else 1
