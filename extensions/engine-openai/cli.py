"""``jan engines list|add|remove|test``: manage remote providers (``engines/<id>.json``)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from pydantic import ValidationError

from jan.sdk import check_id
from jan.sdk.http import validation_message
from jan.sdk.inference import GenerationRequest, LoadSpec

from .config import Provider, is_provider_file, load_providers


def configure_list(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON")


def configure_add(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("id", help="provider id: models say \"engine\": \"<id>\"")
    parser.add_argument("base_url", nargs="+", help="upstream base URL(s), e.g. "
                        "http://10.0.0.5:8080/v1 (several: a fleet)")
    parser.add_argument("--api-key", dest="api_key",
                        help="a reference: env:NAME or file:NAME (under <data>/secrets/, 0600)")
    parser.add_argument("--model", action="append", default=[],
                        help="a model name the upstream serves (repeatable)")
    parser.add_argument("--max-concurrency", type=int, default=64)
    parser.add_argument("--no-tools", action="store_true")
    parser.add_argument("--no-embeddings", action="store_true")
    parser.add_argument("--llama-params", action="store_true",
                        help="upstream takes top_k/min_p/repeat_penalty/grammar (llama-server)")


def configure_remove(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("id")


def configure_test(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("id")
    parser.add_argument("--model", help="also generate a few tokens with this upstream model")


async def run_list(args: argparse.Namespace, ctx: Any) -> int:
    providers, errors = load_providers(ctx.data.root)
    rows = [{"id": p.id, "upstreams": p.urls(), "api_key": p.api_key,
             "models": p.models} for p in providers.values()]
    rows += [{"id": pid, "error": why} for pid, why in errors.items()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no remote engines (add one with `jan engines add ID URL`)")
    for r in rows:
        print(f"{r['id']}\t" + (f"ERROR {r['error']}" if "error" in r else
                                " ".join(r["upstreams"])))
    return 0


async def run_add(args: argparse.Namespace, ctx: Any) -> int:
    pid = check_id(args.id, what="engine")
    urls = [u.rstrip("/") for u in args.base_url]
    data: dict[str, Any] = {"base_url": urls[0], "upstreams": urls[1:],
                            "max_concurrency": args.max_concurrency, "models": args.model,
                            "capabilities": {"tools": not args.no_tools,
                                             "embeddings": not args.no_embeddings,
                                             "llama_params": args.llama_params}}
    if args.api_key:
        data["api_key"] = args.api_key
    try:
        Provider.model_validate({**data, "id": pid})
    except ValidationError as exc:
        print(f"error: {validation_message(exc)[0]}")
        return 2
    ctx.data.write_json("engines", f"{pid}.json", value=data)
    print(f"added engine '{pid}' ({len(urls)} upstream(s)); models name it with "
          f"\"engine\": \"{pid}\" in model.json")
    return 0


async def run_remove(args: argparse.Namespace, ctx: Any) -> int:
    pid = check_id(args.id, what="engine")
    path = ctx.data.path("engines", f"{pid}.json")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = None
    if not is_provider_file(data):
        print(f"error: no remote engine '{pid}'")
        return 1
    path.unlink()
    print(f"removed engine '{pid}'")
    return 0


async def run_test(args: argparse.Namespace, ctx: Any) -> int:
    providers, errors = load_providers(ctx.data.root)
    if args.id not in providers:
        print(f"error: {errors.get(args.id, 'no remote engine ' + repr(args.id))}")
        return 1
    from .client import ProviderClient  # aiohttp: only for the command that talks upstream

    client = ProviderClient(providers[args.id], ctx.data.root, ctx.log)
    try:
        await client.check()
        bad = 0
        for u in client.fleet.upstreams:
            print(f"{u.url}\t{'ok' if u.healthy else 'FAILED'}")
            bad += not u.healthy
        if args.model and not bad:
            spec = LoadSpec(model_id=args.model, path=args.model, engine=args.id)
            text = ""
            async for ev in client.generate(spec, GenerationRequest(
                    messages=[{"role": "user", "content": "Say hi"}], max_tokens=8)):
                text += getattr(ev, "text", "")
            print(f"{args.model}: {text!r}")
        return 1 if bad else 0
    finally:
        await client.aclose()


COMMANDS = [
    ("engines list", "List remote engines (providers) and their upstreams",
     configure_list, run_list),
    ("engines add", "Add a remote engine: an OpenAI-compatible upstream or a fleet",
     configure_add, run_add),
    ("engines remove", "Remove a remote engine", configure_remove, run_remove),
    ("engines test", "Health-check a remote engine's upstreams (and try a model)",
     configure_test, run_test),
]
