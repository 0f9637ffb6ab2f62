"""``/health`` says ``degraded`` (naming what) when a core service or a bundled extension is
missing, and ``jan serve`` warns at start; never ``ok`` with parts missing."""

from __future__ import annotations

import textwrap

from conftest import asgi_client
from host_fixtures import write_extension

BROKEN = textwrap.dedent("""
    raise RuntimeError("broken on purpose")
""")


async def test_a_failed_bundled_extension_degrades_health(make_host, tmp_path, caplog):
    bundled = tmp_path / "bundled"
    write_extension(bundled, "fine")
    write_extension(bundled, "broken", body=BROKEN)
    async with make_host(bundled=bundled) as jan, asgi_client(jan) as http:
        body = (await http.get("/health")).json()
    assert body["status"] == "degraded"
    assert [p for p in body["problems"] if "'broken'" in p and "broken on purpose" in p]
    assert not [p for p in body["problems"] if "'fine'" in p]
    assert "jan is degraded" in caplog.text and "broken" in caplog.text


async def test_a_failed_user_extension_is_reported_but_not_degrading(make_host, data_folder,
                                                                      tmp_path):
    write_extension(data_folder / "extensions", "mine", body=BROKEN)
    async with make_host(bundled=tmp_path / "none") as jan, asgi_client(jan) as http:
        body = (await http.get("/health")).json()
    states = {e["id"]: e["state"] for e in body["extensions"]}
    assert states == {"mine": "failed"} and body["status"] == "ok" and body["problems"] == []


async def test_a_failed_core_service_degrades_health_even_without_the_key(make_host, tmp_path):
    settings = {"engine": {"queue_size": "not a number"}, "server": {"api_key": "k"}}
    async with make_host(settings=settings, bundled=tmp_path / "none") as jan, \
            asgi_client(jan) as http:
        anonymous = (await http.get("/health")).json()
        full = (await http.get("/health", headers={"authorization": "Bearer k"})).json()
    assert anonymous == {"status": "degraded"}
    assert full["status"] == "degraded"
    assert [p for p in full["problems"] if p.startswith("core service 'inference' failed")]


async def test_the_bundled_set_is_healthy(make_host):
    async with make_host() as jan, asgi_client(jan) as http:
        body = (await http.get("/health")).json()
    assert body["status"] == "ok" and body["problems"] == []
    assert {e["id"] for e in body["extensions"]} >= {"models", "chat", "threads", "runs"}


async def test_a_bad_extension_setting_names_the_setting(make_host):
    settings = {"extensions": {"runs": {"history_limit": "lots"}}}
    async with make_host(settings=settings) as jan, asgi_client(jan) as http:
        body = (await http.get("/health")).json()
    runs = next(e for e in body["extensions"] if e["id"] == "runs")
    assert runs["state"] == "failed" and "'history_limit'" in runs["reason"]
    assert body["status"] == "degraded"


async def test_extension_settings_default_from_the_manifest(make_host):
    async with make_host() as jan:
        runner = jan.host.records["runs"].instance.runner
    assert (runner.settings.history_limit, runner.settings.run_timeout) == (100, 600)
