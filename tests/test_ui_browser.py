"""The browser UI in Debian's Chromium (Playwright) against a real ``jan serve`` whose inference
is the scripted test double: Markdown and code, XSS payloads inert, no remote fetch, settings
saved to the thread and used, stop, the download progress bar, keyboard-only use, phone width,
axe, and the README's screenshots."""

from __future__ import annotations

import json

import httpx
import pytest
import ui_fixtures
from conftest import start_server
from models_fixtures import big_gguf
from ui_fixtures import (
    UiPage,
    axe_serious,
    engine_requests,
    recording_server,
    scripted_folder,
    shot,
    throttled_server,
)
from waiting import wait_for

# The shared fixtures (one scripted ``jan serve`` and one Chromium for this module).
browser, server, ui = ui_fixtures.browser, ui_fixtures.server, ui_fixtures.ui

pytestmark = pytest.mark.slow


MARKDOWN = ("say:## Plan\n\nHere is **bold**, *italic* and `inline`.\n\n"
            "```python\ndef greet(name):\n    return f\"Hello, {name}!\"\n```\n\n"
            "| step | done |\n|---|---|\n| write | yes |\n\n- one\n- two")


def test_markdown_and_code_rendering(ui):
    u = ui()
    page = u.open()
    u.send(MARKDOWN)
    reply = u.wait_reply(1)
    assert reply.locator("h2").inner_text() == "Plan"
    assert reply.locator("strong").inner_text() == "bold"
    block = reply.locator(".code[data-lang=python]")
    assert "def greet(name):" in block.locator("pre").inner_text()
    assert block.locator("span.tok-k").first.inner_text() == "def"  # highlighted by Pygments
    assert block.locator("button.copy").count() == 1
    assert reply.locator("table td").first.inner_text() == "write"
    # The user's own text is shown as typed (never interpreted).
    assert page.locator("article.msg.user .bubble").inner_text().startswith("say:## Plan")
    # Automatic title from the first exchange, shown in the sidebar.
    page.wait_for_selector(".thread-list li.active button.open:has-text('say:## Plan')")
    shot(page, "chat-light.png")


def test_xss_in_model_output_and_titles_is_inert(ui, server):
    with recording_server() as rec:
        payload = ("say:<img src=x onerror=\"window.__xss=1\"> [click](javascript:window.__xss=2)"
                   " <script>window.__xss=3</script>"
                   f"\n\n![secret]({rec.url}/leak.png?q=conversation)"
                   f"\n\n<img src=\"{rec.url}/raw.png\">")
        u = ui()
        page = u.open()
        u.send(payload)
        reply = u.wait_reply(1)
        # A title with HTML, set through the API like any other client could.
        thread_id = page.evaluate("document.querySelector('.thread-list li.active').dataset.thread")
        httpx.post(f"{server.base_url}/threads/{thread_id}",
                   json={"title": "<img src=x onerror=window.__xss=4>"}).raise_for_status()
        page.reload()
        page.wait_for_selector("body[data-ready=true]")
        title = page.locator(f".thread-list li[data-thread='{thread_id}'] button.open")
        assert title.inner_text() == "<img src=x onerror=window.__xss=4>"
        title.click()
        reply = u.wait_reply(1)
        assert page.locator("#messages img, .thread-list img, #messages script").count() == 0
        hrefs = reply.locator("a").evaluate_all("els => els.map(e => e.getAttribute('href'))")
        assert not any((h or "").lower().startswith("javascript") for h in hrefs), hrefs
        assert "<script>" in reply.inner_text()  # shown as text
        reply.locator("text=click").first.click(force=True) if reply.locator(
            "a:has-text('click')").count() else None
        assert page.evaluate("window.__xss") is None
        assert rec.seen == []  # the "image" was never fetched
        assert all(r.startswith(server.url) or r.startswith("data:") for r in u.requests), \
            [r for r in u.requests if not r.startswith(server.url)]


