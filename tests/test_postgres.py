"""PostgreSQL providers beyond conformance: several instances, faults, transactions, start-up.

Everything runs against a real server (``tests/pg_fixtures.py``): real ``jan serve`` processes
sharing one database, a cluster really stopped and restarted, real DSNs that do not connect.
"""

from __future__ import annotations

import asyncio
import json
import textwrap
import time
from pathlib import Path
from typing import Any

import httpx
import pg_fixtures
import psycopg
import pytest
from conftest import asgi_client
from pg_fixtures import with_dbname
from waiting import wait_for

# PostgreSQL fixtures (tests/pg_fixtures.py), made visible to this module's tests.
own_pg_server = pg_fixtures.own_pg_server
pg_dsn = pg_fixtures.pg_dsn
pg_server = pg_fixtures.pg_server

pytestmark = pytest.mark.postgres
PG_MODULES = {"threads": "threads-postgresql", "messages": "messages-postgresql"}

# A third-party extension dropped into a data folder: it records the bus events it sees, which
# is how a test observes what reached *that* instance's subscribers.
PROBE = '''
import json
from jan.sdk import Extension

class Probe(Extension):
    def activate(self, ctx):
        path = ctx.storage.path("events.jsonl")
        path.parent.mkdir(parents=True, exist_ok=True)

        async def record(topic, data):
            with open(path, "a", encoding="utf-8") as f:
                f.write(json.dumps({"topic": topic, "data": data}) + "\\n")

        ctx.events.on("thread.*", record)
        ctx.events.on("message.*", record)
'''


