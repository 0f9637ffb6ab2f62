"""Retrieval with the real model: vector stores indexed through the ``inference`` service,
hybrid search, and ``file_search`` in assistant runs, through the official client."""

from __future__ import annotations

import asyncio
import json

import openai
import pytest
from conftest import asgi_client
from files_fixtures import (
    FACT_HTML,
    FACT_MD,
    FACT_PDF,
    corrupt_pdf,
    html_page,
    markdown_doc,
    report_pdf,
)
from sandbox_fixtures import MODEL, client_for, write_assistant, write_model

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning")]


@pytest.fixture
async def rag(make_host, data_folder, smollm_path):
    write_model(data_folder, smollm_path)
    settings = {"sandbox": {"autostart": False},
                "extensions": {"files": {"embedding_model": MODEL}}}
    async with make_host(settings=settings) as jan, \
            asgi_client(jan) as http:
        yield client_for(http), http, jan


async def upload(client: openai.AsyncOpenAI, name: str, data: bytes) -> str:
    return (await client.files.create(file=(name, data), purpose="assistants")).id


async def wait_store(client: openai.AsyncOpenAI, vs_id: str) -> None:
    for _ in range(1200):
        vs = await client.vector_stores.retrieve(vs_id)
        if vs.status != "in_progress":
            return
        await asyncio.sleep(0.1)
    raise AssertionError("vector store never finished indexing")


async def wait_for(condition, timeout: float = 10) -> None:
    for _ in range(int(timeout * 20)):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met")


async def test_batch_search_filters_failures_and_deletion(rag):
    client, http, jan = rag
    events: list[tuple[str, str]] = []
    for outcome in ("completed", "failed"):
        jan.host.bus.on(f"vector_store.file.{outcome}",
                        lambda topic, data: events.append((topic, data["id"])))
    pdf = await upload(client, "report.pdf", report_pdf())
    md = await upload(client, "handbook.md", markdown_doc())
    html = await upload(client, "town.html", html_page())
    bad = await upload(client, "broken.pdf", corrupt_pdf())
    vs = await client.vector_stores.create(name="docs")
    batch = await client.vector_stores.file_batches.create_and_poll(
        vs.id, files=[{"file_id": pdf, "attributes": {"kind": "pdf", "pages": 4}},
                      {"file_id": md, "attributes": {"kind": "md"}},
                      {"file_id": html, "attributes": {"kind": "html"}},
                      {"file_id": bad, "attributes": {"kind": "pdf"}}], poll_interval_ms=100,
        chunking_strategy={"type": "static", "static": {"max_chunk_size_tokens": 100,
                                                        "chunk_overlap_tokens": 20}})
    assert batch.status == "completed"
    assert (batch.file_counts.completed, batch.file_counts.failed) == (3, 1)
    broken = await client.vector_stores.files.retrieve(bad, vector_store_id=vs.id)
    assert broken.status == "failed" and broken.last_error is not None
    assert broken.last_error.code == "invalid_file" and "PDF" in broken.last_error.message
    await wait_for(lambda: len(events) == 4)  # handlers run after the emitter returns
    assert sorted(events) == sorted([("vector_store.file.completed", f) for f in (pdf, md, html)]
                                    + [("vector_store.file.failed", bad)])
    store = await client.vector_stores.retrieve(vs.id)
    assert store.status == "completed" and store.usage_bytes > 0
    assert json.loads(store.model_dump_json())["embedding_model"] == MODEL

    # The planted fact ranks first, for a keyword query and for a paraphrase.
    for query, file_id, fact in (
            ("vault 7341 telescope mirror", pdf, FACT_PDF),
            ("Where is the observatory's reserve mirror stored?", pdf, FACT_PDF),
            ("QUILL-58 launch code", md, FACT_MD),
            ("What secret does the night shift of Heron know?", md, FACT_MD),
            ("Who painted the lighthouse, and in which year?", html, FACT_HTML)):
        page = await client.vector_stores.search(vs.id, query=query, max_num_results=3)
        top = page.data[0]
        assert (top.file_id, fact in top.content[0].text) == (file_id, True), (query, page.data)
        assert top.score == max(r.score for r in page.data) and 0 < top.score <= 1
    assert page.data[0].filename == "town.html" and page.data[0].attributes == {"kind": "html"}

    # Attribute filters, the result cap and the score threshold.
    only_md = await client.vector_stores.search(
        vs.id, query="vault 7341 telescope mirror lighthouse",
        filters={"type": "eq", "key": "kind", "value": "md"})
    assert only_md.data and {r.file_id for r in only_md.data} == {md}
    big = await client.vector_stores.search(
        vs.id, query="mirror", filters={"type": "and", "filters": [
            {"type": "eq", "key": "kind", "value": "pdf"}, {"type": "gte", "key": "pages",
                                                           "value": 3}]})
    assert {r.file_id for r in big.data} == {pdf}
    one = await client.vector_stores.search(vs.id, query="garden bread trains", max_num_results=1)
    assert len(one.data) == 1
    full = await client.vector_stores.search(vs.id, query="vault 7341 telescope mirror")
    cut = full.data[0].score
    strict = await client.vector_stores.search(vs.id, query="vault 7341 telescope mirror",
                                               ranking_options={"score_threshold": cut})
    assert strict.data[0].file_id == pdf and len(strict.data) < len(full.data)
    assert all(r.score >= cut for r in strict.data)

    # Deleting a file removes its results everywhere (and the store forgets it).
    assert (await client.files.delete(html)).deleted
    after = await client.vector_stores.search(vs.id, query="lighthouse painted crimson 1887")
    assert html not in {r.file_id for r in after.data}
    listed = await client.vector_stores.files.list(vs.id)
    assert html not in {f.id for f in listed.data}
    health = (await http.get("/health")).json()["files"]
    assert health["files"] == 3 and health["vector_stores"] == 1 and health["failed"] == 1


