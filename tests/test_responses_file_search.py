"""``file_search`` in ``/v1/responses`` through the official client (strict validation): the
server searches the vector stores with the files service (as assistant runs do), shows a
``file_search_call`` item (with results when included), puts the passage in the model's context
and cites the file on the answer."""

from __future__ import annotations

import asyncio
import json

import openai
import pytest
from conftest import asgi_client
from files_fixtures import FACT_MD, markdown_doc
from openai.types.responses import ResponseStreamEvent
from pydantic import TypeAdapter
from sandbox_fixtures import MODEL, client_for, write_model

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning")]
QUESTION = "What is Project Heron's launch code?"


@pytest.fixture
async def rag(make_host, data_folder, smollm_path):
    write_model(data_folder, smollm_path)
    settings = {"sandbox": {"autostart": False},
                "extensions": {"files": {"embedding_model": MODEL}}}
    async with make_host(settings=settings) as jan, asgi_client(jan) as http:
        client = client_for(http)
        md = (await client.files.create(file=("handbook.md", markdown_doc()),
                                        purpose="assistants")).id
        vs = await client.vector_stores.create(name="handbook", file_ids=[md])
        for _ in range(1200):
            if (await client.vector_stores.retrieve(vs.id)).status != "in_progress":
                break
            await asyncio.sleep(0.1)
        yield client, http, md, vs.id


async def test_file_search_shows_results_and_cites_the_file(rag):
    client, http, md, vs_id = rag
    tool = {"type": "file_search", "vector_store_ids": [vs_id], "max_num_results": 2}
    r = await client.responses.create(model=MODEL, input=QUESTION, tools=[tool],
                                      include=["file_search_call.results"],
                                      max_output_tokens=24)
    assert r.status in ("completed", "incomplete")
    search, answer = r.output
    assert search.type == "file_search_call" and search.status == "completed"
    assert search.queries == [QUESTION]
    assert search.results and FACT_MD in search.results[0].text  # the planted fact ranks first
    assert search.results[0].file_id == md and search.results[0].filename == "handbook.md"
    text = answer.content[0]
    cites = [a for a in text.annotations if a.type == "file_citation"]
    assert [(c.file_id, c.filename) for c in cites] == [(md, "handbook.md")]
    assert cites[0].index == len(text.text)
    assert r.tools[0].type == "file_search"

    # Streamed, without include: no results on the item, the same events OpenAI sends.
    events = []
    async with http.stream("POST", "/v1/responses", json={
            "model": MODEL, "input": QUESTION, "tools": [tool], "stream": True,
            "max_output_tokens": 16}) as resp:
        async for line in resp.aiter_lines():
            if line.startswith("data: "):
                events.append(TypeAdapter(ResponseStreamEvent).validate_python(
                    json.loads(line[6:])))
    kinds = [e.type for e in events]
    assert kinds[2:7] == ["response.output_item.added", "response.file_search_call.in_progress",
                          "response.file_search_call.searching",
                          "response.file_search_call.completed", "response.output_item.done"]
    assert "response.output_text.annotation.added" in kinds
    final = events[-1].response
    assert final.output[0].results is None
    assert final.output[1].content[0].annotations[0].file_id == md


async def test_unknown_vector_store_is_a_404(rag):
    client, _, _, _ = rag
    with pytest.raises(openai.NotFoundError) as err:
        await client.responses.create(model=MODEL, input=QUESTION, tools=[
            {"type": "file_search", "vector_store_ids": ["vs_missing"]}])
    assert "vs_missing" in str(err.value)
