"""One end-to-end journey in Chromium against a real ``jan serve`` with the real SmolLM2 model:
new chat, streamed reply, stop, regenerate, rename, reload and find the thread, delete."""

from __future__ import annotations

import httpx
import pytest
from conftest import start_server
from ui_fixtures import UiPage, playwright_browser

pytestmark = pytest.mark.slow


def test_real_model_journey(smollm_path, data_folder):
    server = start_server(data_folder)
    try:
        with playwright_browser() as browser:
            u = UiPage(browser, server.url)
            page = u.open()
            # New chat, streamed: stop once some text has arrived; what came is kept.
            u.send("Tell me a long story about a dragon who learns to cook.")
            page.wait_for_function(
                "() => (document.querySelector('article.msg.assistant .bubble.streaming')"
                "?.textContent || '').trim().length > 20", timeout=120000)
            page.click("#stop-btn")
            stopped = u.wait_reply(1)
            assert stopped.locator(".note").inner_text() == "Stopped"
            partial = stopped.locator(".bubble").inner_text().strip()
            assert len(partial) > 20
            thread_id = page.evaluate(
                "() => document.querySelector('.thread-list li.active').dataset.thread")
            saved = httpx.get(f"{server.base_url}/threads/{thread_id}/messages?order=asc"
                              ).json()["data"]
            assert [m["role"] for m in saved] == ["user", "assistant"]
            assert saved[1]["metadata"]["jan_stopped"] == "true"

            # A short limit saved to the thread, then Regenerate replaces the stopped reply.
            page.fill("#p-max_tokens", "24")
            page.click("#panel-form button[type=submit]")
            page.wait_for_selector("#toast.show:has-text('Saved to the thread')")
            page.click("#regenerate")
            page.wait_for_selector("article.msg.assistant .bubble.streaming")
            page.wait_for_selector("#send-btn:not([hidden])", timeout=120000)
            fresh = u.wait_reply(1)
            assert fresh.locator(".note").count() == 0
            after = httpx.get(f"{server.base_url}/threads/{thread_id}/messages?order=asc"
                              ).json()["data"]
            assert len(after) == 2 and after[1]["id"] != saved[1]["id"]
            assert after[1]["content"][0]["text"]["value"].strip()

            # Rename, reload, find it by searching, open it.
            page.click(f".thread-list li[data-thread='{thread_id}'] button[aria-label^=Rename]")
            page.fill(".thread-list input", "Dragon chef")
            page.press(".thread-list input", "Enter")
            page.wait_for_selector(".thread-list button.open:has-text('Dragon chef')")
            page.reload()
            page.wait_for_selector("body[data-ready=true]")
            page.fill("#thread-search", "dragon")
            page.click(".thread-list button.open:has-text('Dragon chef')")
            u.wait_reply(1)
            assert "dragon" in page.locator("article.msg.user .bubble").inner_text()

            # Delete (confirmed), and it stays deleted after a reload.
            page.click(f".thread-list li[data-thread='{thread_id}'] button[aria-label^=Delete]")
            page.click("#confirm-ok")
            page.wait_for_selector(f".thread-list li[data-thread='{thread_id}']",
                                   state="detached")
            page.reload()
            page.wait_for_selector("body[data-ready=true]")
            assert page.locator(f".thread-list li[data-thread='{thread_id}']").count() == 0
            assert httpx.get(f"{server.base_url}/threads/{thread_id}").status_code == 404
            assert not u.errors, u.errors
            u.close()
    finally:
        server.stop()
