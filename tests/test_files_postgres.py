"""Files and vector stores on PostgreSQL: two instances (two data folders, one database) share
uploads, stores and search results, through the official client.

Each instance keeps its own usearch graphs; a search on one must see what the other indexed or
deleted without a restart, ranking a new chunk first *by vector as well as by keyword* (fused
score 1.0), which a graph that missed the other instance's change could not do.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import openai
import pg_fixtures
import psycopg
import pytest
from conftest import asgi_client
from files_fixtures import FACT_MD, html_page, markdown_doc
from sandbox_fixtures import MODEL, client_for, jan_cli_env, write_model
from waiting import eventually

pg_dsn = pg_fixtures.pg_dsn
pg_server = pg_fixtures.pg_server
own_pg_server = pg_fixtures.own_pg_server

pytestmark = [pytest.mark.postgres, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

NEW_FACT = "The ferry to Marrow Island leaves from pier twelve at dawn on Thursdays."


def pg_files(dsn: str, **files: Any) -> dict[str, Any]:
    return {"sandbox": {"autostart": False},
            "extensions": {"files": {"backend": "postgresql", "dsn": dsn, **files}}}


@pytest.fixture
def two(make_host, data_folder: Path, tmp_path: Path, pg_dsn: str, monkeypatch):
    """``async with two(model=None, **files_settings) as (a, b):`` → (client, jan) pairs."""
    monkeypatch.delenv("JAN_POSTGRES_DSN", raising=False)

    @contextlib.asynccontextmanager
    async def start(model: Path | None = None, **files: Any) -> AsyncIterator[Any]:
        folder_b = tmp_path / "b"
        folder_b.mkdir()
        if model is not None:
            for folder in (data_folder, folder_b):
                write_model(folder, model)
            files["embedding_model"] = MODEL
        settings = pg_files(pg_dsn, **files)
        async with make_host(settings=settings) as a, make_host(folder_b, settings=settings) \
                as b, asgi_client(a) as http_a, asgi_client(b) as http_b:
            yield (client_for(http_a), a), (client_for(http_b), b)

    return start


def retrieval(jan: Any) -> Any:
    return jan.host.records["files"].exports


async def test_files_are_shared_between_instances(two, data_folder):
    async with two(max_file_bytes=4096) as ((a, _), (b, _)):
        up = await a.files.create(file=("notes.md", markdown_doc()), purpose="assistants")
        other = await b.files.create(file=("page.html", html_page()), purpose="user_data")
        assert not (data_folder / "files").exists()  # the bytes are in the database
        for client in (a, b):
            assert [f.id for f in (await client.files.list()).data] == [other.id, up.id]
            assert (await client.files.retrieve(up.id)).filename == "notes.md"
            assert (await client.files.content(up.id)).content == markdown_doc()
        assert [f.id for f in (await b.files.list(purpose="user_data")).data] == [other.id]
        with pytest.raises(openai.BadRequestError) as err:
            await b.files.create(file=("big.txt", b"x" * 5000), purpose="assistants")
        assert "too large" in err.value.message

        assert (await b.files.delete(up.id)).deleted
        for client in (a, b):
            with pytest.raises(openai.NotFoundError):
                await client.files.content(up.id)
            assert [f.id for f in (await client.files.list()).data] == [other.id]
        with pytest.raises(openai.NotFoundError):
            await a.files.delete(up.id)


async def test_one_instance_claims_each_file(two, pg_dsn):
    """Both instances are handed the same in-progress file: only one indexes it."""
    async with two() as ((a, jan_a), (_, jan_b)):
        db_a, db_b = retrieval(jan_a).stores.db, retrieval(jan_b).stores.db
        up = await a.files.create(file=("notes.md", markdown_doc()), purpose="assistants")
        vs = await a.vector_stores.create(name="claims")
        doc = {"id": up.id, "object": "vector_store.file", "created_at": 0,
               "vector_store_id": vs.id, "status": "in_progress", "last_error": None,
               "usage_bytes": 0, "chunking_strategy": None, "attributes": {}}
        db_a.put_file(vs.id, doc)
        assert db_a.claim(vs.id, up.id)
        assert not db_b.claim(vs.id, up.id)  # A has it
        assert db_a.claim(vs.id, up.id)  # A again (its own queue resubmitted it)
        assert db_b.unclaimed() == []
        with psycopg.connect(pg_dsn, autocommit=True) as conn:  # A died 10 minutes ago
            conn.execute("UPDATE files_vs_files SET claimed_at = now() - interval '10 minutes'")
        assert db_b.unclaimed() == [(vs.id, up.id)]
        assert db_b.claim(vs.id, up.id) and not db_a.claim(vs.id, up.id)
        db_b.put_file(vs.id, {**doc, "status": "cancelled"})  # any final status releases it
        assert not db_a.claim(vs.id, up.id)  # and nothing claims a file not in progress


@pytest.mark.slow
async def test_search_delete_and_new_chunks_across_instances(two, smollm_path, tmp_path):
    async with two(model=smollm_path) as ((a, jan_a), (b, jan_b)):
        completed: list[str] = []
        embedded: list[int] = []  # files embedded for indexing, by either instance
        for jan in (jan_a, jan_b):
            jan.host.bus.on("vector_store.file.completed",
                            lambda _t, data: completed.append(data["id"]))
            embedder = retrieval(jan).stores.embedder
            embed = embedder.embed

            async def counted(texts, model=None, progress=None, _embed=embed):
                if progress is not None:  # the indexer's calls (a query has no progress)
                    embedded.append(len(texts))
                return await _embed(texts, model, progress)

            embedder.embed = counted
        md = (await a.files.create(file=("handbook.md", markdown_doc()),
                                   purpose="assistants")).id
        html = (await a.files.create(file=("town.html", html_page()), purpose="assistants")).id
        vs = await a.vector_stores.create(name="shared")
        batch = await a.vector_stores.file_batches.create(vs.id, file_ids=[md, html])
        for file_id in (md, html):  # B is handed the same work (as its start-up sweep would)
            retrieval(jan_b).stores.indexer.submit(vs.id, file_id)
        batch = await a.vector_stores.file_batches.poll(batch.id, vector_store_id=vs.id,
                                                        poll_interval_ms=100)
        assert batch.status == "completed" and batch.file_counts.completed == 2
        await eventually(lambda: sorted(completed) == sorted([md, html]))
        for jan in (jan_a, jan_b):  # B found A's claims and left both files alone
            assert await retrieval(jan).stores.indexer.wait_idle(60)
        assert sorted(completed) == sorted([md, html])
        assert len(embedded) == 2, embedded  # each file embedded once, by whoever claimed it

        async def search(client: openai.AsyncOpenAI, query: str) -> list[Any]:
            return (await client.vector_stores.search(vs.id, query=query)).data

        top = (await search(b, "QUILL-58 launch code"))[0]  # B never indexed anything
        assert (top.file_id, top.filename) == (md, "handbook.md")
        assert FACT_MD in top.content[0].text
        assert (await b.files.content(md)).content == markdown_doc()
        assert {h.file_id for h in await search(a, "QUILL-58 launch code")} == {md, html}

        # Deleted on B: gone from A's results, and A's graph dropped those chunks (it noticed
        # the store's generation move, not just the missing rows).
        assert (await b.files.delete(md)).deleted
        assert {h.file_id for h in await search(a, "QUILL-58 launch code")} == {html}
        graph = retrieval(jan_a).stores.graphs.loaded[vs.id][1]
        assert len(graph) == retrieval(jan_a).stores.db.chunk_count(vs.id)

        # Added on A after B searched: B finds it first by vector and keyword, no restart.
        note = (await a.files.create(file=("ferry.txt", NEW_FACT.encode()),
                                     purpose="assistants")).id
        await a.vector_stores.files.create_and_poll(file_id=note, vector_store_id=vs.id,
                                                    poll_interval_ms=100)
        top = (await search(b, NEW_FACT))[0]
        assert (top.file_id, top.score) == (note, 1.0), top


async def test_database_down_is_a_503_then_recovers(make_host, own_pg_server, monkeypatch):
    monkeypatch.delenv("JAN_POSTGRES_DSN", raising=False)
    async with make_host(settings=pg_files(own_pg_server.dsn, db_timeout=1.0)) as jan, \
            asgi_client(jan) as http:
        client = client_for(http)
        up = await client.files.create(file=("notes.md", markdown_doc()), purpose="assistants")
        await asyncio.to_thread(own_pg_server.stop)
        for r in (await http.get("/v1/files"), await http.get(f"/v1/files/{up.id}/content"),
                  await http.get("/v1/vector_stores")):
            assert r.status_code == 503, r.text
            assert r.json()["error"]["code"] == "service_unavailable"
            assert r.headers["retry-after"] == "1"
        await asyncio.to_thread(own_pg_server.start)

        async def serves_again() -> bool:
            r = await http.get(f"/v1/files/{up.id}/content")
            return r.status_code == 200 and r.content == markdown_doc()

        await eventually(serves_again)  # once a probe connects: no restart of jan


async def test_misconfiguration_is_named(make_host, monkeypatch):
    monkeypatch.delenv("JAN_POSTGRES_DSN", raising=False)
    for files, needle in (({"backend": "postgresql"}, "JAN_POSTGRES_DSN"),
                          ({"backend": "cloud"}, "setting 'backend'"),
                          ({"backend": "postgresql", "db_timeout": "soon"},
                           "setting 'db_timeout'"),
                          ({"backend": "postgresql", "dsn": "host=127.0.0.1 port=1"},
                           "cannot connect to PostgreSQL")):
        async with make_host(settings={"extensions": {"files": files}}) as jan, \
                asgi_client(jan) as http:
            health = (await http.get("/health")).json()
            ext = {e["id"]: e for e in health["extensions"]}["files"]
            assert ext["state"] == "failed" and needle in ext["reason"], ext


async def test_dsn_of_threads_postgresql_is_used(make_host, pg_dsn, monkeypatch):
    monkeypatch.delenv("JAN_POSTGRES_DSN", raising=False)
    settings = {"extensions": {"files": {"backend": "postgresql"},
                               "threads-postgresql": {"dsn": pg_dsn}}}
    async with make_host(settings=settings) as jan, asgi_client(jan) as http:
        up = await client_for(http).files.create(file=("a.md", b"# hi"), purpose="assistants")
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT id FROM files_uploads").fetchall() == [(up.id,)]


async def test_removing_a_file_while_another_instance_swaps_its_chunks(make_host, pg_dsn,
                                                                       monkeypatch):
    """Instance B commits a file's chunks while A removes the file: no chunk survives."""
    monkeypatch.delenv("JAN_POSTGRES_DSN", raising=False)
    async with make_host(settings=pg_files(pg_dsn)) as jan_a, asgi_client(jan_a) as http:
        a, db = client_for(http), retrieval(jan_a).stores.db
        up = await a.files.create(file=("notes.md", markdown_doc()), purpose="assistants")
        vs = await a.vector_stores.create(name="race")
        db.put_file(vs.id, {"id": up.id, "created_at": 0, "status": "in_progress"})
        with psycopg.connect(pg_dsn) as other:  # B's chunk swap, as replace_chunks does it
            other.execute("SELECT 1 FROM files_vs_files WHERE file_id=%s FOR UPDATE", (up.id,))
            removing = asyncio.create_task(asyncio.to_thread(db.remove_file, vs.id, up.id))
            await eventually(lambda: other.execute(  # A waits on B's row lock
                "SELECT count(*) FROM pg_locks WHERE NOT granted").fetchone()[0])
            other.execute("INSERT INTO files_chunks (vs_id, file_id, seq, text, model, vector) "
                          "VALUES (%s, %s, 0, 'late', 'm', '\\x00')", (vs.id, up.id))
            other.commit()
        await removing
        assert db.chunk_count(vs.id) == 0 and db.file(vs.id, up.id) is None