def test_parameters_saved_to_thread_and_used_by_next_requests(ui, server):
    u = ui()
    page = u.open()
    u.send("first")
    u.wait_reply(1)
    page.fill("#p-temperature", "0.25")
    page.fill("#p-top_p", "0.5")
    page.fill("#p-max_tokens", "42")
    page.fill("#p-stop", "END\nHALT")
    page.fill("#p-instructions", "You are terse.")
    page.click("#panel-form button[type=submit]")
    page.wait_for_selector("#toast.show:has-text('Saved to the thread')")
    thread_id = page.evaluate("document.querySelector('.thread-list li.active').dataset.thread")
    stored = json.loads((server.folder / "threads" / thread_id / "thread.json").read_text())
    params = stored["assistants"][0]["model"]["parameters"]
    assert params == {"temperature": 0.25, "top_p": 0.5, "max_tokens": 42, "stop": ["END", "HALT"]}
    assert stored["assistants"][0]["instructions"] == "You are terse."

    before = len(engine_requests(server.folder))
    u.send("second")
    u.wait_reply(2)
    page.reload()  # and after a reload, from the thread alone
    page.wait_for_selector("body[data-ready=true]")
    page.click(f".thread-list li[data-thread='{thread_id}'] button.open")
    u.wait_reply(2)
    assert page.input_value("#p-temperature") == "0.25"
    u.send("third")
    u.wait_reply(3)
    used = engine_requests(server.folder)[before:]
    assert len(used) == 2
    for req in used:
        assert req["temperature"] == 0.25 and req["top_p"] == 0.5 and req["max_tokens"] == 42
        assert {"END", "HALT"} <= set(req["stop"])
        assert req["messages"][0] == {"role": "system", "content": "You are terse.",
                                      "tool_calls": None, "tool_call_id": None, "name": None}


def test_stop_keeps_what_was_generated_and_regenerate_replaces_it(ui, server):
    u = ui()
    page = u.open()
    u.send("stream:3000:40")
    page.wait_for_function(
        "() => (document.querySelector('article.msg.assistant .bubble')?.textContent || '')"
        ".includes('tok5 ')")
    assert page.is_visible("#stop-btn")
    page.click("#stop-btn")
    reply = u.wait_reply(1)
    text = reply.locator(".bubble").inner_text()
    assert text.startswith("tok0 tok1") and "tok2999" not in text
    assert reply.locator(".note").inner_text() == "Stopped"
    assert page.is_visible("#send-btn")
    thread_id = page.evaluate("document.querySelector('.thread-list li.active').dataset.thread")
    saved = httpx.get(f"{server.base_url}/threads/{thread_id}/messages?order=asc").json()["data"]
    assert [m["role"] for m in saved] == ["user", "assistant"]
    assert saved[1]["content"][0]["text"]["value"].strip() == text.strip()
    # Regenerate: the stopped reply is replaced by a new one.
    page.fill("#composer-input", "")
    page.click("#regenerate")
    page.wait_for_selector("article.msg.assistant .bubble.streaming")
    page.click("#stop-btn")
    u.wait_reply(1)
    after = httpx.get(f"{server.base_url}/threads/{thread_id}/messages?order=asc").json()["data"]
    assert [m["role"] for m in after] == ["user", "assistant"]
    assert after[1]["id"] != saved[1]["id"]


def test_edit_a_message_and_resend(ui, server):
    u = ui()
    page = u.open()
    u.send("original question")
    u.wait_reply(1)
    page.locator("article.msg.user button:has-text('Edit')").click()
    page.fill("article.msg.user textarea", "edited question")
    page.keyboard.press("Enter")
    page.wait_for_selector("article.msg.assistant:has-text('Scripted reply to: edited question')")
    u.wait_reply(1)
    thread_id = page.evaluate("document.querySelector('.thread-list li.active').dataset.thread")
    saved = httpx.get(f"{server.base_url}/threads/{thread_id}/messages?order=asc").json()["data"]
    assert [m["content"][0]["text"]["value"] for m in saved] == [
        "edited question", "Scripted reply to: edited question"]


def test_download_progress_bar_moves_cancel_and_resume(ui, server, tmp_path):
    big_gguf(tmp_path / "srv" / "ui-tiny.gguf", megabytes=6)
    with throttled_server(tmp_path / "srv", delay=0.04) as srv:
        u = ui()
        page = u.open("#/models")
        page.fill("#pull-ref", f"{srv.url}/ui-tiny.gguf")
        page.click("#pull-form button[type=submit]")
        bar = page.locator(".card.pull progress")
        bar.wait_for()
        first = wait_for(lambda: float(bar.get_attribute("value") or 0), what="progress > 0")
        second = wait_for(lambda: (v := float(bar.get_attribute("value") or 0)) > first and v,
                          what="the bar to move")
        assert 0 < first < second < 100
        shot(page, "models.png")
        page.click(".card.pull button:has-text('Cancel')")
        page.wait_for_selector(".card.pull[data-status=cancelled]")
        srv.delay = 0
        page.click(".card.pull button:has-text('Resume')")
        page.wait_for_selector(".card.pull[data-status=completed]", timeout=90000)
        page.wait_for_selector(".card[data-model='ui-tiny']")
        assert any(r and r != "bytes=0-" for r in srv.ranges)  # the resume asked for the rest
        assert float(bar.get_attribute("value")) == 100


