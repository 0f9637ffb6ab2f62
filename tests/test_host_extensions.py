"""The extension host: discovery, ordering, failures, lazy activation, disposables."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest
from conftest import asgi_client
from host_fixtures import write_extension


@pytest.fixture
def bundled(tmp_path: Path) -> Path:
    folder = tmp_path / "bundled"
    folder.mkdir()
    return folder


def install_entry_point(site: Path, ext_id: str, package: str) -> None:
    """A real installed distribution (dist-info + package) exposing a ``jan.extensions`` entry."""
    write_extension(site, ext_id, folder_name=package)
    (site / package / "__init__.py").write_text("")
    dist = site / f"{package}-0.1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package}\nVersion: 0.1.0\n")
    (dist / "entry_points.txt").write_text(f"[jan.extensions]\n{ext_id} = {package}\n")


async def test_discovers_bundled_data_folder_and_entry_points(
        make_host, bundled, data_folder, tmp_path, monkeypatch):
    write_extension(bundled, "from-bundled")
    write_extension(data_folder / "extensions", "from-data")
    site = tmp_path / "site"
    site.mkdir()
    install_entry_point(site, "from-entry-point", "jan_ep_demo")
    monkeypatch.syspath_prepend(str(site))
    async with make_host(bundled=bundled, core_services=False) as jan:
        states = {e["id"]: (e["state"], e["source"]) for e in jan.host.describe()}
        assert states == {
            "from-bundled": ("active", "bundled"),
            "from-data": ("active", "data"),
            "from-entry-point": ("active", "entry_point"),
        }
        async with asgi_client(jan) as c:
            for ext_id in states:
                r = await c.get(f"/x/{ext_id}")
                assert r.json() == {"from": ext_id}


async def test_invalid_manifest_reported_with_file_and_field(make_host, bundled):
    write_extension(bundled, "good")
    bad = write_extension(bundled, "bad")
    (bad / "extension.toml").write_text('id = "bad"\nversion = "1"\nmain = "not a target"\n')
    async with make_host(bundled=bundled, core_services=False) as jan:
        assert [e["id"] for e in jan.host.describe()] == ["good"]
        (error,) = jan.host.manifest_errors
        assert "bad/extension.toml" in error and "[main]" in error
        async with asgi_client(jan) as c:
            health = (await c.get("/health")).json()
            assert health["manifest_errors"] == [error]


ORDER_BODY = """
    from jan.sdk import Extension
    ORDER = __import__("sys").modules.setdefault("jan_test_order", [])

    class Ext(Extension):
        def activate(self, ctx):
            ORDER.append(ctx.id)
"""


async def test_dependency_order_and_services(make_host, bundled):
    sys.modules["jan_test_order"] = []  # type: ignore[assignment]
    write_extension(bundled, "c-top", body=ORDER_BODY, manifest_extra='requires = ["store"]\n')
    write_extension(bundled, "a-mid", body=ORDER_BODY,
                    manifest_extra='dependencies = ["z-base"]\nprovides = ["store"]\n')
    write_extension(bundled, "z-base", body=ORDER_BODY)
    async with make_host(bundled=bundled, core_services=False):
        assert sys.modules["jan_test_order"] == ["z-base", "a-mid", "c-top"]


async def test_cycle_and_failing_extension_reported_others_serve(make_host, bundled):
    write_extension(bundled, "cyc-a", manifest_extra='dependencies = ["cyc-b"]\n')
    write_extension(bundled, "cyc-b", manifest_extra='dependencies = ["cyc-a"]\n')
    write_extension(bundled, "boom", body="""
        from jan.sdk import Extension
        class Ext(Extension):
            def activate(self, ctx):
                raise RuntimeError("kaput")
    """)
    write_extension(bundled, "needs-boom", manifest_extra='dependencies = ["boom"]\n')
    write_extension(bundled, "fine")
    async with make_host(bundled=bundled, core_services=False) as jan:
        rows = {e["id"]: e for e in jan.host.describe()}
        assert rows["fine"]["state"] == "active"
        assert rows["cyc-a"]["state"] == rows["cyc-b"]["state"] == "failed"
        assert "dependency cycle" in rows["cyc-a"]["reason"]
        assert rows["boom"]["state"] == "failed" and "kaput" in rows["boom"]["reason"]
        assert rows["needs-boom"]["state"] == "failed"
        assert "boom" in rows["needs-boom"]["reason"]
        async with asgi_client(jan) as c:
            assert (await c.get("/x/fine")).status_code == 200
            health = (await c.get("/health")).json()
            assert {e["id"]: e["state"] for e in health["extensions"]}["boom"] == "failed"


async def test_lazy_activation_on_first_matching_route(make_host, bundled):
    write_extension(bundled, "lazy", activation='["onRoute:/x/lazy*"]')
    async with make_host(bundled=bundled, core_services=False) as jan:
        assert jan.host.records["lazy"].state == "inactive"
        async with asgi_client(jan) as c:
            r = await c.get("/x/lazy")
            assert r.status_code == 200 and r.json() == {"from": "lazy"}
        assert jan.host.records["lazy"].state == "active"


async def test_lazy_activation_on_event(make_host, bundled):
    write_extension(bundled, "listener", activation='["onEvent:ping.*"]', body="""
        from jan.sdk import Extension
        class Ext(Extension):
            def activate(self, ctx):
                self.seen = []
                ctx.events.on("ping.*", lambda topic, data: self.seen.append(topic))
                return self
    """)
    async with make_host(bundled=bundled, core_services=False) as jan:
        assert jan.host.records["listener"].state == "inactive"
        await jan.host.bus.emit("ping.one", {})
        await jan.host.bus.drain()
        assert jan.host.exports_of("listener").seen == ["ping.one"]


DISPOSABLE_BODY = """
    import asyncio
    from jan.sdk import Extension, hookimpl
    from jan.sdk.http import json_response

    class Ext(Extension):
        def activate(self, ctx):
            self.ctx = ctx
            ctx.events.on("tick", self.on_tick)
            ctx.services.provide("clock", self)
            self.task = ctx.spawn(asyncio.sleep(3600))
            self.ticks = 0

        def on_tick(self, topic, data):
            self.ticks += 1

        @hookimpl
        def register_routes(self, register):
            register("/x/clock", self.now, methods=["GET"])

        async def now(self, request):
            return json_response({"ticks": self.ticks})