async def test_files_of_a_deleted_thread_go_with_it(make_host, pg_dsn, monkeypatch):
    """A file attached to a thread (moved there on first use) is deleted with the thread, as
    the thread's folder takes its files along in the data-folder backend."""
    monkeypatch.delenv("JAN_POSTGRES_DSN", raising=False)
    async with make_host(settings=pg_files(pg_dsn)) as jan, asgi_client(jan) as http:
        client = client_for(http)
        kept = await client.files.create(file=("kept.md", b"# kept"), purpose="assistants")
        up = await client.files.create(file=("notes.md", markdown_doc()), purpose="assistants")
        thread = (await http.post("/v1/threads", json={})).json()
        retrieval(jan).files.move_to_thread(up.id, thread["id"])
        assert (await http.delete(f"/v1/threads/{thread['id']}")).status_code == 200

        async def only_the_other_left() -> bool:
            return [f.id for f in (await client.files.list()).data] == [kept.id]

        await eventually(only_the_other_left)  # the handler runs after the delete returns


def test_keyword_ranking_weighs_the_rare_word_like_bm25(pg_dsn):
    """PostgreSQL's keyword side agrees with FTS5's BM25 where it matters: a chunk holding the
    rare word outranks chunks repeating the common one."""
    from test_files_keyword import TEXTS
    from threads_fixtures import load_module

    pg = load_module("files", "pg").Pg(pg_dsn)
    try:
        pg.migrate()
        db = load_module("files", "pg_db").PgIndexDB(pg, "test")
        db.put_store({"id": "vs_a", "created_at": 0}, "m")
        db.put_file("vs_a", {"id": "file_a", "created_at": 0, "status": "in_progress"})
        names = ["rivers", *TEXTS]  # short, the common word twice, and the oldest chunk
        texts = ["River, rivers.", *TEXTS.values()]
        ids = db.replace_chunks("vs_a", "file_a", "m", texts,
                                np.zeros((len(texts), 4), dtype=np.float32))
        by_id = dict(zip(ids, names, strict=True))
        keywords = db.keyword_index()

        def ranked(query: str) -> list[str]:
            return [by_id[cid] for cid, _ in keywords.search(["vs_a"], query, 20)]

        assert ranked("heron river")[:2] == ["heron_river", "heron"]
        assert len(ranked("heron river")) == 11  # every chunk holding either word
        assert ranked("rivers heron")[:2] == ["heron_river", "heron"]  # stemmed alike
        assert ranked("the of and") == []  # only the parser's stop-words: nothing to rank
        assert set(ranked("heron') | !(:*")) == {"heron_river", "heron"}  # no tsquery syntax
        assert keywords.search(["vs_other"], "heron", 5) == []
    finally:
        pg.close()


async def test_cli_files_on_postgresql_are_the_servers_files(make_host, data_folder, tmp_path,
                                                             pg_dsn, monkeypatch):
    """``jan files add|list|rm`` in one data folder and a server on another share the files."""
    monkeypatch.delenv("JAN_POSTGRES_DSN", raising=False)
    (data_folder / "settings.json").write_text(json.dumps(pg_files(pg_dsn)))
    note = tmp_path / "ferry.txt"
    note.write_text(NEW_FACT)

    def cli(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "jan.host.cli", "files", *args,
                               "--data-folder", str(data_folder)], capture_output=True,
                              text=True, timeout=120, env=jan_cli_env())
        assert done.returncode == 0, done.stderr
        return done.stdout

    file_id = cli("add", str(note)).split("\t")[0]
    assert file_id in cli("list")
    other = tmp_path / "other"
    other.mkdir()
    async with make_host(folder=other, settings=pg_files(pg_dsn)) as jan, \
            asgi_client(jan) as http:
        client = client_for(http)
        assert [f.id for f in (await client.files.list()).data] == [file_id]
        assert (await client.files.content(file_id)).text == NEW_FACT
        assert f"deleted {file_id}" in cli("rm", file_id)
        assert (await client.files.list()).data == []
