"""``jan mcp add|list|remove`` edit mcp_config.json; ``jan tools list|call`` reach the server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cli_fixtures import JAN, jan

pytest.importorskip("mcp")
pytestmark = pytest.mark.slow  # jan subprocesses starting a real MCP server

SERVER = Path(__file__).parent / "fixtures" / "mcp_test_server.py"


def test_mcp_add_list_remove_and_tools_call(data_folder: Path) -> None:
    # Global options first: everything after `--` is the server's command line.
    added = subprocess.run([*JAN, "--data-folder", str(data_folder), "mcp", "add",
                            "--env", "TOKEN=env:NOPE", "demo", "--", sys.executable, str(SERVER)],
                           capture_output=True, text=True, timeout=60)
    assert added.returncode == 0, added.stderr
    config = json.loads((data_folder / "mcp_config.json").read_text())
    assert config["mcpServers"]["demo"] == {"command": sys.executable, "args": [str(SERVER)],
                                            "env": {"TOKEN": "env:NOPE"}}
    listed = jan(data_folder, "mcp", "list")
    assert listed.returncode == 0 and "demo" in listed.stdout and str(SERVER) in listed.stdout

    tools = jan(data_folder, "tools", "list")
    assert tools.returncode == 0, tools.stderr
    assert "demo__echo\tmcp:demo\task\t" in tools.stdout
    called = jan(data_folder, "tools", "call", "demo__add", '{"a": 1, "b": 2}')
    assert (called.returncode, called.stdout.strip()) == (0, "3"), called.stderr
    bad = jan(data_folder, "tools", "call", "demo__add", "not json")
    assert bad.returncode == 2 and "not JSON" in bad.stderr
    unknown = jan(data_folder, "tools", "call", "nope", "{}")
    assert unknown.returncode == 1 and "no tool named" in unknown.stdout

    removed = jan(data_folder, "mcp", "remove", "demo")
    assert removed.returncode == 0
    assert json.loads((data_folder / "mcp_config.json").read_text())["mcpServers"] == {}
    assert jan(data_folder, "mcp", "remove", "demo").returncode == 1
