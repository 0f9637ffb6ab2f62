"""``jan extensions list|install|uninstall|disable|logs`` as users run them."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from cli_fixtures import jan
from conftest import start_server

ROOT = Path(__file__).resolve().parents[1]


def test_install_a_project_folder_then_uninstall_without_asking(data_folder):
    done = jan(data_folder, "extensions", "install", str(ROOT / "examples" / "message-counter"))
    assert done.returncode == 0, done.stderr
    assert (data_folder / "extensions" / "message-counter-0.1.0" / "extension.toml").is_file()
    rows = json.loads(jan(data_folder, "extensions", "list", "--json").stdout)
    assert {"id": "message-counter", "state": "inactive"}.items() <= next(
        r for r in rows if r["id"] == "message-counter").items()
    gone = jan(data_folder, "extensions", "uninstall", "message-counter", input="")
    assert gone.returncode == 0, gone.stderr
    assert not (data_folder / "extensions" / "message-counter-0.1.0").exists()


def test_uninstalling_a_hand_written_folder_needs_yes(data_folder):
    assert jan(data_folder, "extensions", "new", "mine").returncode == 0
    refused = jan(data_folder, "extensions", "uninstall", "mine", input="")
    assert refused.returncode == 1 and "--yes" in refused.stderr
    assert (data_folder / "extensions" / "mine" / "main.py").is_file()
    done = jan(data_folder, "extensions", "uninstall", "mine", "--yes")
    assert done.returncode == 0 and not (data_folder / "extensions" / "mine").exists()


def test_disabling_a_core_extension_warns_what_stops(data_folder):
    done = jan(data_folder, "extensions", "disable", "threads")
    assert done.returncode == 0
    assert "core (bundled) extension" in done.stderr and "'threads' service" in done.stderr
    assert "/v1/threads" in done.stderr
    quiet = jan(data_folder, "extensions", "enable", "threads")
    assert quiet.returncode == 0 and "warning" not in quiet.stderr


LOGGING_EXT = '''
from jan.sdk import Extension


class Talky(Extension):
    def activate(self, ctx):
        ctx.log.info("talky says %s", "VERSION")
'''


@pytest.mark.slow
def test_list_from_the_server_logs_and_a_logged_reload(data_folder):
    folder = data_folder / "extensions" / "talky"
    folder.mkdir(parents=True)
    (folder / "extension.toml").write_text('id = "talky"\nversion = "0.1.0"\n'
                                           'main = "main:Talky"\n'
                                           'activation_events = ["onStartup"]\n')
    (folder / "main.py").write_text(LOGGING_EXT.replace("VERSION", "one"))
    server = start_server(data_folder)
    try:
        listed = jan(data_folder, "extensions", "list")
        assert "as reported by the running server" in listed.stderr
        assert any(line.split()[:1] == ["talky"] and "active" in line
                   for line in listed.stdout.splitlines()), listed.stdout
        logs = jan(data_folder, "extensions", "logs", "talky")
        assert "talky says one" in logs.stdout, logs.stderr

        (folder / "main.py").write_text(LOGGING_EXT.replace("VERSION", "two"))
        log_file = data_folder / "logs" / "extensions" / "talky.log"
        deadline = time.monotonic() + 60
        while "reloaded" not in log_file.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        text = jan(data_folder, "extensions", "logs", "talky").stdout
        assert "talky says two" in text and "extension talky reloaded" in text
        assert "extension talky reloaded" in server.log()
    finally:
        server.stop()
