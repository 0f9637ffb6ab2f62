"""A running `jan serve` follows its data folder: GGUF drop-in and removal, assistant edits."""

from __future__ import annotations

import shutil
import textwrap
import time

import httpx
import openai
import pytest
from sandbox_fixtures import write_assistant
from waiting import wait_for


def model_ids(url: str) -> set[str]:
    return {m["id"] for m in httpx.get(url + "/v1/models").json()["data"]}


def test_gguf_dropped_in_appears_and_removed_folder_disappears(jan_server, data_folder,
                                                              smollm_path):
    server = jan_server()
    before = model_ids(server.url)
    partial = data_folder / "models" / "tiny-copy.gguf"
    with smollm_path.open("rb") as src, partial.open("wb") as dst:
        dst.write(src.read(1_000_000))  # a copy still in progress
        dst.flush()
        time.sleep(1.0)
        assert model_ids(server.url) == before, "a half-copied GGUF must not be imported"
        shutil.copyfileobj(src, dst)
    assert wait_for(lambda: len(model_ids(server.url) - before) == 1), server.log()
    (new_id,) = model_ids(server.url) - before
    folder = data_folder / "models" / new_id
    assert (folder / "model.json").is_file() and not partial.exists()
    shutil.rmtree(folder)
    assert wait_for(lambda: new_id not in model_ids(server.url)), server.log()


CODE = """
    from jan.sdk.assistant import events

    @events.on("assistant:editable")
    def reply(event):
        return "{word}"
"""


@pytest.mark.slow
def test_assistant_code_edit_is_used_by_the_next_run(jan_server, data_folder):
    folder = write_assistant(data_folder, "editable", CODE.format(word="first"))
    server = jan_server()
    client = openai.OpenAI(base_url=server.base_url, api_key="local", max_retries=0,
                           _strict_response_validation=True)

    def run_reply() -> str:
        thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
        run = client.beta.threads.runs.create_and_poll(thread_id=thread.id,
                                                       assistant_id="editable",
                                                       poll_interval_ms=50)
        assert run.status == "completed", run.last_error
        messages = client.beta.threads.messages.list(thread_id=thread.id, order="desc")
        return messages.data[0].content[0].text.value

    assert run_reply() == "first"
    (folder / "index.py").write_text(textwrap.dedent(CODE.format(word="second")))
    assert wait_for(lambda: run_reply() == "second", timeout=15)
