"""The engine survives anything a request can carry (real SmolLM2 model, real runner).

``presence_penalty: 0.5`` used to crash the runner (the penalty sampler was called with the
wrong arguments for llama-cpp-python 0.3.36), ending every other client's stream on that model.
Load settings were unbounded (any ``ctx_len``/``n_parallel`` grew the runner, bad ones gave 503).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest
from conftest import asgi_client

pytestmark = pytest.mark.slow
MODEL = "smollm2"
LONG = [{"role": "user", "content": "Count from 1 to 200, one number per line."}]
HELLO = [{"role": "user", "content": "Say something about cats."}]

SAMPLING = [
    {"temperature": 0}, {"temperature": 0.7}, {"temperature": 2},
    {"top_p": 0.1}, {"top_p": 0}, {"top_p": 1},
    {"top_k": 1}, {"top_k": 0}, {"top_k": 2**31 + 5},
    {"min_p": 0.5}, {"min_p": 1},
    {"frequency_penalty": 2}, {"frequency_penalty": -2}, {"frequency_penalty": 0.5},
    {"presence_penalty": 0.5}, {"presence_penalty": -2}, {"presence_penalty": 2},
    {"repeat_penalty": 1.3}, {"repeat_penalty": 0.5}, {"repeat_penalty": 1e-6},
    {"seed": 0}, {"seed": -1}, {"seed": 2**64 + 3},
    {"max_tokens": 1}, {"stop": ["\n"]},
    {"temperature": 1.5, "top_p": 0.9, "top_k": 20, "min_p": 0.1, "frequency_penalty": 1.0,
     "presence_penalty": 0.5, "repeat_penalty": 1.2, "seed": 42, "stop": ["zzz"]},
    {"temperature": 0, "frequency_penalty": -2, "presence_penalty": 2, "repeat_penalty": 2},
]


def write_model(folder: Path, gguf: Path) -> None:
    (folder / "models" / MODEL).mkdir(parents=True, exist_ok=True)
    (folder / "models" / MODEL / "model.json").write_text(json.dumps({
        "id": MODEL, "object": "model", "name": "SmolLM2 135M", "format": "gguf",
        "engine": "llama-cpp",
        "settings": {"llama_model_path": str(gguf), "ctx_len": 1024, "n_parallel": 4},
        "parameters": {"temperature": 0},
    }))


@pytest.fixture
async def http(jan_server, data_folder, smollm_path):
    """A real ``jan serve`` (ASGI test transports buffer whole responses: no concurrency)."""
    write_model(data_folder, smollm_path)
    server = jan_server()
    async with httpx.AsyncClient(base_url=server.url, timeout=300) as c:
        yield c


async def stream_text(c: httpx.AsyncClient, started: asyncio.Event, **body) -> tuple[str, str]:
    """The streamed text and finish reason; any error event fails the test."""
    parts, finish = [], None
    async with c.stream("POST", "/v1/chat/completions", json={
            "model": MODEL, "stream": True, **body}) as r:
        assert r.status_code == 200, await r.aread()
        async for line in r.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            assert "error" not in chunk, chunk
            started.set()
            choice = chunk["choices"][0]
            parts.append(choice["delta"].get("content") or "")
            finish = choice["finish_reason"] or finish
    return "".join(parts), finish


async def test_every_sampling_parameter_alone_and_combined_beside_a_stream(http):
    c = http
    body = {"messages": LONG, "max_tokens": 48, "temperature": 0}
    alone = await c.post("/v1/chat/completions", json={"model": MODEL, **body})
    assert alone.status_code == 200, alone.text
    started = asyncio.Event()
    stream = asyncio.create_task(stream_text(c, started, **body))
    await asyncio.wait_for(started.wait(), 120)
    for i, params in enumerate(SAMPLING):
        route, extra = (("/v1/chat/completions", {"messages": HELLO}) if i % 2 == 0
                        else ("/v1/completions", {"prompt": "Cats are"}))
        r = await c.post(route, json={"model": MODEL, "max_tokens": 4, **extra, **params})
        assert r.status_code == 200, (route, params, r.text)
        assert not stream.done() or stream.exception() is None, params
    text, finish = await stream
    assert finish in ("stop", "length")
    assert text == alone.json()["choices"][0]["message"]["content"]


async def test_same_seed_same_text_with_penalties(http):
    body = {"model": MODEL, "messages": HELLO, "max_tokens": 8, "temperature": 1.0,
            "seed": 1234, "presence_penalty": 1.0, "frequency_penalty": 0.5}
    texts = []
    for _ in range(2):
        r = await http.post("/v1/chat/completions", json=body)
        assert r.status_code == 200, r.text
        texts.append(r.json()["choices"][0]["message"]["content"])
    assert texts[0] == texts[1]


LOAD_CASES = [
    ({"ctx_len": 10_000_000}, "ctx_len"),
    ({"ctx_len": 0}, "ctx_len"),
    ({"ctx_len": -5}, "ctx_len"),
    ({"n_parallel": 0}, "n_parallel"),
    ({"n_parallel": 100_000}, "n_parallel"),
    ({"ctx_len": 8192, "n_parallel": 256}, "n_parallel"),
    ({"cpu_threads": 0}, "cpu_threads"),
    ({"cpu_threads": 100_000}, "cpu_threads"),
    ({"ngl": -7}, "ngl"),
    ({"ctx_len": "big"}, "ctx_len"),
]


async def test_load_settings_out_of_bounds_are_a_400_naming_the_field(make_host, data_folder,
                                                                      smollm_path):
    write_model(data_folder, smollm_path)
    async with make_host() as jan, asgi_client(jan) as c:
        for body, param in LOAD_CASES:
            r = await c.post(f"/v1/models/{MODEL}/start", json=body)
            assert r.status_code == 400, (body, r.text)
            assert r.json()["error"]["param"] == param, body
            assert param in r.json()["error"]["message"]
        assert not (await c.get("/health")).json().get("models"), "nothing may be loaded"
        r = await c.post(f"/v1/models/{MODEL}/start", json={"ctx_len": 512, "n_parallel": 2})
        assert r.status_code == 200, r.text


async def test_load_beyond_the_memory_budget_is_a_400(make_host, data_folder, smollm_path):
    write_model(data_folder, smollm_path)
    settings = {"engine": {"memory_budget_mb": 300}}
    async with make_host(settings=settings) as jan, asgi_client(jan) as c:
        r = await c.post(f"/v1/models/{MODEL}/start", json={"ctx_len": 8192, "n_parallel": 8})
        assert r.status_code == 400, r.text
        err = r.json()["error"]
        assert err["param"] == "n_parallel" and "memory budget" in err["message"]
        r = await c.post(f"/v1/models/{MODEL}/start", json={"ctx_len": 1024, "n_parallel": 2})
        assert r.status_code == 200, r.text


def test_an_unexpected_error_in_the_step_loop_fails_only_its_request(smollm_path, monkeypatch):
    """The scheduler itself, on the real model: one sequence's sampler blows up mid-stream."""
    from jan.host.engine import batch
    from jan.host.engine.native import Context, Model, init_backend
    from jan.host.engine.protocol import Failed, Finished
    from jan.sdk.inference import GenerationRequest

    init_backend()
    model = Model(str(smollm_path))
    ctx = Context(model, n_ctx=512, n_seq=2, n_batch=128, n_threads=2)
    events: list = []
    sched = batch.Scheduler(model, ctx, 2, 16, events.append)
    real_sample = batch.Sampler.sample

    def sample(self, ctx_ptr, idx):  # noqa: ANN001
        if getattr(self, "doomed", False):
            raise ZeroDivisionError("boom")
        return real_sample(self, ctx_ptr, idx)

    monkeypatch.setattr(batch.Sampler, "sample", sample)
    tokens = model.tokenize("Once upon a time", add_special=True, parse_special=False)
    for i in (1, 2):
        req = GenerationRequest(prompt="x", max_tokens=8, temperature=0)
        sched.submit(batch.Prepared(i, req, tokens, None, []))
    sched.step()  # admits both
    sched.active[2].sampler.doomed = True
    steps = 0
    while sched.busy and steps < 100:
        sched.step()
        steps += 1
    ends = {e.id: e for e in events if isinstance(e, Failed | Finished)}
    assert isinstance(ends[1], Finished) and ends[1].usage.completion_tokens == 8
    assert isinstance(ends[2], Failed) and ends[2].code == "generation_failed"
    sched.submit(batch.Prepared(3, GenerationRequest(prompt="x", max_tokens=3, temperature=0),
                                tokens, None, []))
    while sched.busy:
        sched.step()
    assert isinstance(events[-1], Finished) and events[-1].id == 3
    ctx.free()
    model.free()
