"""The CLI learns commands from manifests: help imports nothing, a command starts only what it
needs, global options go before or after the command, ``python -m jan`` works."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from host_fixtures import write_extension

PROBE = """
import json, sys
from jan.host.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
loaded = sorted({m.split(".")[1] for m in sys.modules if m.startswith("jan_ext.")})
heavy = sorted(m for m in ("pydantic", "jan.host.engine", "jan.host.sandbox", "starlette",
                           "llama_cpp") if m in sys.modules)
print("\\n" + json.dumps({"code": code, "extensions": loaded, "heavy": heavy}))
"""


def probe(*args: str) -> tuple[str, dict]:
    """Run the CLI in a fresh interpreter; its output and what it had imported at the end."""
    out = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True,
                         timeout=120)
    text, _, last = out.stdout.rstrip().rpartition("\n")
    assert last.startswith("{"), out.stdout + out.stderr
    return text + out.stderr, json.loads(last)


def jan(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "jan", *args], capture_output=True, text=True,
                          timeout=120)


def test_help_lists_every_command_without_importing_extensions(data_folder):
    text, seen = probe("--data-folder", str(data_folder), "--help")
    assert seen["code"] == 0
    for word in ("serve", "extensions", "models", "threads", "assistants", "chat", "sandbox"):
        assert f"\n    {word} " in text, text
    assert seen["extensions"] == [] and seen["heavy"] == []
    text, seen = probe("--data-folder", str(data_folder), "models", "--help")
    assert "List the models in the data folder" in text and "Download a model" in text
    assert seen["extensions"] == [] and seen["heavy"] == []


def test_a_command_imports_its_extension_only_and_no_engine(data_folder):
    text, seen = probe("--data-folder", str(data_folder), "models", "list", "--json")
    assert seen["code"] == 0, text
    assert seen["extensions"] == ["models"]
    assert "jan.host.engine" not in seen["heavy"] and "jan.host.sandbox" not in seen["heavy"]
    text, seen = probe("threads", "export", "nope", "--data-folder", str(data_folder))
    assert seen["code"] == 1 and "nope" in text
    assert seen["extensions"] == ["messages", "threads"]  # export reads messages too


def test_leaf_help_explains_its_arguments(data_folder):
    out = jan("--data-folder", str(data_folder), "models", "import", "--help")
    assert out.returncode == 0 and "--link" in out.stdout and "Import a GGUF" in out.stdout


def test_global_options_before_and_after_the_command(data_folder, tmp_path):
    other = tmp_path / "other"
    (other / "models" / "m1").mkdir(parents=True)
    before = jan("--data-folder", str(other), "models", "list", "--json")
    after = jan("models", "list", "--json", "--data-folder", str(data_folder))
    assert before.returncode == 0 and after.returncode == 0, before.stderr + after.stderr
    assert json.loads(before.stdout) != json.loads(after.stdout)
    assert jan("--version").stdout.startswith("jan ")


def test_undeclared_and_on_command_extensions(data_folder):
    ext = data_folder / "extensions"
    # Registers a command its manifest does not declare: found by importing everything.
    write_extension(ext, "hello", activation="[]", body=textwrap.dedent("""
        from jan.sdk import Extension, hookimpl

        class Ext(Extension):
            @hookimpl
            def register_commands(self, register):
                register("hello", "say hello", run=lambda args, ctx: print("hello from", ctx.id))
    """))
    # Activated only for `jan hello` (onCommand:), and says so in its storage.
    write_extension(ext, "watcher", activation='["onCommand:hello"]', body=textwrap.dedent("""
        from jan.sdk import Extension

        class Ext(Extension):
            def activate(self, ctx):
                ctx.storage.path("seen").write_text("activated")
    """))
    out = jan("--data-folder", str(data_folder), "hello")
    assert out.returncode == 0 and "hello from hello" in out.stdout, out.stderr
    assert (data_folder / "storage" / "watcher" / "seen").read_text() == "activated"


def test_a_declared_command_that_is_missing_is_an_error(data_folder):
    write_extension(data_folder / "extensions", "liar", activation="[]", manifest_extra="""
        [[contributes.commands]]
        name = "liar run"
        description = "declared, never registered"
    """)
    listed = jan("--data-folder", str(data_folder), "--help")
    assert "liar" in listed.stdout
    out = jan("--data-folder", str(data_folder), "liar", "run")
    assert out.returncode == 1 and "declares 'jan liar run'" in out.stderr


def test_python_dash_m_jan_is_the_cli(tmp_path: Path):
    out = jan("--data-folder", str(tmp_path), "sandbox", "--help")
    assert out.returncode == 0 and "probe" in out.stdout
