"""``/v1/files`` and the parts of ``/v1/vector_stores`` that need no model, through the official
client with strict validation; text extraction and chunking on documents made here."""

from __future__ import annotations

import json

import openai
import pytest
from conftest import asgi_client
from files_fixtures import corrupt_pdf, html_page, markdown_doc, pdf_doc
from threads_fixtures import load_module


@pytest.fixture
async def api(make_host):
    async with make_host(settings={"extensions": {"files": {"max_file_bytes": 4096}}}) as jan, \
            asgi_client(jan) as http:
        client = openai.AsyncOpenAI(base_url="http://test/v1", api_key="local", http_client=http,
                                    _strict_response_validation=True, max_retries=0)
        yield client, http, jan


async def test_upload_list_retrieve_content_delete(api, data_folder):
    client, http, _ = api
    a = await client.files.create(file=("notes.md", markdown_doc()), purpose="assistants")
    b = await client.files.create(file=("page.html", html_page()), purpose="user_data")
    assert (a.object, a.filename, a.purpose, a.status) == ("file", "notes.md", "assistants",
                                                          "processed")
    assert a.bytes == len(markdown_doc())
    # Plain files: the bytes as uploaded beside a JSON sidecar.
    folder = data_folder / "files" / a.id
    assert (folder / "notes.md").read_bytes() == markdown_doc()
    assert json.loads((folder / "file.json").read_text())["id"] == a.id

    listed = await client.files.list()
    assert [f.id for f in listed.data] == [b.id, a.id]
    assert [f.id for f in (await client.files.list(purpose="assistants")).data] == [a.id]
    first = await client.files.list(limit=1, order="asc")
    assert [f.id for f in first.data] == [a.id] and first.has_more
    after = await client.files.list(limit=1, order="asc", after=a.id)
    assert [f.id for f in after.data] == [b.id]

    assert (await client.files.retrieve(b.id)).filename == "page.html"
    assert (await client.files.content(a.id)).content == markdown_doc()

    gone = await client.files.delete(a.id)
    assert (gone.id, gone.deleted) == (a.id, True)
    assert not folder.exists()
    with pytest.raises(openai.NotFoundError):
        await client.files.retrieve(a.id)
    with pytest.raises(openai.NotFoundError):
        await client.files.content(a.id)
    assert [f.id for f in (await client.files.list()).data] == [b.id]


async def test_upload_errors_are_clear(api):
    client, http, _ = api
    with pytest.raises(openai.BadRequestError) as err:
        await client.files.create(file=("big.txt", b"x" * 5000), purpose="assistants")
    assert "too large" in err.value.message and err.value.param == "file"
    with pytest.raises(openai.BadRequestError) as err:
        await client.files.create(file=("a.txt", b"hi"), purpose="nonsense")  # type: ignore[arg-type]
    assert err.value.param == "purpose"
    with pytest.raises(openai.BadRequestError) as err:
        await client.files.create(file=("empty.txt", b""), purpose="assistants")
    assert "empty" in err.value.message
    r = await http.post("/v1/files", files={"file": ("a.txt", b"hi")})
    assert r.status_code == 400 and r.json()["error"]["param"] == "purpose"
    r = await http.post("/v1/files", json={"purpose": "assistants"})
    assert r.status_code == 400 and "multipart" in r.json()["error"]["message"]
    for bad in ("../../etc/passwd", "file_x", "nope"):
        r = await http.get(f"/v1/files/{bad}")
        assert r.status_code == 404 and r.json()["error"]["type"] == "invalid_request_error"
    r = await http.get("/v1/files", params={"limit": 0})
    assert r.status_code == 400 and r.json()["error"]["param"] == "limit"


async def test_hostile_file_name_stays_inside_its_folder(api, data_folder):
    client, _, _ = api
    f = await client.files.create(file=("../../../evil.txt", b"hello"), purpose="assistants")
    assert f.filename == "evil.txt"
    assert (data_folder / "files" / f.id / "evil.txt").read_bytes() == b"hello"
    assert not (data_folder.parent / "evil.txt").exists()
    r = await client.files.with_raw_response.content(f.id)
    assert "evil.txt" in r.headers["content-disposition"]
    # A file named like the sidecar cannot overwrite it.
    twin = await client.files.create(file=("file.json", b'{"not": "a sidecar"}'),
                                     purpose="assistants")
    assert twin.filename == "file.json"
    assert (await client.files.content(twin.id)).content == b'{"not": "a sidecar"}'
    assert (await client.files.retrieve(twin.id)).id == twin.id


