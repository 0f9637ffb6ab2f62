"""Replies that come from runs, in the browser.

Server tool approvals: a thread whose assistant uses a server tool replies through a run; when
the run pauses, the UI shows the tool, its server and its full arguments (as text, never HTML)
with Approve / Always allow / Deny, and the decision goes through ``/v1/tools/approvals``. The
scripted engine calls its own ``ui_echo`` tool (which logs every real call), so the test sees
that nothing runs before approval and a denied call never runs. And the file_citation
annotations of a file_search reply are shown as its sources."""

from __future__ import annotations

import json

import httpx
import pytest
import ui_fixtures
from ui_fixtures import axe_serious
from waiting import wait_for

pytestmark = pytest.mark.slow
browser, server, ui = ui_fixtures.browser, ui_fixtures.server, ui_fixtures.ui


def tool_calls(server) -> list[dict]:
    path = server.folder / "storage" / "scripted-engine" / "tool-calls.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture
def tool_assistant(server):
    # Server tools are listed in assistant.json (the assistants API takes OpenAI's tool types).
    folder = server.folder / "assistants" / "echo-helper"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "assistant.json").write_text(json.dumps({
        "id": "echo-helper", "name": "Echo helper", "model": "*", "instructions": "Use tools.",
        "tools": [{"type": "server", "name": "ui_echo"}]}))
    got = httpx.get(f"{server.base_url}/assistants/echo-helper")
    assert got.status_code == 200 and got.json()["jan_server_tools"], got.text
    return "echo-helper"


def ask(u, page, assistant_id: str, text: str) -> None:
    page.select_option("#p-assistant", assistant_id)
    page.click("#panel-form button[type=submit]")
    page.wait_for_selector("#toast.show:has-text('Saved')")
    u.send(text)


def test_server_tool_call_waits_for_approval_in_the_ui(ui, server, tool_assistant):
    u = ui()
    page = u.open()
    hostile = '<img src=x onerror="window.__xss=1">'
    ask(u, page, tool_assistant, "tool:ui_echo:" + json.dumps({"text": hostile, "n": 2}))
    card = page.locator(".approval[data-status=pending]")
    card.wait_for(timeout=30000)
    assert card.locator(".tool-name").inner_text() == "ui_echo"
    assert "from scripted" in card.inner_text()
    shown = json.loads(card.locator("pre.args").inner_text())
    assert shown == {"text": hostile, "n": 2}  # full arguments, shown as text
    assert page.locator("#messages img").count() == 0
    assert tool_calls(server) == [], "nothing runs before a decision"
    assert page.evaluate("document.activeElement.textContent") == "Approve"
    assert not axe_serious(page)
    page.keyboard.press("Enter")  # approve from the keyboard: focus is on Approve
    page.wait_for_selector("#messages :text('Tool said: echo')", timeout=30000)
    assert tool_calls(server) == [{"text": hostile, "n": 2}]
    assert page.evaluate("window.__xss") is None
    # The tool call is kept in the thread and shown collapsed after the reload of the thread.
    assert page.locator("#messages details summary:has-text('ui_echo')").count() >= 1
    # The same tool again, denied this time: the run ends, the tool never ran.
    u.send("tool:ui_echo:" + json.dumps({"text": "second"}))
    page.locator(".approval[data-status=pending]").wait_for(timeout=30000)
    approval_id = page.locator(".approval").last.get_attribute("data-approval")
    page.click(".approval[data-status=pending] button:has-text('Deny')")
    page.wait_for_selector("#send-btn:not([hidden])", timeout=30000)
    decided = httpx.get(f"{server.base_url}/tools/approvals/{approval_id}").json()
    assert decided["status"] == "denied" and decided["arguments"] == {"text": "second"}
    assert tool_calls(server) == [{"text": hostile, "n": 2}]


