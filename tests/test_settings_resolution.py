"""Chat completions, assistant runs and assistant code resolve settings by the same rule.

The engine is replaced by one that records the ``GenerationRequest`` it is asked for, so the
test sees exactly what each path resolved from model.json, assistant.json and the request.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

from conftest import asgi_client
from sandbox_fixtures import (
    FAST,
    MODEL,
    client_for,
    jan_cli_env,
    run_text,
    write_assistant,
    write_model,
)

from jan.sdk.generation import SETTINGS_KEYS, generation_request, resolve_settings
from jan.sdk.inference import Delta, Done, GenerationRequest, LoadSpec, Usage
from jan.sdk.services import INFERENCE

ASKED = {"temperature": 0.3, "max_tokens": 5}
CODE = """
from jan.sdk.assistant import events, models, thread

@events.on("assistant:{id}")
def reply(event):
    return models.chat(thread.messages(), temperature=0.3, max_tokens=5)
"""


class RecordingEngine:
    def __init__(self) -> None:
        self.requests: list[GenerationRequest] = []

    async def generate(self, spec: LoadSpec, request: GenerationRequest
                       ) -> AsyncIterator[Delta | Done]:
        self.requests.append(request)
        yield Delta(text="recorded")
        yield Done(usage=Usage(prompt_tokens=3, completion_tokens=1, total_tokens=4))

    def loaded(self) -> list[Any]:
        return []


def sampling(request: GenerationRequest) -> dict[str, Any]:
    return request.model_dump(include={*SETTINGS_KEYS, "stop"})


def test_later_layers_win_and_stops_accumulate():
    fields = resolve_settings({"temperature": 0.9, "top_k": 7, "stop": ["<m>"]},
                              {"top_p": 0.5, "stop": "<a>"}, {"temperature": None},
                              {"temperature": 0.3, "stop": ["<m>", "<r>"], "stream": True})
    assert fields == {"temperature": 0.3, "top_k": 7, "top_p": 0.5,
                      "stop": ["<m>", "<a>", "<r>"]}
    req = generation_request({"top_k": 7}, {"top_k": 2}, messages=[])
    assert req.top_k == 2 and req.messages == []


async def test_chat_runs_and_code_assistants_resolve_alike(make_host, data_folder, smollm_path):
    write_model(data_folder, smollm_path, temperature=0.9, top_k=7, stop=["<m>"])
    assistant_json = {"model": MODEL, "instructions": "Be brief.",
                      "models": [{"parameters": {"top_p": 0.5, "stop": ["<a>"]}}]}
    write_assistant(data_folder, "plain", **assistant_json)
    write_assistant(data_folder, "code", CODE.format(id="code"), **assistant_json)
    engine = RecordingEngine()
    async with make_host(settings=FAST) as jan, asgi_client(jan) as http:
        jan.host.services.provide(INFERENCE, engine, provider="host")
        chat = await http.post("/v1/chat/completions", json={
            "model": MODEL, "messages": [{"role": "user", "content": "hi"}], **ASKED})
        assert chat.status_code == 200, chat.text
        client = client_for(http)
        plain_run, plain_text = await run_text(client, "plain", "hi", temperature=0.3,
                                               max_completion_tokens=5)
        code_run, code_text = await run_text(client, "code", "hi")
    assert plain_run.status == "completed" and plain_text == "recorded"
    assert code_run.status == "completed", code_run.last_error
    assert code_text == "recorded"
    # The run reports the model calls its code made (the engine's usage, summed).
    assert (code_run.usage.prompt_tokens, code_run.usage.completion_tokens) == (3, 1)
    chat_req, plain_req, code_req = engine.requests
    # model.json < request for chat; model.json < assistant < request for both assistants.
    assert sampling(chat_req) == {**sampling(GenerationRequest()), "temperature": 0.3,
                                  "max_tokens": 5, "top_k": 7, "stop": ["<m>"]}
    assert sampling(plain_req) == {**sampling(chat_req), "top_p": 0.5, "stop": ["<m>", "<a>"]}
    assert sampling(code_req) == sampling(plain_req)


async def test_the_scaffolded_code_assistant_caps_its_replies(make_host, data_folder,
                                                             smollm_path):
    # Without a cap the model.json's 4096 would apply: a sampled reply that long can outlast
    # the sandbox's 60 s limit for a call.
    write_model(data_folder, smollm_path, max_tokens=4096)
    subprocess.run([sys.executable, "-m", "jan.host.cli", "assistants", "new", "Capped", "--code",
                    "--model", MODEL, "--data-folder", str(data_folder)],
                   check=True, capture_output=True, timeout=120, env=jan_cli_env())
    engine = RecordingEngine()
    async with make_host(settings=FAST) as jan, asgi_client(jan) as http:
        jan.host.services.provide(INFERENCE, engine, provider="host")
        run, text = await run_text(client_for(http), "capped", "Tell me a very long story.")
    assert run.status == "completed", run.last_error
    assert text == "recorded"
    (request,) = engine.requests
    assert request.max_tokens == 128