async def test_vector_store_validation(api):
    client, http, _ = api
    with pytest.raises(openai.NotFoundError):
        await client.vector_stores.create(name="x", file_ids=["file_01JNOPENOPENOPENOPENOPENOP"])
    vs = await client.vector_stores.create(name="empty", metadata={"k": "v"})
    assert (vs.status, vs.file_counts.total, vs.metadata) == ("completed", 0, {"k": "v"})
    assert [s.id for s in (await client.vector_stores.list()).data] == [vs.id]
    for body, param in (({"query": ""}, "query"), ({"query": "x", "max_num_results": 0},
                        "max_num_results"), ({"query": "x", "filters": {"type": "zz"}},
                                             "filters")):
        r = await http.post(f"/v1/vector_stores/{vs.id}/search", json=body)
        assert r.status_code == 400 and r.json()["error"]["param"] == param, r.text
    page = await client.vector_stores.search(vs.id, query="anything")
    assert page.data == []
    with pytest.raises(openai.BadRequestError):
        await client.vector_stores.files.create(
            vs.id, file_id="file_01JNOPENOPENOPENOPENOPENOP",
            chunking_strategy={"type": "static", "static": {"max_chunk_size_tokens": 50,
                                                            "chunk_overlap_tokens": 10}})
    renamed = await client.vector_stores.update(vs.id, name="renamed")
    assert renamed.name == "renamed"
    assert (await client.vector_stores.delete(vs.id)).deleted
    with pytest.raises(openai.NotFoundError):
        await client.vector_stores.retrieve(vs.id)


async def test_health_counts_files(make_host):
    async with make_host() as jan, asgi_client(jan) as http:
        await http.post("/v1/files", files={"file": ("a.txt", b"hi")},
                        data={"purpose": "assistants"})
        health = (await http.get("/health")).json()
    assert health["files"]["files"] == 1 and health["files"]["vector_stores"] == 0


async def test_file_events(make_host):
    async with make_host() as jan, asgi_client(jan) as http:
        seen: list[str] = []
        jan.host.bus.on("file.*", lambda topic, data: seen.append(topic))
        r = await http.post("/v1/files", files={"file": ("a.txt", b"hi")},
                            data={"purpose": "assistants"})
        await http.delete(f"/v1/files/{r.json()['id']}")
    assert seen == ["file.created", "file.deleted"]


@pytest.mark.parametrize("name,make,expect", [
    ("doc.pdf", lambda: pdf_doc(["Page one talks about apples.", "Page two about pears."]),
     ["apples", "pears"]),
    ("notes.md", markdown_doc, ["Bluebird", "Gardening"]),
    ("page.html", html_page, ["lighthouse", "Harbour"]),
])
def test_extract_sections(name, make, expect):
    extract = _ext("extract").extract
    sections = extract(name, make())
    text = "\n".join(sections)
    for word in expect:
        assert word in text
    assert "<script" not in text and "alert(" not in text
    if name == "doc.pdf":
        assert len(sections) == 2  # one section per page


def test_corrupt_pdf_and_binary_fail_clearly():
    mod = _ext("extract")
    with pytest.raises(mod.ExtractError) as err:
        mod.extract("bad.pdf", corrupt_pdf())
    assert "PDF" in err.value.message
    with pytest.raises(mod.ExtractError) as err:
        mod.extract("blob.bin", b"\x00\x01\x02")
    assert err.value.code == "unsupported_file"


def test_chunks_respect_structure_and_overlap():
    chunking = _ext("chunking")
    paras = [f"Paragraph {i} " + "word " * 60 + "end." for i in range(10)]
    chunks = chunking.chunk(["\n\n".join(paras)], max_tokens=150, overlap=70)
    assert len(chunks) > 3
    assert all(chunking.count_tokens(c) <= 150 for c in chunks)
    for a, b in zip(chunks, chunks[1:], strict=False):  # each chunk starts with the last one's end
        assert a.split("\n\n")[-1] == b.split("\n\n")[0]
    # Headings (sections) start new chunks once a chunk is big enough.
    md = _ext("extract").extract("x.md", markdown_doc())
    pieces = chunking.chunk(md, max_tokens=100, overlap=0)
    assert any(p.startswith("# Gardening") or p.startswith("## Gardening") for p in pieces)
    with pytest.raises(ValueError):
        chunking.chunk(["x"], max_tokens=100, overlap=80)


def _ext(module: str):
    return load_module("files", module)


def test_cli_add_list_rm(data_folder, tmp_path):
    import subprocess
    import sys

    def jan(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "jan.host.cli", *args, "--data-folder",
                               str(data_folder)], capture_output=True, text=True, timeout=120)

    doc = tmp_path / "notes.md"
    doc.write_bytes(markdown_doc())
    added = jan("files", "add", str(doc))
    assert added.returncode == 0, added.stderr
    file_id = added.stdout.split("\t")[0]
    assert (data_folder / "files" / file_id / "notes.md").read_bytes() == markdown_doc()
    listed = jan("files", "list")
    assert file_id in listed.stdout and "notes.md" in listed.stdout
    assert jan("files", "rm", file_id).returncode == 0
    assert not (data_folder / "files" / file_id).exists()
    missing = jan("files", "rm", file_id)
    assert missing.returncode == 1 and "No file found" in missing.stderr
    assert "Traceback" not in missing.stderr
