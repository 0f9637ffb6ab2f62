"""``jan extensions ...``: list, install, uninstall, enable, disable (persisted in
settings.json), logs. ``list`` shows what the running server reports when one runs for the data
folder (a fresh scan otherwise)."""

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
    p.add_argument("--yes", "-y", action="store_true",
                   help="do not ask before deleting a folder you wrote by hand")
    p.set_defaults(handler=cmd_uninstall)

    p = ext_sub.add_parser("logs", help="an extension's log (<data>/logs/extensions/ID.log)")
    common(p)
    p.add_argument("id")
    p.add_argument("-n", "--lines", type=int, default=50, help="last N lines (default 50)")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    p.set_defaults(handler=cmd_logs)

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


def _from_server(args: argparse.Namespace) -> tuple[list[dict], str] | None:
    """``/health``'s extensions from the server running for this data folder, if any."""
    import httpx

    from jan.sdk.server_address import client_key, read_address

    folder = resolve_data_folder(args.data_folder)
    address = read_address(folder)
    if address is None:
        return None
    key = client_key(None, load_settings(folder).model_dump(mode="json"))
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    try:
        health = httpx.get(address.url + "/health", headers=headers, timeout=10).json()
    except (httpx.HTTPError, ValueError):
        return None
    if "extensions" not in health:
        return None
    rows = list(health["extensions"])
    rows += [{"id": "?", "version": "", "state": "invalid", "reason": e, "provides": []}
             for e in health.get("manifest_errors") or []]
    return rows, address.url


def cmd_list(args: argparse.Namespace) -> int:
    served = _from_server(args)
    rows = served[0] if served else _describe(args)
    if not args.json:
        print(f"(as reported by the running server at {served[1]})" if served else
              "(no server running for this data folder: a fresh scan of what would load)",
              file=sys.stderr)
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
        _warn_core(args)
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


def _routes_of(jan, rec) -> list[str]:  # noqa: ANN001 - a Jan and its Record
    """The paths an extension registers (best effort: some register only once active)."""
    paths: list[str] = []
    try:
        instance, _ = jan.host.instantiate(rec)
        instance.register_routes(register=lambda path, *a, **k: paths.append(path))
    except Exception:  # noqa: BLE001 - a warning is still worth printing without them
        return paths
    return sorted(set(paths))


def _warn_core(args: argparse.Namespace) -> None:
    """Disabling a bundled extension: say what stops working."""
    from .runtime import Jan

    jan = Jan(args.data_folder, core_services=False)
    jan.host.load_records()
    rec = jan.host.records.get(args.id)
    if rec is None or rec.candidate.source != "bundled":
        return
    m = rec.manifest
    lost = [f"the '{name}' service" for name in m.provides]
    routes = list(m.contributes.routes) or _routes_of(jan, rec)
    lost += [f"routes {', '.join(routes)}"] if routes else []
    needing = sorted(other.id for other in jan.host.records.values() if other.id != args.id
                     and (args.id in other.manifest.dependencies
                          or set(other.manifest.requires) & set(m.provides)))
    lost += [f"extensions that need it: {', '.join(needing)}"] if needing else []
    what = "; ".join(lost) or "the features it adds"
    print(f"warning: {args.id} is a core (bundled) extension; disabling it stops {what}. "
          f"`jan extensions enable {args.id}` brings it back.", file=sys.stderr)


@_guarded
def cmd_uninstall(args: argparse.Namespace) -> int:
    from .install import hand_written, uninstall

    extensions_dir = _extensions_dir(args)
    mine = hand_written(args.id, extensions_dir)
    if mine and not args.yes:
        names = ", ".join(str(p) for p in mine)
        if not sys.stdin.isatty():
            print(f"jan: {names} was written by hand, not installed; deleting it loses that "
                  "work. Run again with --yes to delete it.", file=sys.stderr)
            return 1
        answer = input(f"{names} was written by hand, not installed. Delete it? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("kept", file=sys.stderr)
            return 1
    for folder in uninstall(args.id, extensions_dir):
        print(f"removed {folder}")
    return 0


def cmd_logs(args: argparse.Namespace) -> int:
    from .extension_logs import follow, log_path, tail

    try:
        path = log_path(resolve_data_folder(args.data_folder), args.id)
    except ValueError as exc:
        print(f"jan: {exc}", file=sys.stderr)
        return 1
    lines = tail(path, max(args.lines, 0))
    if not lines and not args.follow:
        print(f"(no log yet at {path}: a running server writes there when {args.id} logs)",
              file=sys.stderr)
    sys.stdout.write("".join(lines))
    sys.stdout.flush()
    if args.follow:
        try:
            follow(path)
        except KeyboardInterrupt:
            return 0
    return 0


@_guarded
def cmd_new(args: argparse.Namespace) -> int:
    from .install import scaffold

    folder = scaffold(args.name, _extensions_dir(args))
    print(f"created {folder}: edit main.py; a running `jan serve` picks it up")
    return 0
