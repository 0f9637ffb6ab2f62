"""A running server moves its threads and messages to PostgreSQL when settings.json says so."""

from __future__ import annotations

import json

import pg_fixtures
import psycopg
import pytest
from conftest import asgi_client
from waiting import eventually

pg_dsn = pg_fixtures.pg_dsn
pg_server = pg_fixtures.pg_server


@pytest.mark.postgres
async def test_live_swap_of_threads_and_messages_to_postgresql(make_host, data_folder, pg_dsn,
                                                               monkeypatch):
    monkeypatch.delenv("JAN_POSTGRES_DSN", raising=False)
    async with make_host(bundled=True, core_services=False, watch=True) as jan:
        async with asgi_client(jan) as c:
            on_files = (await c.post("/v1/threads", json={})).json()["id"]
            assert (data_folder / "threads" / on_files / "thread.json").is_file()

            (data_folder / "settings.json").write_text(json.dumps({
                "modules": {"threads": "threads-postgresql", "messages": "messages-postgresql"},
                "extensions": {"threads-postgresql": {"dsn": pg_dsn}},
            }))

            async def moved() -> bool:  # both providers swapped, not just the first one
                return (await c.get(f"/v1/threads/{on_files}")).status_code == 404 and \
                    jan.host.records["messages-postgresql"].state == "active"

            await eventually(moved, timeout=30, what="the move to PostgreSQL")

            thread = (await c.post("/v1/threads", json={})).json()["id"]
            r = await c.post(f"/v1/threads/{thread}/messages",
                             json={"role": "user", "content": "stored in postgres"})
            assert r.status_code == 200, r.text
            assert not (data_folder / "threads" / thread).exists()
            with psycopg.connect(pg_dsn) as conn:
                rows = conn.execute("SELECT count(*) FROM messages").fetchone()
            assert rows == (1,)
            listed = (await c.get(f"/v1/threads/{thread}/messages")).json()["data"]
            assert [m["content"][0]["text"]["value"] for m in listed] == ["stored in postgres"]
