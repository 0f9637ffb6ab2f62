"""The models registry over real folders: Jan's formats, load specs, drop-in import, import,
deletion and the default model. Fast: tiny GGUF files written by the test, no engine."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import time
from pathlib import Path

import pytest
from models_fixtures import big_gguf, gguf_bytes, models_ext, write_gguf

from jan.host.events import EventBus
from jan.sdk import InvalidRequest, NotFound
from jan.sdk.storage import Folder, UnsafePath

ext = models_ext()


@pytest.fixture
async def make_registry(data_folder):
    tasks: list[asyncio.Task] = []

    def factory(settings=None, host_settings=None):
        bus, seen = EventBus(), []

        async def record(topic, data):
            seen.append((topic, data))

        bus.on("model.*", record)
        reg = ext.registry.ModelsRegistry(
            Folder(data_folder), events=bus, host_settings=host_settings or {},
            settings={"settle_seconds": 0.2, **(settings or {})},
            spawn=lambda coro: tasks.append(asyncio.get_running_loop().create_task(coro))
            or tasks[-1])
        reg.seen = seen
        return reg

    yield factory
    for task in tasks:
        task.cancel()


def write_json(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


async def until(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def visible(models: Path) -> list[str]:
    return sorted(p.name for p in models.iterdir())


async def test_reads_jan_formats_and_skips_corrupt_files(make_registry, data_folder, caplog):
    models = data_folder / "models"
    write_gguf(models / "zephyr-folder" / "z.gguf")
    write_json(models / "zephyr-folder" / "model.json", {
        "id": "zephyr-7b", "sources": [{"filename": "z.gguf", "url": "https://x/z.gguf"}],
        "engine_parameters": {"ctx_len": 1024, "ngl": 100},
        "model_parameters": {"stop": ["<end>"], "temperature": 0.1}, "version": 1})
    write_json(models / "legacy" / "model.json",
               {"source_url": "https://example.com/files/legacy-7b.Q4.gguf", "name": "Legacy"})
    write_json(models / "broken" / "model.json", "{not json")
    write_json(models / "wrongtype" / "model.json", [1, 2])
    write_json(models / "org-tiny" / "model.json", {"id": "TheBloke/tiny"})
    write_json(models / ".trash" / "model.json", {"id": "hidden"})
    reg = make_registry()
    with caplog.at_level(logging.WARNING):
        entries = await reg.list()
    assert [e.id for e in entries] == ["TheBloke/tiny", "legacy", "zephyr-7b"]
    zephyr = await reg.get("zephyr-7b")
    assert zephyr.downloaded and zephyr.binary == str(models / "zephyr-folder" / "z.gguf")
    assert zephyr.settings.ctx_len == 1024 and zephyr.settings.ngl == 100
    assert zephyr.parameters.stop == ["<end>"] and zephyr.version == "1"
    assert zephyr.created  # defaults to the file's time
    legacy = await reg.get("legacy")
    assert not legacy.downloaded  # a catalogue entry: model.json without its binary
    assert legacy.sources[0].filename == "legacy-7b.Q4.gguf"
    assert (await reg.get("TheBloke/tiny")).id == "TheBloke/tiny"
    assert "models/broken/model.json" in caplog.text and "models/wrongtype" in caplog.text
    with pytest.raises(NotFound) as err:
        await reg.get("hidden")
    assert err.value.code == "model_not_found" and err.value.param == "model"


async def test_edits_are_picked_up_on_rescan(make_registry, data_folder):
    manifest = write_json(data_folder / "models" / "m" / "model.json", {"name": "Before"})
    reg = make_registry()
    assert (await reg.get("m")).name == "Before"
    manifest.write_text(json.dumps({"name": "After, a longer name"}))
    await reg.rescan()
    assert (await reg.get("m")).name == "After, a longer name"


async def test_load_spec_merges_engine_model_and_overrides(make_registry, data_folder):
    models = data_folder / "models"
    write_gguf(models / "a" / "a.gguf", context_length=32768, chat_template="TEMPLATE-A")
    write_json(models / "a" / "model.json", {"sources": [{"filename": "a.gguf"}],
                                             "settings": {"ctx_len": 2048, "embedding": True}})
    reg = make_registry()
    entry = await reg.get("a")
    spec = reg.load_spec(entry)
    # Nothing configured: n_parallel 4, template and stop token from the GGUF itself.
    assert spec.ctx_len == 2048 and spec.n_parallel == 4 and spec.embedding is True
    assert spec.chat_template == "TEMPLATE-A" and spec.stop == ["</s>"]
    assert spec.path == str(models / "a" / "a.gguf") and spec.model_id == "a"
    write_json(data_folder / "engines" / "llama-cpp.json",
               {"ctx_len": 512, "ngl": 7, "cpu_threads": 3, "n_parallel": 2, "cont_batching": 1})
    spec = reg.load_spec(entry, {"cpu_threads": 5, "stop": "###"})
    assert (spec.ctx_len, spec.ngl, spec.cpu_threads, spec.n_parallel) == (2048, 7, 5, 2)
    assert spec.stop == ["###"]
    write_json(data_folder / "engines" / "llama-cpp.json", {"settings": {"ngl": 9}})
    assert reg.load_spec(entry).ngl == 9
    with pytest.raises(InvalidRequest) as err:
        reg.load_spec(entry, {"ctx_len": "lots"})
    assert "ctx_len" in err.value.message


async def test_load_spec_defaults_context_and_refuses_missing_binary(make_registry, data_folder):
    models = data_folder / "models"
    write_gguf(models / "big" / "b.gguf", context_length=131072)
    write_json(models / "ghost" / "model.json", {"sources": [{"filename": "g.gguf"}]})
    reg = make_registry()
    assert reg.load_spec(await reg.get("big")).ctx_len == 4096  # a sane default, not 128k
    with pytest.raises(InvalidRequest) as err:
        reg.load_spec(await reg.get("ghost"))
    assert err.value.code == "model_not_downloaded" and err.value.param == "model"


async def test_drop_in_is_moved_into_its_own_folder(make_registry, data_folder):
    models = data_folder / "models"
    write_gguf(models / "My_Model.Q4.gguf", context_length=32768, chat_template="T")
    reg = make_registry()
    result = await reg.rescan()
    assert result.imported == ["my-model.q4"]
    assert visible(models) == ["my-model.q4"]
    folder = models / "my-model.q4"
    assert sorted(p.name for p in folder.iterdir()) == ["My_Model.Q4.gguf", "model.json"]
    data = json.loads((folder / "model.json").read_text())
    assert data["id"] == "my-model.q4" and data["settings"]["ctx_len"] == 4096
    assert data["metadata"]["context_length"] == 32768  # the true value is kept
    assert data["metadata"]["architecture"] == "llama" and data["metadata"]["chat_template"] == "T"
    assert data["metadata"]["size"] == (folder / "My_Model.Q4.gguf").stat().st_size
    assert data["parameters"]["stop"] == ["</s>"]
    await until(lambda: ("model.added", {"id": "my-model.q4", "downloaded": True}) in reg.seen)
    # The same name again gets the next free id.
    write_gguf(models / "My_Model.Q4.gguf")
    assert (await reg.rescan()).imported == ["my-model.q4-1"]
    assert (await reg.get("my-model.q4-1")).downloaded


async def test_half_written_drop_in_waits_until_complete(make_registry, data_folder):
    models = data_folder / "models"
    src = big_gguf(data_folder / "src.gguf", megabytes=2)
    data = src.read_bytes()
    target = models / "growing.gguf"
    models.mkdir(exist_ok=True)
    target.write_bytes(data[: len(data) // 2])
    reg = make_registry()
    result = await reg.rescan()
    assert result.pending and not result.imported and target.exists()
    assert visible(models) == ["growing.gguf"]
    with target.open("ab") as f:
        f.write(data[len(data) // 2:])
    # No explicit rescan: the retry scheduled for the pending file imports it.
    await until(lambda: any(t == "model.added" for t, _ in reg.seen))
    assert (await reg.get("growing")).downloaded
    assert (models / "growing" / "growing.gguf").read_bytes() == data


async def test_partial_and_hidden_files_are_left_alone(make_registry, data_folder):
    models = data_folder / "models"
    for name in ("a.gguf.download", "b.gguf.part", "c.gguf.tmp", ".hidden.gguf"):
        write_gguf(models / name)
    reg = make_registry()
    result = await reg.rescan()
    assert not result.imported and await reg.list() == []
    assert visible(models) == [".hidden.gguf", "a.gguf.download", "b.gguf.part", "c.gguf.tmp"]


async def test_non_gguf_drop_in_is_reported_and_not_moved(make_registry, data_folder, caplog):
    models = data_folder / "models"
    bad = write_json(models / "notes.gguf", "just some text that is long enough to read" * 2)
    old = time.time() - 3600
    os.utime(bad, (old, old))
    reg = make_registry()
    with caplog.at_level(logging.ERROR):
        await reg.rescan()
    assert "notes.gguf" in caplog.text and "not a GGUF file" in caplog.text
    assert visible(models) == ["notes.gguf"]  # nothing moved, nothing staged left behind
    caplog.clear()
    with caplog.at_level(logging.ERROR):
        await reg.rescan()
    assert "notes.gguf" not in caplog.text  # reported once, not on every scan


async def test_folder_with_gguf_but_no_model_json_is_adopted(make_registry, data_folder):
    write_gguf(data_folder / "models" / "hand-made" / "weights.gguf", context_length=1024)
    reg = make_registry()
    entry = await reg.get("hand-made")
    assert entry.downloaded and entry.settings.ctx_len == 1024
    assert (data_folder / "models" / "hand-made" / "model.json").is_file()


async def test_removed_folder_disappears_with_an_event(make_registry, data_folder):
    write_gguf(data_folder / "models" / "gone" / "g.gguf")
    reg = make_registry()
    assert (await reg.get("gone")).downloaded
    shutil.rmtree(data_folder / "models" / "gone")
    result = await reg.rescan()
    assert result.removed == ["gone"]
    await until(lambda: ("model.removed", {"id": "gone"}) in reg.seen)
    with pytest.raises(NotFound):
        await reg.get("gone")


async def test_import_copy_link_clash_and_delete(make_registry, data_folder, tmp_path):
    src = write_gguf(tmp_path / "elsewhere" / "Shared-Model.gguf")
    reg = make_registry()
    copied = await reg.import_path(src)
    again = await reg.import_path(src)
    linked = await reg.import_path(src, link=True, model_id="shared")
    assert (copied.id, again.id, linked.id) == ("shared-model", "shared-model-1", "shared")
    assert copied.binary == str(data_folder / "models" / "shared-model" / "Shared-Model.gguf")
    assert linked.binary == str(src.resolve())
    assert linked.settings.llama_model_path == str(src.resolve())
    assert sorted(p.name for p in (data_folder / "models" / "shared").iterdir()) == ["model.json"]
    await reg.delete("shared")
    assert src.is_file()  # the linked file is the user's: never deleted
    await reg.delete("shared-model")
    assert visible(data_folder / "models") == ["shared-model-1"]
    assert ("model.removed", {"id": "shared"}) in reg.seen
    with pytest.raises(NotFound):
        await reg.delete("shared")


async def test_failed_imports_leave_nothing_behind(make_registry, data_folder, tmp_path):
    reg = make_registry()
    text = write_json(tmp_path / "readme.gguf", "hello " * 20)
    truncated = tmp_path / "cut.gguf"
    truncated.write_bytes(gguf_bytes()[:-64])
    for path, message in ((text, "not a GGUF file"), (tmp_path / "missing.gguf", "no such file"),
                          (truncated, "incomplete"), (tmp_path, "is a folder")):
        with pytest.raises(ext.importer.ImportFailed, match=message):
            await reg.import_path(path)
    with pytest.raises(UnsafePath):
        await reg.import_path(write_gguf(tmp_path / "ok.gguf"), model_id="../evil")
    assert visible(data_folder / "models") == []


async def test_default_model_choice(make_registry, data_folder):
    models = data_folder / "models"
    reg = make_registry()
    assert await reg.default_model() is None
    write_json(models / "000-catalogue" / "model.json", {"sources": [{"filename": "x.gguf"}]})
    write_gguf(models / "zzz" / "z.gguf")
    write_gguf(models / "aaa" / "a.gguf")
    await reg.rescan()
    assert await reg.default_model() == "aaa"  # first downloaded
    write_gguf(models / "smollm2-135m-instruct" / "s.gguf")
    await reg.rescan()
    assert await reg.default_model() == "smollm2-135m-instruct"
    configured = make_registry(host_settings={"default_model": "zzz"})
    assert await configured.default_model() == "zzz"
