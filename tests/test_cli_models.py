"""``jan models ps|start|stop|list|import|pull`` as a user runs them, against a real server."""

from __future__ import annotations

import json
import re

import pytest
from cli_fixtures import api, jan
from cli_fixtures import served as served  # noqa: F401 - the module-scoped server fixture
from conftest import free_port


@pytest.mark.slow
def test_start_ps_stop_and_the_loaded_field(served):
    folder, server = served
    with api(server) as http:
        assert http.get("/models/smol-a").json()["loaded"] is False
    started = jan(folder, "models", "start", "smol-a")
    assert started.returncode == 0, started.stderr
    assert "smol-a" in started.stdout and "loaded" in started.stdout

    ps = jan(folder, "models", "ps")
    assert ps.returncode == 0, ps.stderr
    header, *rows = ps.stdout.splitlines()
    assert header.split()[:3] == ["ID", "PID", "MEMORY"]
    assert rows and rows[0].split()[0] == "smol-a"
    as_json = json.loads(jan(folder, "models", "ps", "--json").stdout)
    assert as_json[0]["model_id"] == "smol-a" and as_json[0]["memory_bytes"] > 1_000_000
    with api(server) as http:
        assert http.get("/models/smol-a").json()["loaded"] is True
        listed = {m["id"]: m["loaded"] for m in http.get("/models").json()["data"]}
        assert listed["smol-a"] is True and listed["smol-b"] is False
    listing = jan(folder, "models", "list").stdout
    assert any(line.startswith("smol-a") and " loaded " in line for line in listing.splitlines())

    stopped = jan(folder, "models", "stop", "smol-a")
    assert stopped.returncode == 0 and "stopped" in stopped.stdout
    assert "No model is loaded" in jan(folder, "models", "ps").stdout
    missing = jan(folder, "models", "start", "no-such-model")
    assert missing.returncode == 1 and "no-such-model" in missing.stderr


def test_ps_without_a_server_says_so(data_folder):
    done = jan(data_folder, "models", "ps")
    assert done.returncode == 1 and "no jan server is running" in done.stderr


def test_importing_the_same_file_twice_says_so(data_folder, smollm_path):
    first = jan(data_folder, "models", "import", str(smollm_path), "--link", "--id", "smol")
    assert first.returncode == 0, first.stderr
    before = sorted(p.name for p in (data_folder / "models").iterdir())
    again = jan(data_folder, "models", "import", str(smollm_path))
    assert again.returncode == 0, again.stderr
    # (the bundled default model links the same file, so either id is the right answer)
    assert re.search(r"already imported as model '(smol|smollm2-135m-instruct)'", again.stdout)
    assert sorted(p.name for p in (data_folder / "models").iterdir()) == before


def test_offline_pull_says_the_network_is_unreachable(data_folder):
    url = f"http://127.0.0.1:{free_port()}/model.gguf"  # nothing listens: like no network
    done = jan(data_folder, "models", "pull", url)
    assert done.returncode == 1
    assert "network is unreachable" in done.stderr and "jan models import" in done.stderr
    assert "Traceback" not in done.stderr


def test_catalogue_shows_sizes(data_folder):
    done = jan(data_folder, "models", "list", "--catalog")
    assert done.returncode == 0, done.stderr
    row = next(line for line in done.stdout.splitlines()
               if line.startswith("smollm2-360m-instruct"))
    assert "MB" in row