def pg_settings(dsn: str | None = None, **ext: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {"modules": PG_MODULES}
    if dsn is not None or ext:
        settings["extensions"] = {"threads-postgresql": {**({"dsn": dsn} if dsn else {}), **ext}}
    return settings


def install_probe(folder: Path) -> Path:
    ext = folder / "extensions" / "event-probe"
    ext.mkdir(parents=True)
    (ext / "extension.toml").write_text(textwrap.dedent('''\
        id = "event-probe"
        version = "0.1.0"
        main = "probe:Probe"
        activation_events = ["onStartup"]
        '''))
    (ext / "probe.py").write_text(PROBE)
    return folder / "storage" / "event-probe" / "events.jsonl"


def probe_events(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# --------------------------------------------------------------------------- two instances
@pytest.mark.slow
def test_two_servers_share_writes_and_events(jan_server, data_folder, tmp_path, pg_dsn,
                                             monkeypatch):
    monkeypatch.delenv("JAN_POSTGRES_DSN", raising=False)
    env = {"JAN_POSTGRES_DSN": pg_dsn}
    folder_b = tmp_path / "b"
    folder_b.mkdir()
    for folder in (data_folder, folder_b):
        (folder / "settings.json").write_text(json.dumps(pg_settings()))
    probe_log = install_probe(folder_b)
    a = jan_server(data_folder, env=env)
    b = jan_server(folder_b, env=env)

    thread = httpx.post(f"{a.base_url}/threads", json={"title": "shared"}).json()
    small = httpx.post(f"{a.base_url}/threads/{thread['id']}/messages",
                       json={"role": "user", "content": "written on A"}).json()
    big_text = "x" * 20_000  # larger than a NOTIFY payload: travels through the events table
    big = httpx.post(f"{a.base_url}/threads/{thread['id']}/messages",
                     json={"role": "user", "content": big_text}).json()

    # B sees A's writes at once: it keeps no cache of its own.
    listed = httpx.get(f"{b.base_url}/threads/{thread['id']}/messages",
                       params={"order": "asc"}).json()
    assert listed["data"] == [small, big]
    assert httpx.get(f"{b.base_url}/threads/{thread['id']}").json() == thread

    # ... and A's events reach subscribers on B, unchanged.
    def arrived() -> list[dict[str, Any]]:
        got = probe_events(probe_log)
        return got if len([e for e in got if e["topic"] == "message.created"]) >= 2 else []

    events = wait_for(arrived)
    assert {"topic": "thread.created", "data": thread} in events
    assert {"topic": "message.created", "data": small} in events
    assert {"topic": "message.created", "data": big} in events

    # A write on B is announced once on B (locally), never echoed back a second time.
    mine = httpx.post(f"{b.base_url}/threads/{thread['id']}/messages",
                      json={"role": "assistant", "content": "written on B"}).json()
    wait_for(lambda: any(e["data"] == mine for e in probe_events(probe_log)))
    time.sleep(0.5)
    assert [e["data"] for e in probe_events(probe_log)].count(mine) == 1
    assert httpx.get(f"{a.base_url}/threads/{thread['id']}/messages/{mine['id']}").json() == mine


# --------------------------------------------------------------------------- faults
async def test_database_restart_gives_503_then_recovers(make_host, data_folder, tmp_path,
                                                        own_pg_server, monkeypatch):
    monkeypatch.delenv("JAN_POSTGRES_DSN", raising=False)
    settings = pg_settings(own_pg_server.dsn, timeout=1.0)
    folder_b = tmp_path / "b"
    folder_b.mkdir()
    async with make_host(settings=settings) as jan, \
            make_host(folder_b, settings=settings) as other, asgi_client(jan) as client:
        seen: list[tuple[str, Any]] = []

        async def record(topic: str, data: Any) -> None:
            seen.append((topic, data))

        other.host.bus.on("message.created", record)
        thread = (await client.post("/v1/threads", json={})).json()
        url = f"/v1/threads/{thread['id']}/messages"

        await asyncio.to_thread(own_pg_server.stop)
        for r in (await client.get(url), await client.post(url, json={
                "role": "user", "content": "while down"}), await client.get("/v1/threads")):
            assert r.status_code == 503, r.text
            assert r.headers["retry-after"] == "1"
            assert r.json() == {"error": {
                "message": "The database is unavailable right now; retry shortly",
                "type": "server_error", "param": None, "code": "service_unavailable"}}

        await asyncio.sleep(2)  # long enough for a pool that backs off to fall behind
        await asyncio.to_thread(own_pg_server.start)
        r = await client.post(url, json={"role": "user", "content": "after restart"})
        assert r.status_code == 200, r.text  # the very first request after the restart
        listed = (await client.get(url)).json()["data"]
        assert [m["content"][0]["text"]["value"] for m in listed] == ["after restart"]

        # The event relay reconnects by itself too.
        relay = other.host.records["threads-postgresql"].exports.relay
        await asyncio.wait_for(relay.listening.wait(), 15)
        posted = (await client.post(url, json={"role": "user", "content": "relayed"})).json()
        for _ in range(100):
            if ("message.created", posted) in seen:
                break
            await asyncio.sleep(0.05)
        assert ("message.created", posted) in seen


async def test_no_partial_message_when_a_write_fails(make_host, pg_dsn, monkeypatch):
    """The message row and its event are one transaction: a failure after the insert
    leaves nothing behind."""
    monkeypatch.delenv("JAN_POSTGRES_DSN", raising=False)
    async with make_host(settings=pg_settings(pg_dsn)) as jan, asgi_client(jan) as client:
        thread = (await client.post("/v1/threads", json={})).json()
        url = f"/v1/threads/{thread['id']}/messages"
        ok = await client.post(url, json={"role": "user", "content": "kept"})
        async with await psycopg.AsyncConnection.connect(pg_dsn, autocommit=True) as conn:
            # Fail the event step that follows the message INSERT (large payloads only).
            await conn.execute("""
                CREATE FUNCTION jan_test_fail() RETURNS trigger LANGUAGE plpgsql AS
                $$ BEGIN RAISE EXCEPTION 'injected failure'; END $$;
                CREATE TRIGGER jan_test_fail BEFORE INSERT ON events
                FOR EACH ROW EXECUTE FUNCTION jan_test_fail();""")
        r = await client.post(url, json={"role": "user", "content": "y" * 10_000})
        assert r.status_code == 500
        assert set(r.json()["error"]) == {"message", "type", "param", "code"}
        assert "injected" not in r.text  # no internals leak
        listed = (await client.get(url)).json()["data"]
        assert listed == [ok.json()]
        async with await psycopg.AsyncConnection.connect(pg_dsn) as conn:
            count = await (await conn.execute("SELECT count(*) FROM messages")).fetchone()
        assert count[0] == 1


async def test_nul_in_metadata_is_a_clean_400(make_host, pg_dsn, monkeypatch):
    monkeypatch.delenv("JAN_POSTGRES_DSN", raising=False)
    async with make_host(settings=pg_settings(pg_dsn)) as jan, asgi_client(jan) as client:
        thread = (await client.post("/v1/threads", json={})).json()
        url = f"/v1/threads/{thread['id']}/messages"
        r = await client.post(url, json={"role": "user", "content": "x",
                                         "metadata": {"k": "nul \u0000 here"}})
        assert r.status_code == 400, r.text
        assert r.json()["error"]["type"] == "invalid_request_error"
        assert (await client.get(url)).json()["data"] == []


# --------------------------------------------------------------------------- start-up
def _reason(jan: Any, ext_id: str = "threads-postgresql") -> str:
    rec = jan.host.records[ext_id]
    assert rec.state == "failed"
    return rec.reason or ""


async def test_unparsable_dsn_setting_is_named(make_host, monkeypatch):
    monkeypatch.delenv("JAN_POSTGRES_DSN", raising=False)
    async with make_host(settings=pg_settings("this is = not a dsn")) as jan, \
            asgi_client(jan) as client:
        reason = _reason(jan)
        assert 'settings.json "extensions": {"threads-postgresql": {"dsn"' in reason
        assert "cannot connect to PostgreSQL" in reason
        health = (await client.get("/health")).json()
        ext = {e["id"]: e for e in health["extensions"]}["threads-postgresql"]
        assert ext["state"] == "failed" and ext["reason"] == reason
        r = await client.get("/v1/threads")
        assert r.status_code == 503
        assert r.json()["error"]["code"] == "service_unavailable"
        # The message routes stay up too and say why, rather than vanishing (404).
        r = await client.get("/v1/threads/thread_x/messages")
        assert r.status_code == 503
        assert r.json()["error"]["code"] == "service_unavailable"


async def test_missing_dsn_names_both_ways_to_set_it(make_host, monkeypatch):
    monkeypatch.delenv("JAN_POSTGRES_DSN", raising=False)
    async with make_host(settings=pg_settings()) as jan:
        reason = _reason(jan)
        assert "no PostgreSQL DSN configured" in reason
        assert "JAN_POSTGRES_DSN" in reason and '"dsn"' in reason


async def test_invalid_setting_is_named(make_host, pg_dsn, monkeypatch):
    monkeypatch.delenv("JAN_POSTGRES_DSN", raising=False)
    async with make_host(settings=pg_settings(pg_dsn, timeout="soon")) as jan:
        reason = _reason(jan)
        assert '"threads-postgresql": {"timeout": ...}' in reason


async def test_messages_without_threads_module_is_refused(make_host, pg_dsn, monkeypatch):
    monkeypatch.delenv("JAN_POSTGRES_DSN", raising=False)
    settings = {"modules": {"messages": "messages-postgresql"},
                "extensions": {"threads-postgresql": {"dsn": pg_dsn}}}
    async with make_host(settings=settings) as jan:
        reason = _reason(jan, "messages-postgresql")
        assert '"threads": "threads-postgresql"' in reason


@pytest.mark.slow
def test_unreachable_env_dsn_is_a_clear_startup_error(jan_server, data_folder, pg_server):
    """A real server: the DSN from JAN_POSTGRES_DSN does not connect (wrong database)."""
    bad = with_dbname(pg_server, "no_such_database") + " password=hunter2"
    (data_folder / "settings.json").write_text(json.dumps(pg_settings()))
    server = jan_server(data_folder, env={"JAN_POSTGRES_DSN": bad})
    health = httpx.get(server.url + "/health").json()
    ext = {e["id"]: e for e in health["extensions"]}["threads-postgresql"]
    assert ext["state"] == "failed"
    assert "JAN_POSTGRES_DSN" in ext["reason"] and "no_such_database" in ext["reason"]
    log = server.log()
    assert "JAN_POSTGRES_DSN" in log and "no_such_database" in log
    assert "hunter2" not in log and "hunter2" not in ext["reason"]
    r = httpx.get(f"{server.base_url}/threads")
    assert r.status_code == 503 and r.json()["error"]["code"] == "service_unavailable"


async def test_schema_is_versioned_and_migrations_run_once(make_host, pg_dsn, tmp_path,
                                                           monkeypatch):
    monkeypatch.delenv("JAN_POSTGRES_DSN", raising=False)
    for name in ("again", "newer"):
        (tmp_path / name).mkdir()
    async with make_host(settings=pg_settings(pg_dsn)):
        pass
    async with make_host(tmp_path / "again", settings=pg_settings(pg_dsn)) as jan:
        assert jan.host.records["messages-postgresql"].state == "active"
    async with await psycopg.AsyncConnection.connect(pg_dsn) as conn:
        rows = await (await conn.execute(
            "SELECT component, version FROM schema_version ORDER BY component")).fetchall()
        assert rows == [("messages", 1), ("threads", 1)]
        await conn.execute("UPDATE schema_version SET version = 99 WHERE component = 'threads'")
        await conn.commit()
    async with make_host(tmp_path / "newer", settings=pg_settings(pg_dsn)) as jan:
        assert "newer than this extension knows" in _reason(jan)
