"""``jan extensions ...``: list, enable, disable (persisted in settings.json)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable

from .config import load_settings, resolve_data_folder, save_settings


def add_extension_commands(sub: argparse._SubParsersAction,
                           common: Callable[[argparse.ArgumentParser], None]) -> None:
    ext = sub.add_parser("extensions", help="list and manage extensions")
    ext_sub = ext.add_subparsers(dest="ext_command", metavar="COMMAND", required=True)

    p = ext_sub.add_parser("list", help="id, version, state, provides and failure reason")
    common(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=cmd_list)

    p = ext_sub.add_parser("install", help="install from a folder, wheel, sdist or PyPI name")
    common(p)
    p.add_argument("source")
    p.set_defaults(handler=cmd_install)

    p = ext_sub.add_parser("uninstall", help="remove an installed extension")
    common(p)
    p.add_argument("id")
    p.set_defaults(handler=cmd_uninstall)

    p = ext_sub.add_parser("new", help="scaffold a working extension in the data folder")
    common(p)
    p.add_argument("name")
    p.set_defaults(handler=cmd_new)

    for name, enabled in (("enable", True), ("disable", False)):
        p = ext_sub.add_parser(name, help=f"{name} an extension (persisted in settings.json)")
        common(p)
        p.add_argument("id")
        p.set_defaults(handler=cmd_toggle, enabled=enabled)


def _describe(args: argparse.Namespace) -> list[dict]:
    import asyncio

    from .runtime import Jan

    async def run() -> list[dict]:
        jan = Jan(args.data_folder, core_services=False)
        jan.host.load_records()
        for ext_id in jan.host.plan():
            rec = jan.host.records[ext_id]
            if rec.state == "inactive":
                try:
                    jan.host.instantiate(rec)  # import check only: reports broken code
                except Exception as exc:  # noqa: BLE001
                    rec.fail(f"{type(exc).__name__}: {exc}")
        rows = jan.host.describe()
        rows += [{"id": "?", "version": "", "state": "invalid", "reason": e, "provides": []}
                 for e in jan.host.manifest_errors]
        return rows

    return asyncio.run(run())


def cmd_list(args: argparse.Namespace) -> int:
    rows = _describe(args)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'ID':<22} {'VERSION':<9} {'STATE':<9} {'PROVIDES':<20} REASON")
    for r in rows:
        provides = ",".join(r.get("provides") or [])
        print(f"{r['id']:<22} {r['version']:<9} {r['state']:<9} {provides:<20} {r['reason'] or ''}")
    return 0


def cmd_toggle(args: argparse.Namespace) -> int:
    from .config import SettingsError

    folder = resolve_data_folder(args.data_folder)
    try:
        settings = load_settings(folder, strict=True)  # never overwrite a file we can't read
    except SettingsError as exc:
        print(f"jan: {exc}", file=sys.stderr)
        return 1
    disabled = [e for e in settings.disabled_extensions if e != args.id]
    if not args.enabled:
        disabled.append(args.id)
    settings.disabled_extensions = disabled
    save_settings(folder, settings)
    print(f"{args.id}: {'enabled' if args.enabled else 'disabled'}", file=sys.stderr)
    return 0


def _extensions_dir(args: argparse.Namespace):  # noqa: ANN202
    return resolve_data_folder(args.data_folder) / "extensions"


def _guarded(fn):  # noqa: ANN001, ANN202 - turns InstallError into a message and exit 1
    def run(args: argparse.Namespace) -> int:
        from .install import InstallError

        try:
            return fn(args)
        except InstallError as exc:
            print(f"jan: {exc}", file=sys.stderr)
            return 1

    return run


@_guarded
def cmd_install(args: argparse.Namespace) -> int:
    from .install import install

    manifest = install(args.source, _extensions_dir(args))
    print(f"installed {manifest.id} {manifest.version}")
    return 0


@_guarded
def cmd_uninstall(args: argparse.Namespace) -> int:
    from .install import uninstall

    for folder in uninstall(args.id, _extensions_dir(args)):
        print(f"removed {folder}")
    return 0


@_guarded
def cmd_new(args: argparse.Namespace) -> int:
    from .install import scaffold

    folder = scaffold(args.name, _extensions_dir(args))
    print(f"created {folder}: edit main.py; a running `jan serve` picks it up")
    return 0