"""


async def test_deactivate_releases_everything_registered(make_host, bundled):
    write_extension(bundled, "clock", body=DISPOSABLE_BODY, manifest_extra='provides=["clock"]\n')
    async with make_host(bundled=bundled, core_services=False) as jan:
        rec = jan.host.records["clock"]
        instance, task = rec.instance, rec.instance.task
        async with asgi_client(jan) as c:
            assert (await c.get("/x/clock")).status_code == 200
            assert jan.host.bus.handlers("clock") == ["tick"]
            await jan.host.deactivate("clock")
            r = await c.get("/x/clock")
            assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_url"
        assert jan.host.bus.handlers("clock") == []
        assert jan.host.services.providers("clock") == []
        assert task.cancelled()
        await jan.host.bus.emit("tick")
        await jan.host.bus.drain()
        assert instance.ticks == 0
        assert not any(m.startswith("jan_ext.clock.") for m in sys.modules)


async def test_slow_deactivate_is_bounded(make_host, bundled):
    write_extension(bundled, "sleepy", body=textwrap.dedent("""
        import asyncio
        from jan.sdk import Extension
        class Ext(Extension):
            async def deactivate(self):
                await asyncio.sleep(60)
    """))
    async with make_host(bundled=bundled, core_services=False) as jan:
        jan.host.deactivate_timeout = 0.2
        assert await jan.host.deactivate("sleepy") == ["sleepy"]
        assert jan.host.records["sleepy"].state == "inactive"


async def test_collect_gathers_registrations_from_every_active_extension(make_host, bundled):
    for name in ("cat-a", "cat-b"):
        write_extension(bundled, name, body=f"""
            from jan.sdk import Extension, hookimpl
            class Ext(Extension):
                def activate(self, ctx):
                    self.ctx = ctx
                    return self
                @hookimpl
                def register_model_catalog(self, register):
                    register({{"id": "{name}-model"}})
        """)
    async with make_host(bundled=bundled, core_services=False) as jan:
        ctx = jan.host.exports_of("cat-a").ctx
        assert sorted(m["id"] for m in ctx.collect("register_model_catalog")) == [
            "cat-a-model", "cat-b-model"]
        await jan.host.deactivate("cat-b")
        assert [m["id"] for m in ctx.collect("register_model_catalog")] == ["cat-a-model"]


async def test_literal_paths_win_over_parameters_whatever_the_order(make_host, bundled):
    write_extension(bundled, "a-param", body="""
        from jan.sdk import Extension, hookimpl
        from jan.sdk.http import json_response
        class Ext(Extension):
            @hookimpl
            def register_routes(self, register):
                register("/v1/things/{thing_id}", self.one, methods=["POST"])
            async def one(self, request):
                return json_response({"param": request.path_params["thing_id"]})
    """)
    write_extension(bundled, "b-literal", body="""
        from jan.sdk import Extension, hookimpl
        from jan.sdk.http import json_response
        class Ext(Extension):
            @hookimpl
            def register_routes(self, register):
                register("/v1/things/special", self.special, methods=["POST"])
            async def special(self, request):
                return json_response({"literal": True})
    """)
    async with make_host(bundled=bundled, core_services=False) as jan:
        async with asgi_client(jan) as c:
            assert (await c.post("/v1/things/special")).json() == {"literal": True}
            assert (await c.post("/v1/things/7")).json() == {"param": "7"}


async def test_host_services_count_as_provided_without_core_services(make_host, bundled):
    write_extension(bundled, "needs-engine", manifest_extra='requires = ["inference"]\n')
    async with make_host(bundled=bundled, core_services=False) as jan:
        assert jan.host.records["needs-engine"].state == "active"
