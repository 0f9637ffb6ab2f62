"""``jan models pull`` against a real local HTTP server with Range support: resume after an
interruption, size and sha256 checks, and the model appearing only once complete."""

from __future__ import annotations

import hashlib
import json

import pytest
from models_fixtures import big_gguf, copy_model, file_server, models_ext, write_gguf

from jan.sdk import NotFound
from jan.sdk.storage import Folder

ext = models_ext()


@pytest.fixture
def registry(data_folder):
    return ext.registry.ModelsRegistry(Folder(data_folder))


@pytest.fixture
def catalogue(tmp_path, monkeypatch):
    """Point the built-in catalogue at a file of our own (entries served locally)."""
    path = tmp_path / "catalog.json"

    def write(entries):
        path.write_text(json.dumps(entries))
        monkeypatch.setattr(ext.catalog, "CATALOG_FILE", path)
        ext.catalog._load.cache_clear()

    yield write
    ext.catalog._load.cache_clear()


def sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def visible(registry) -> list[str]:
    return sorted(p.name for p in registry.dir.iterdir() if not p.name.startswith("."))


async def test_interrupted_pull_resumes_with_range(registry, catalogue, tmp_path):
    served = tmp_path / "srv"
    src = big_gguf(served / "tiny-chat.Q4.gguf", megabytes=4, context_length=8192)
    with file_server(served) as server:
        catalogue([{"id": "tiny-chat", "name": "Tiny Chat",
                    "sources": [{"filename": "tiny-chat.Q4.gguf",
                                 "url": f"{server.url}/tiny-chat.Q4.gguf",
                                 "size": src.stat().st_size, "sha256": sha(src)}],
                    "settings": {"ctx_len": 2048}, "parameters": {"temperature": 0.5}}])
        server.cut_after = 1_000_000
        with pytest.raises(ext.download.DownloadFailed, match="run the same command again"):
            await ext.pull.pull(registry, "tiny-chat")
        partial = registry.dir / ".pull-tiny-chat" / "tiny-chat.Q4.gguf.download"
        assert partial.stat().st_size == 1_000_000
        assert visible(registry) == [] and await registry.list() == []  # nothing half-made
        progress: list[tuple[int, int | None]] = []
        entry, fetched = await ext.pull.pull(
            registry, "tiny-chat", progress=lambda name: lambda d, t: progress.append((d, t)))
    assert fetched and entry.id == "tiny-chat" and entry.downloaded
    assert server.seen[-1] == ("/tiny-chat.Q4.gguf", "bytes=1000000-")  # resumed, not restarted
    assert progress[0] == (1_000_000, src.stat().st_size)
    assert progress[-1] == (src.stat().st_size, src.stat().st_size)
    binary = registry.dir / "tiny-chat" / "tiny-chat.Q4.gguf"
    assert sha(binary) == sha(src)
    assert visible(registry) == ["tiny-chat"] and not (registry.dir / ".pull-tiny-chat").exists()
    data = json.loads((registry.dir / "tiny-chat" / "model.json").read_text())
    assert data["name"] == "Tiny Chat" and data["settings"]["ctx_len"] == 2048
    assert data["parameters"]["stop"] == ["</s>"] and data["metadata"]["context_length"] == 8192
    again, fetched = await ext.pull.pull(registry, "tiny-chat")
    assert not fetched and again.id == "tiny-chat"


async def test_sha256_mismatch_discards_the_download(registry, catalogue, tmp_path):
    served = tmp_path / "srv"
    write_gguf(served / "m.gguf")
    with file_server(served) as server:
        catalogue([{"id": "m", "sources": [{"filename": "m.gguf", "url": f"{server.url}/m.gguf",
                                            "sha256": "0" * 64}]}])
        with pytest.raises(ext.download.DownloadFailed, match="sha256 mismatch"):
            await ext.pull.pull(registry, "m")
    assert visible(registry) == []
    assert not (registry.dir / ".pull-m" / "m.gguf.download").exists()


