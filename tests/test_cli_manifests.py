"""Every command a bundled extension registers is declared in its manifest, so `jan --help`
describes it without importing the extension, and running it activates only what it needs."""

from __future__ import annotations

import tomllib
from pathlib import Path

from jan.host.cli import commands_of

EXTENSIONS = Path(__file__).resolve().parent.parent / "extensions"


def declared() -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for manifest in EXTENSIONS.glob("*/extension.toml"):
        data = tomllib.loads(manifest.read_text())
        cmds = data.get("contributes", {}).get("commands", [])
        out[data["id"]] = {c if isinstance(c, str) else c["name"] for c in cmds}
    return out


def test_every_registered_command_is_declared_with_a_description(tmp_path: Path) -> None:
    specs = commands_of(str(tmp_path), None)
    assert {"chat", "run", "threads list", "models ps"} <= set(specs)
    names = declared()
    undeclared = sorted(f"{s.owner}: {s.name}" for s in specs.values()
                        if s.name not in names.get(s.owner, set()))
    assert undeclared == []
    for manifest in EXTENSIONS.glob("*/extension.toml"):
        for cmd in tomllib.loads(manifest.read_text()).get("contributes", {}).get("commands", []):
            assert isinstance(cmd, dict) and cmd.get("description"), (manifest, cmd)