async def test_assistant_run_with_file_search_cites_the_file(rag, data_folder):
    client, _, _ = rag
    md = await upload(client, "handbook.md", markdown_doc())
    vs = await client.vector_stores.create(name="handbook", file_ids=[md])
    await wait_store(client, vs.id)
    assistant = await client.beta.assistants.create(
        model=MODEL, name="Reader", instructions="Answer from the files.",
        tools=[{"type": "file_search"}],
        tool_resources={"file_search": {"vector_store_ids": [vs.id]}})
    thread = await client.beta.threads.create(
        messages=[{"role": "user", "content": "What is Project Heron's launch code?"}])
    run = await client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=100,
        max_completion_tokens=24)
    assert run.status == "completed", run.last_error
    reply = (await client.beta.threads.messages.list(thread.id, order="desc")).data[0]
    text = reply.content[0].text
    cites = [a for a in text.annotations if a.type == "file_citation"]
    assert cites and cites[0].file_citation.file_id == md
    assert text.value[cites[0].start_index:cites[0].end_index] == cites[0].text
    # The passage put into the answer's context is the one holding the fact.
    assert FACT_MD in json.loads(cites[0].model_dump_json())["file_citation"]["quote"]

    # Jan's own assistant.json "retrieval" tool and a file attached to a thread's message.
    write_assistant(data_folder, "jan-reader", None, name="Jan reader", model=MODEL,
                    tools=[{"type": "retrieval", "enabled": True, "settings": {"top_k": 1}}])
    html = await upload(client, "town.html", html_page())
    thread = await client.beta.threads.create(messages=[{
        "role": "user", "content": "Who painted the lighthouse?",
        "attachments": [{"file_id": html, "tools": [{"type": "file_search"}]}]}])
    run = await client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id="jan-reader", poll_interval_ms=100,
        max_completion_tokens=16)
    assert run.status == "completed", run.last_error
    reply = (await client.beta.threads.messages.list(thread.id, order="desc")).data[0]
    cites = [a for a in reply.content[0].text.annotations if a.type == "file_citation"]
    assert [c.file_citation.file_id for c in cites] == [html]
    # The attachment now lives in the thread's own files/ folder, and is still a file.
    assert (data_folder / "threads" / thread.id / "files" / html / "town.html").is_file()
    assert (await client.files.retrieve(html)).filename == "town.html"


async def test_a_new_embedding_model_reindexes_the_store(make_host, data_folder, smollm_path):
    write_model(data_folder, smollm_path)
    other = data_folder / "models" / "smollm2-b"
    other.mkdir()
    doc = json.loads((data_folder / "models" / MODEL / "model.json").read_text())
    (other / "model.json").write_text(json.dumps({**doc, "id": "smollm2-b"}))
    settings = {"sandbox": {"autostart": False},
                "extensions": {"files": {"embedding_model": MODEL}}}
    async with make_host(settings=settings) as jan, asgi_client(jan) as http:
        client = client_for(http)
        md = await upload(client, "handbook.md", markdown_doc())
        vs = await client.vector_stores.create(name="h", file_ids=[md])
        await wait_store(client, vs.id)
    settings["extensions"]["files"]["embedding_model"] = "smollm2-b"
    async with make_host(settings=settings) as jan, asgi_client(jan) as http:
        client = client_for(http)
        # Keyword ranking answers at once; the vectors are rebuilt with the new model.
        page = await client.vector_stores.search(vs.id, query="QUILL-58 launch code")
        assert page.data[0].file_id == md
        for _ in range(1200):
            store = json.loads((await client.vector_stores.retrieve(vs.id)).model_dump_json())
            if store["embedding_model"] == "smollm2-b" and store["status"] == "completed":
                break
            await asyncio.sleep(0.1)
        assert store["embedding_model"] == "smollm2-b" and store["status"] == "completed"
        page = await client.vector_stores.search(
            vs.id, query="What secret does the night shift of Heron know?")
        assert page.data[0].file_id == md and FACT_MD in page.data[0].content[0].text