def _tab_to(page, selector: str, key: str = "Tab", limit: int = 80) -> None:
    for _ in range(limit):
        if page.evaluate("s => document.activeElement?.matches(s)", selector):
            return
        page.keyboard.press(key)
    raise AssertionError(f"keyboard focus never reached {selector}")


def test_keyboard_only_journey(ui):
    u = ui()
    page = u.open()
    assert page.evaluate("document.activeElement.id") == "composer-input"
    page.keyboard.type("hello")
    page.keyboard.press("Shift+Enter")
    page.keyboard.type("world")
    page.keyboard.press("Enter")
    u.wait_reply(1)
    assert page.locator("article.msg.user .bubble").inner_text() == "hello\nworld"
    # Rename the thread from the keyboard.
    _tab_to(page, ".thread-list li.active button[aria-label^=Rename]", "Shift+Tab")
    page.keyboard.press("Enter")
    page.wait_for_selector(".thread-list input")
    page.keyboard.press("Control+A")
    page.keyboard.type("Keyboard thread")
    page.keyboard.press("Enter")
    page.wait_for_selector(".thread-list button.open:has-text('Keyboard thread')")
    # New chat, then back to the thread.
    _tab_to(page, "#new-chat", "Shift+Tab")
    page.keyboard.press("Enter")
    page.wait_for_selector("#chat-title:has-text('New chat')")
    _tab_to(page, ".thread-list button.open[title='Keyboard thread']")
    page.keyboard.press("Enter")
    u.wait_reply(1)
    assert page.evaluate("document.activeElement.id") == "composer-input"
    # Pages through the nav links.
    _tab_to(page, ".nav-links a[data-view=models]", "Shift+Tab")
    page.keyboard.press("Enter")
    page.wait_for_selector("#view-models:not([hidden])")
    # Delete with the confirmation dialog.
    _tab_to(page, ".thread-list button[aria-label='Delete Keyboard thread']", "Shift+Tab")
    page.keyboard.press("Enter")
    page.wait_for_selector("#confirm-dialog[open]")
    assert page.evaluate("document.activeElement.id") == "confirm-cancel"
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    page.wait_for_selector(".thread-list button.open[title='Keyboard thread']", state="detached")


def test_phone_width(ui):
    u = ui(viewport=(390, 844))
    page = u.open()
    assert not page.is_visible("#sidebar .thread-list")
    u.send("from a phone")
    u.wait_reply(1)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390  # no sideways scrolling
    page.click("#open-sidebar")
    page.wait_for_selector(".thread-list button.open:has-text('from a phone')")
    page.click(".nav-links a[data-view=status]")
    page.wait_for_selector("#status-body table")


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_axe_finds_no_serious_violations(ui, scheme):
    pytest.importorskip("axe_playwright_python")
    u = ui(color_scheme=scheme)
    page = u.open()
    u.send(MARKDOWN)
    u.wait_reply(1)
    page.wait_for_timeout(300)  # let the toast and the focus ring settle for the screenshot
    problems = {"chat": axe_serious(page)}
    if scheme == "dark":
        shot(page, "chat-dark.png")
    for view in ("models", "assistants", "status"):
        page.click(f".nav-links a[data-view={view}]")
        page.wait_for_selector(f"#view-{view}:not([hidden])")
        page.wait_for_load_state("networkidle")
        problems[view] = axe_serious(page)
        if view == "assistants" and scheme == "light":
            shot(page, "assistants.png")
    assert not any(problems.values()), problems


def test_assistants_create_edit_and_use_in_a_thread(ui, server):
    u = ui()
    page = u.open("#/assistants")
    page.wait_for_selector(".card[data-assistant=jan]")
    page.fill("#as-name", "Poet")
    page.fill("#as-instructions", "Answer in rhyme.")
    page.fill("#as-temperature", "0.6")
    page.click("#assistant-form button[type=submit]")
    card = page.locator(".card[data-assistant]:has-text('Poet')")
    card.wait_for()
    assistant_id = card.get_attribute("data-assistant")
    card.locator("button:has-text('Edit')").click()
    assert page.input_value("#as-instructions") == "Answer in rhyme."
    page.fill("#as-name", "Rhyming poet")
    page.click("#assistant-form button[type=submit]")
    page.wait_for_selector(f".card[data-assistant='{assistant_id}']:has-text('Rhyming poet')")
    stored = httpx.get(f"{server.base_url}/assistants/{assistant_id}").json()
    assert stored["name"] == "Rhyming poet" and stored["temperature"] == 0.6

    # Picked for a new chat in the panel: its instructions and temperature reach the engine.
    page.click(".nav-links a[data-view=chat]")
    page.click("#new-chat")
    page.select_option("#p-assistant", assistant_id)
    page.click("#panel-form button[type=submit]")
    before = len(engine_requests(server.folder))
    u.send("a poem please")
    u.wait_reply(1)
    used = engine_requests(server.folder)[before:]
    assert used[0]["messages"][0]["content"] == "Answer in rhyme."
    assert used[0]["temperature"] == 0.6


