"""``/v1/models`` through the real host (ASGI) and the official client, and ``jan models ...``
as real subprocesses: the bundled default model, GGUF drop-in, delete, start/stop."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import openai
import pytest
from conftest import asgi_client
from models_fixtures import copy_model, file_server, write_gguf

NO_DEFAULT = {"extensions": {"models": {"import_default_model": False}}}
DEFAULT_ID = "smollm2-135m-instruct"


def official(http) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url="http://test/v1", api_key="local", http_client=http,
                              _strict_response_validation=True, max_retries=0)


async def test_default_model_is_listed_by_reference(openai_client, data_folder, smollm_path):
    models = [m async for m in openai_client.models.list()]
    assert [m.id for m in models] == [DEFAULT_ID]
    model = await openai_client.models.retrieve(DEFAULT_ID)
    assert model.object == "model" and model.owned_by == "you" and model.created > 0
    assert model.model_extra["downloaded"] is True
    folder = data_folder / "models" / DEFAULT_ID
    assert sorted(p.name for p in folder.iterdir()) == ["model.json"]  # referenced, not copied
    data = json.loads((folder / "model.json").read_text())
    assert data["settings"]["llama_model_path"] == str(smollm_path.resolve())
    with pytest.raises(openai.NotFoundError) as err:
        await openai_client.models.retrieve("no-such-model")
    assert err.value.code == "model_not_found" and err.value.body["param"] == "model"


async def test_deleting_the_default_keeps_the_wheel_and_stays_deleted(make_host, smollm_path,
                                                                      data_folder):
    async with make_host() as jan, asgi_client(jan) as http:
        client = official(http)
        deleted = await client.models.delete(DEFAULT_ID)
        assert deleted.id == DEFAULT_ID and deleted.deleted is True
        assert smollm_path.is_file()  # the linked file belongs to the wheel
        assert not (data_folder / "models" / DEFAULT_ID).exists()
        with pytest.raises(openai.NotFoundError):
            await client.models.retrieve(DEFAULT_ID)
        with pytest.raises(openai.NotFoundError):
            await client.models.delete(DEFAULT_ID)
    async with make_host() as jan, asgi_client(jan) as http:
        assert [m.id async for m in official(http).models.list()] == []  # not re-imported


async def test_gguf_dropped_into_models_appears(make_host, smollm_path, data_folder):
    async with make_host(settings=NO_DEFAULT) as jan, asgi_client(jan) as http:
        client = official(http)
        assert [m.id async for m in client.models.list()] == []
        copy_model(smollm_path, data_folder / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf")
        deadline = time.monotonic() + 20
        ids: list[str] = []
        while time.monotonic() < deadline:
            ids = [m.id async for m in client.models.list()]
            if ids:
                break
            await asyncio.sleep(0.2)
        assert ids == ["smollm2-135m-instruct.q4-1"]
        folder = data_folder / "models" / ids[0]
        assert (folder / "SmolLM2-135M-Instruct.Q4_1.gguf").stat().st_size == \
            smollm_path.stat().st_size
        assert not (data_folder / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf").exists()
        model = (await http.get(f"/v1/models/{ids[0]}")).json()
        assert model["metadata"]["context_length"] == 8192
        assert model["settings"]["ctx_len"] == 4096
        assert model["parameters"]["stop"] == ["<|im_end|>"]


async def test_data_changed_event_rescans(make_host, data_folder):
    """The host's watcher announces changes with ``data.changed``; with the periodic refresh
    turned off, that event alone must bring a new model in."""
    quiet = {"extensions": {"models": {"import_default_model": False, "refresh_seconds": 1e9}}}
    async with make_host(settings=quiet) as host, asgi_client(host) as http:
        assert (await http.get("/v1/models")).json()["data"] == []
        write_gguf(data_folder / "models" / "Fresh.gguf")
        await host.host.bus.emit("data.changed", {"area": "models", "paths": []})
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            ids = [m["id"] for m in (await http.get("/v1/models")).json()["data"]]
            if ids:
                break
            await asyncio.sleep(0.05)
        assert ids == ["fresh"]


async def test_catalogue_entries_and_slash_ids(make_host, data_folder):
    models = data_folder / "models"
    (models / "later").mkdir(parents=True)
    (models / "later" / "model.json").write_text(json.dumps(
        {"name": "Later", "sources": [{"filename": "later.gguf", "url": "https://x/later.gguf"}]}))
    write_gguf(models / "org-tiny" / "tiny.gguf")
    (models / "org-tiny" / "model.json").write_text(json.dumps({"id": "org/tiny"}))
    async with make_host(settings=NO_DEFAULT) as jan, asgi_client(jan) as http:
        listed = (await http.get("/v1/models")).json()
        assert listed["object"] == "list"
        assert {m["id"]: m["downloaded"] for m in listed["data"]} == {"later": False,
                                                                      "org/tiny": True}
        start = await http.post("/v1/models/later/start")
        assert start.status_code == 400
        assert start.json()["error"]["code"] == "model_not_downloaded"
        assert (await http.get("/v1/models/org/tiny")).json()["id"] == "org/tiny"
        gone = await http.delete("/v1/models/org/tiny")
        assert gone.json() == {"id": "org/tiny", "object": "model", "deleted": True}
        assert not (models / "org-tiny").exists()
        bad = await http.post("/v1/models/later/start", json={"ctx_len": "big"})
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "ctx_len"


@pytest.mark.slow
async def test_start_and_stop_run_the_real_model(make_host, smollm_path):
    async with make_host() as jan, asgi_client(jan) as http:
        started = await http.post(f"/v1/models/{DEFAULT_ID}/start", json={"ctx_len": 512})
        assert started.status_code == 200, started.text
        assert started.json()["status"] == "running"
        assert started.json()["loaded"]["ctx_len"] == 512
        health = (await http.get("/health")).json()
        assert DEFAULT_ID in [m["model_id"] for m in health["models"]]
        stopped = await http.post(f"/v1/models/{DEFAULT_ID}/stop")
        assert stopped.json() == {"id": DEFAULT_ID, "object": "model", "status": "stopped",
                                  "stopped": True}
        health = (await http.get("/health")).json()
        assert DEFAULT_ID not in [m["model_id"] for m in health["models"]]
        # Deleting a running model stops its runner first; the wheel's file stays.
        assert (await http.post(f"/v1/models/{DEFAULT_ID}/start")).status_code == 200
        assert (await http.delete(f"/v1/models/{DEFAULT_ID}")).json()["deleted"] is True
        health = (await http.get("/health")).json()
        assert health["models"] == [] and smollm_path.is_file()


# ----------------------------------------------------------------------------- CLI
def jan(data: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "JAN_DATA_FOLDER": str(data)}
    (data / "settings.json").write_text(json.dumps(NO_DEFAULT))
    return subprocess.run([sys.executable, "-m", "jan.host.cli", *args], capture_output=True,
                          text=True, env=env, timeout=120)


def test_cli_import_list_link_and_rm(data_folder, tmp_path):
    src = write_gguf(tmp_path / "outside" / "Tiny-Chat.gguf", context_length=1024)
    out = jan(data_folder, "models", "import", str(src))
    assert out.returncode == 0, out.stderr
    assert "as model 'tiny-chat'" in out.stdout
    out = jan(data_folder, "models", "import", str(src), "--link", "--id", "tiny-linked")
    assert out.returncode == 0 and "tiny-linked" in out.stdout
    listed = jan(data_folder, "models", "list", "--json")
    rows = {m["id"]: m for m in json.loads(listed.stdout)}
    assert rows["tiny-chat"]["downloaded"] and rows["tiny-linked"]["path"] == str(src)
    bad = jan(data_folder, "models", "import", str(tmp_path / "nothing.gguf"))
    assert bad.returncode == 1 and "no such file" in bad.stderr and "Traceback" not in bad.stderr
    out = jan(data_folder, "models", "rm", "tiny-linked", "tiny-chat")
    assert out.returncode == 0 and "linked file was kept" in out.stdout
    assert src.is_file() and sorted(os.listdir(data_folder / "models")) == []
    missing = jan(data_folder, "models", "rm", "tiny-chat")
    assert missing.returncode == 1 and "does not exist" in missing.stderr


def test_cli_pull_shows_progress(data_folder, tmp_path):
    served = tmp_path / "srv"
    write_gguf(served / "Pulled.gguf")
    with file_server(served) as server:
        out = jan(data_folder, "models", "pull", f"{server.url}/Pulled.gguf")
    assert out.returncode == 0, out.stderr
    assert "downloaded model 'pulled'" in out.stdout and "100.0%" in out.stderr
    assert (data_folder / "models" / "pulled" / "Pulled.gguf").is_file()
    catalogue = jan(data_folder, "models", "list", "--catalog")
    assert "qwen2.5-0.5b-instruct" in catalogue.stdout