def test_always_allow_sets_the_policy_and_later_calls_do_not_ask(ui, server, tool_assistant):
    u = ui()
    page = u.open()
    ask(u, page, tool_assistant, 'tool:ui_echo:{"text": "one"}')
    page.locator(".approval[data-status=pending]").wait_for(timeout=30000)
    before = len(tool_calls(server))
    page.click(".approval button:has-text('Always allow')")
    page.wait_for_selector("#messages :text('Tool said: echo')", timeout=30000)
    tools = httpx.get(f"{server.base_url}/tools").json()["data"]
    assert next(t for t in tools if t["name"] == "ui_echo")["policy"] == "always"
    u.send('tool:ui_echo:{"text": "two"}')
    wait_for(lambda: len(tool_calls(server)) == before + 2, timeout=30, what="the 2nd call")
    page.wait_for_selector("#send-btn:not([hidden])", timeout=30000)
    assert page.locator(".approval").count() == 0  # not asked again


def test_file_citations_are_shown_as_sources_and_stay_inert(ui, server):
    """A reply a file_search run saved (text with 【i:j†file】 markers and file_citation
    annotations) lists its sources: file name and quote, as text."""
    thread = httpx.post(f"{server.base_url}/threads", json={"title": "Cited"}).json()
    base = f"{server.base_url}/threads/{thread['id']}/messages"
    httpx.post(base, json={"role": "user", "content": "What does the manual say?"})
    httpx.post(base, json={"role": "assistant", "content": "placeholder"})
    path = server.folder / "threads" / thread["id"] / "messages.jsonl"
    lines = path.read_text().splitlines()
    reply = json.loads(lines[-1])
    marker = "【0:0†<b>manual</b>.md】"
    text = "Press the red button. " + marker
    quote = 'Always press the red button. <img src=x onerror="window.__xss=1">'
    reply["content"] = [{"type": "text", "text": {"value": text, "annotations": [{
        "type": "file_citation", "text": marker, "start_index": len(text) - len(marker),
        "end_index": len(text), "file_citation": {"file_id": "file-abc", "quote": quote}}]}}]
    path.write_text("\n".join([*lines[:-1], json.dumps(reply, ensure_ascii=False)]) + "\n")
    u = ui()
    page = u.open()
    page.click(f".thread-list li[data-thread='{thread['id']}'] button.open")
    answer = u.wait_reply(1)
    assert answer.locator(".bubble > p").first.inner_text() == "Press the red button. [1]"
    source = answer.locator("aside.citations li[data-file=file-abc]")
    assert source.locator("summary").inner_text() == "[1] <b>manual</b>.md"
    source.locator("summary").click()
    assert source.locator("blockquote").inner_text() == quote
    assert page.locator("#messages img, #messages b").count() == 0
    assert page.evaluate("window.__xss") is None
    assert not axe_serious(page)


def test_code_assistant_card_shows_sandbox_level_and_last_error(ui, server):
    """A code assistant whose handler raises: after a failed run, the assistants page shows
    its isolation level and the error (as text)."""
    folder = server.folder / "assistants" / "broken-code"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "assistant.json").write_text(json.dumps({"id": "broken-code", "name": "Broken"}))
    (folder / "index.py").write_text(
        "from jan.sdk.assistant import assistant, events\n\n\n"
        "@events.on(f'assistant:{assistant.id}')\n"
        "def reply(event):\n"
        "    raise ValueError('<b>no luck</b>')\n")
    with httpx.Client(base_url=server.base_url, timeout=60) as http:
        run = http.post("/threads/runs", json={
            "assistant_id": "broken-code",
            "thread": {"messages": [{"role": "user", "content": "go"}]}}).json()
        assert "id" in run, run

        def failed():
            got = http.get(f"/threads/{run['thread_id']}/runs/{run['id']}").json()
            return got["status"] == "failed"
        wait_for(failed, what="the code assistant's run to fail")
    page = ui().open("#/assistants")
    badge = page.locator(".card[data-assistant=broken-code] [data-sandbox]")
    badge.wait_for()
    text = badge.inner_text()
    assert "code · sandbox" in text and "not probed yet" not in text
    assert "last error (handler_error): ValueError: <b>no luck</b>" in text
    assert page.locator(".card[data-assistant=broken-code] b").count() == 0