def test_sidebar_lists_threads_by_last_activity(ui, server):
    """An old thread that gets a new message (from any client) is listed before newer ones,
    and a reply in the UI moves its thread to the top."""
    ids = [httpx.post(f"{server.base_url}/threads", json={"title": f"Activity {n}"}).json()["id"]
           for n in range(3)]
    httpx.post(f"{server.base_url}/threads/{ids[0]}/messages",
               json={"role": "user", "content": "bump"}).raise_for_status()
    u = ui()
    page = u.open()
    order = page.locator(".thread-list li[data-thread]").evaluate_all(
        "els => els.map(e => e.dataset.thread)")
    assert order.index(ids[0]) < order.index(ids[2]) < order.index(ids[1])
    page.click(f".thread-list li[data-thread='{ids[1]}'] button.open")
    u.send("now this one")
    u.wait_reply(1)
    first = page.locator(".thread-list li[data-thread]").first
    assert first.get_attribute("data-thread") == ids[1]
    page.reload()
    page.wait_for_selector("body[data-ready=true]")
    assert page.locator(".thread-list li[data-thread]").first.get_attribute(
        "data-thread") == ids[1]  # the server's order agrees


def test_tool_calls_in_messages_are_shown_collapsed(ui, server):
    thread = httpx.post(f"{server.base_url}/threads", json={"title": "Tools"}).json()
    base = f"{server.base_url}/threads/{thread['id']}/messages"
    httpx.post(base, json={"role": "user", "content": "weather in Paris?"}).raise_for_status()
    calls = json.dumps([{"id": "call_1", "function": {"name": "get_weather",
                                                      "arguments": "{\"city\": \"Paris\"}"}}])
    httpx.post(base, json={"role": "assistant", "content": "Let me check.",
                           "metadata": {"tool_calls": calls}}).raise_for_status()
    u = ui()
    page = u.open()
    page.click(f".thread-list li[data-thread='{thread['id']}'] button.open")
    details = u.wait_reply(1).locator("details")
    assert details.locator("summary").inner_text() == "Tool call: get_weather"
    assert details.get_attribute("open") is None  # collapsed
    assert not details.locator("pre").is_visible()
    details.locator("summary").click()
    assert "Paris" in details.locator("pre").inner_text()


def test_api_key_is_asked_once_and_kept(browser, tmp_path):
    folder = scripted_folder(tmp_path / "keyed")
    srv = start_server(folder, args=["--api-key", "s3cret-key"])
    try:
        u = UiPage(browser, srv.url)
        page = u.page
        page.goto(srv.url + "/")
        page.wait_for_selector("#key-dialog[open]")
        page.fill("#key-input", "s3cret-key")
        page.press("#key-input", "Enter")
        page.wait_for_selector("body[data-ready=true]")
        u.send("with a key")
        u.wait_reply(1)
        page.reload()
        page.wait_for_selector("body[data-ready=true]")
        assert not page.is_visible("#key-dialog")
        assert page.locator(".thread-list button.open:has-text('with a key')").count() == 1
        assert not u.errors, u.errors
        u.close()
    finally:
        srv.stop()


def test_switching_threads_mid_stream_saves_the_reply_where_it_belongs(ui, server):
    other = httpx.post(f"{server.base_url}/threads", json={"title": "Elsewhere"}).json()
    u = ui()
    page = u.open()
    u.send("stream:3000:40")
    page.wait_for_function(
        "() => (document.querySelector('article.msg.assistant .bubble')?.textContent || '')"
        ".includes('tok3 ')")
    first = page.evaluate("() => document.querySelector('.thread-list li.active').dataset.thread")
    page.click(f".thread-list li[data-thread='{other['id']}'] button.open")
    page.wait_for_selector(f".thread-list li.active[data-thread='{other['id']}']")

    def saved(thread_id):
        return httpx.get(f"{server.base_url}/threads/{thread_id}/messages?order=asc"
                         ).json()["data"]

    wait_for(lambda: len(saved(first)) == 2, what="the stopped reply saved in its thread")
    assert saved(first)[1]["metadata"]["jan_stopped"] == "true"
    assert saved(other["id"]) == []
    assert page.locator("article.msg").count() == 0
    assert page.is_visible("#send-btn")