async def test_size_mismatch_is_refused(registry, catalogue, tmp_path):
    served = tmp_path / "srv"
    write_gguf(served / "m.gguf")
    with file_server(served) as server:
        catalogue([{"id": "m", "sources": [{"filename": "m.gguf", "url": f"{server.url}/m.gguf",
                                            "size": 12345}]}])
        with pytest.raises(ext.download.DownloadFailed, match="expected 12345"):
            await ext.pull.pull(registry, "m")
    assert visible(registry) == []


async def test_server_without_ranges_restarts_cleanly(registry, tmp_path):
    served = tmp_path / "srv"
    src = big_gguf(served / "norange.gguf", megabytes=2)
    url = None
    with file_server(served, ranges=False) as server:
        url = f"{server.url}/norange.gguf"
        server.cut_after = 300_000
        with pytest.raises(ext.download.DownloadFailed):
            await ext.pull.pull(registry, url)
        entry, _ = await ext.pull.pull(registry, url)
        again, fetched = await ext.pull.pull(registry, url)
    assert entry.id == "norange" and sha(registry.dir / "norange" / "norange.gguf") == sha(src)
    assert entry.sources[0].url == url
    assert again.id == "norange" and not fetched and visible(registry) == ["norange"]


async def test_pull_real_smollm2_by_url(registry, smollm_path, tmp_path):
    served = tmp_path / "srv"
    copy_model(smollm_path, served / "SmolLM2-135M-Instruct.Q4_1.gguf")
    with file_server(served) as server:
        entry, fetched = await ext.pull.pull(
            registry, f"{server.url}/SmolLM2-135M-Instruct.Q4_1.gguf")
    assert fetched and entry.id == "smollm2-135m-instruct.q4-1"
    assert entry.metadata["architecture"] == "llama" and entry.metadata["eos_token"] == "<|im_end|>"
    assert entry.parameters.stop == ["<|im_end|>"]
    spec = registry.load_spec(entry)
    assert spec.ctx_len == 4096 and "<|im_start|>" in spec.chat_template


async def test_catalogue_entry_in_models_folder_is_completed_in_place(registry, tmp_path):
    served = tmp_path / "srv"
    src = write_gguf(served / "w.gguf")
    with file_server(served) as server:
        folder = registry.dir / "mine"
        folder.mkdir()
        (folder / "model.json").write_text(json.dumps({
            "id": "mine", "name": "Mine", "sources": [{"filename": "w.gguf",
                                                       "url": f"{server.url}/w.gguf"}]}))
        assert not (await registry.get("mine")).downloaded
        entry, fetched = await ext.pull.pull(registry, "mine")
    assert fetched and entry.downloaded and entry.name == "Mine"
    assert sha(folder / "w.gguf") == sha(src) and entry.metadata["architecture"] == "llama"


async def test_pull_errors_are_clear(registry, catalogue, tmp_path):
    served = tmp_path / "srv"
    served.mkdir()
    (served / "page.gguf").write_text("<html>Sign in to download</html>" * 4)
    with file_server(served) as server:
        with pytest.raises(ext.download.DownloadFailed, match="HTTP 404"):
            await ext.pull.pull(registry, f"{server.url}/missing.gguf")
        with pytest.raises(ext.importer.ImportFailed, match="not a GGUF file"):
            await ext.pull.pull(registry, f"{server.url}/page.gguf")
    with pytest.raises(NotFound) as err:
        await ext.pull.pull(registry, "no-such-model")
    assert err.value.code == "model_not_found"
    assert visible(registry) == [] and not any(registry.dir.iterdir())


def test_builtin_catalogue_is_well_formed():
    entries = ext.catalog.entries()
    assert len(entries) >= 5 and len({e.id for e in entries}) == len(entries)
    for entry in entries:
        assert entry.sources and entry.sources[0].url.startswith("https://huggingface.co/")
        assert entry.sources[0].filename.endswith(".gguf") and entry.settings.ctx_len
        assert "/resolve/" in entry.sources[0].url
    assert ext.catalog.direct_url("https://huggingface.co/a/b/blob/main/x.gguf") == \
        "https://huggingface.co/a/b/resolve/main/x.gguf"
