"""The chat extension end to end: the real SmolLM2 model, the real engine, the official client.

Every response goes through ``openai.AsyncOpenAI(_strict_response_validation=True)`` unless a test
needs the raw wire (SSE framing, base64). Greedy sampling (temperature 0) makes outputs
repeatable, which lets tests compare a constrained run with an unconstrained one.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import struct
import subprocess
import sys
from pathlib import Path

import httpx
import openai
import pytest
from conftest import asgi_client, free_port
from waiting import wait_for

pytestmark = pytest.mark.slow
MODEL = "smollm2"
HELLO = [{"role": "user", "content": "Write one sentence about the sea."}]


def write_model(folder: Path, gguf: Path, *, ctx_len: int = 1024, n_parallel: int = 4,
                parameters: dict | None = None) -> None:
    (folder / "models" / MODEL).mkdir(parents=True, exist_ok=True)
    (folder / "models" / MODEL / "model.json").write_text(json.dumps({
        "id": MODEL, "object": "model", "name": "SmolLM2 135M", "format": "gguf",
        "engine": "llama-cpp",
        "settings": {"llama_model_path": str(gguf), "ctx_len": ctx_len, "n_parallel": n_parallel},
        "parameters": parameters or {"temperature": 0},
    }))


@pytest.fixture
async def api(make_host, data_folder, smollm_path):
    """``(openai client, raw httpx client)`` over a host serving SmolLM2 as ``smollm2``."""
    write_model(data_folder, smollm_path)
    async with make_host() as jan, asgi_client(jan) as http:
        client = openai.AsyncOpenAI(base_url="http://test/v1", api_key="local",
                                    http_client=http, _strict_response_validation=True,
                                    max_retries=0)
        yield client, http


async def test_models_and_chat_non_streaming(api):
    client, _ = api
    ids = [m.id async for m in client.models.list()]
    assert MODEL in ids
    r = await client.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=40)
    assert r.object == "chat.completion" and r.model == MODEL
    assert r.choices[0].message.role == "assistant" and r.choices[0].message.content.strip()
    assert r.choices[0].finish_reason in ("stop", "length")
    u = r.usage
    assert u.prompt_tokens > 0 and 0 < u.completion_tokens <= 40
    assert u.total_tokens == u.prompt_tokens + u.completion_tokens
    assert u.prompt_tokens_details.cached_tokens is not None


async def test_streaming_with_usage_matches_non_streaming(api):
    client, _ = api
    whole = await client.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=40)
    stream = await client.chat.completions.create(
        model=MODEL, messages=HELLO, max_tokens=40, stream=True,
        stream_options={"include_usage": True})
    chunks = [c async for c in stream]
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-2].choices[0].finish_reason == whole.choices[0].finish_reason
    assert all(c.choices[0].finish_reason is None for c in chunks[:-2])
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens
    assert all(c.usage is None for c in chunks[:-1])
    text = "".join(c.choices[0].delta.content or "" for c in chunks[:-1])
    assert text == whole.choices[0].message.content
    assert len({c.id for c in chunks}) == 1


async def test_sse_wire_ends_with_done(api):
    _, http = api
    body = {"model": MODEL, "messages": HELLO, "max_tokens": 8, "stream": True}
    async with http.stream("POST", "/v1/chat/completions", json=body) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        lines = [line async for line in r.aiter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    assert all(line.startswith("data: ") for line in lines)


async def test_stop_sequence_cuts_the_same_text(api):
    client, _ = api
    free = await client.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=40)
    text = free.choices[0].message.content
    words = text.split()
    assert len(words) >= 4, text
    stop = " " + words[3]
    cut = await client.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=40,
                                               stop=[stop, "never-seen-zzz"])
    assert cut.choices[0].finish_reason == "stop"
    assert cut.choices[0].message.content == text[: text.index(stop)]


async def test_max_tokens_gives_finish_reason_length(api):
    client, _ = api
    for kw in ({"max_tokens": 3}, {"max_completion_tokens": 3}):
        r = await client.chat.completions.create(model=MODEL, messages=HELLO, **kw)
        assert r.choices[0].finish_reason == "length" and r.usage.completion_tokens == 3


async def test_json_schema_output_parses_and_matches(api):
    client, _ = api
    schema = {
        "type": "object",
        "properties": {"color": {"type": "string", "enum": ["red", "green", "blue"]},
                       "count": {"type": "integer"}},
        "required": ["color", "count"], "additionalProperties": False,
    }
    r = await client.chat.completions.create(
        model=MODEL, max_tokens=60,
        messages=[{"role": "user", "content": "Give a color and a count as JSON."}],
        response_format={"type": "json_schema",
                         "json_schema": {"name": "pick", "schema": schema, "strict": True}})
    data = json.loads(r.choices[0].message.content)
    assert set(data) == {"color", "count"}
    assert data["color"] in ("red", "green", "blue") and isinstance(data["count"], int)
    r = await client.chat.completions.create(
        model=MODEL, max_tokens=60, response_format={"type": "json_object"},
        messages=[{"role": "user", "content": "Describe a cat as JSON."}])
    assert r.choices[0].finish_reason == "length" or isinstance(
        json.loads(r.choices[0].message.content), dict)


async def test_text_completions(api):
    client, _ = api
    r = await client.completions.create(model=MODEL, prompt="1, 2, 3, 4,", max_tokens=6)
    assert r.object == "text_completion" and r.choices[0].text
    assert r.usage.completion_tokens <= 6
    # The official types say finish_reason is never null, but OpenAI streams null until the
    # last chunk (openai-openapi#100); a strict client cannot read such a stream, so: raw.
    loose = client.with_options()
    loose._strict_response_validation = False
    stream = await loose.completions.create(model=MODEL, prompt="1, 2, 3, 4,", max_tokens=6,
                                            stream=True, stream_options={"include_usage": True})
    chunks = [c async for c in stream]
    assert "".join(c.choices[0].text for c in chunks if c.choices) == r.choices[0].text
    assert chunks[-1].usage.completion_tokens == r.usage.completion_tokens
    echo = await client.completions.create(model=MODEL, prompt="1, 2,", max_tokens=2, echo=True)
    assert echo.choices[0].text.startswith("1, 2,")


async def test_embeddings_float_and_base64(api):
    client, http = api
    r = await client.embeddings.create(model=MODEL, input=["hello world", "the sea is blue"],
                                       encoding_format="float")
    assert [d.index for d in r.data] == [0, 1] and r.usage.prompt_tokens > 0
    dims = {len(d.embedding) for d in r.data}
    assert len(dims) == 1 and dims.pop() > 0
    one = await client.embeddings.create(model=MODEL, input="hello world", encoding_format="float")
    assert one.data[0].embedding == pytest.approx(r.data[0].embedding, abs=1e-5)
    raw = await http.post("/v1/embeddings", json={"model": MODEL, "input": "hello world",
                                                  "encoding_format": "base64"})
    packed = base64.b64decode(raw.json()["data"][0]["embedding"])
    floats = struct.unpack(f"<{len(packed) // 4}f", packed)
    assert floats == pytest.approx(one.data[0].embedding, abs=1e-6)
    # Without encoding_format the official client asks for base64 and decodes it itself (its
    # strict mode would check the string against list[float] first, so: a non-strict client).
    loose = client.with_options()
    loose._strict_response_validation = False
    decoded = await loose.embeddings.create(model=MODEL, input="hello world")
    assert decoded.data[0].embedding == pytest.approx(one.data[0].embedding, abs=1e-6)


async def test_errors_are_openai_errors(api):
    client, http = api
    with pytest.raises(openai.NotFoundError) as info:
        await client.chat.completions.create(model="no-such-model", messages=HELLO)
    assert info.value.code == "model_not_found"
    cases = [({"temperature": 7}, "temperature"), ({"n": 3}, "n"),
             ({"logprobs": True}, "logprobs"),
             ({"tools": [{"type": "web_search"}]}, "tools[0].type")]
    for extra, param in cases:
        with pytest.raises(openai.BadRequestError) as info:
            await client.chat.completions.create(model=MODEL, messages=HELLO, **extra)
        assert info.value.param == param
    r = await http.post("/v1/chat/completions", json={"messages": HELLO})
    assert r.status_code == 400 and r.json()["error"]["param"] == "model"
    r = await http.post("/v1/embeddings", json={"model": MODEL, "input": [[1, 2, 3]]})
    assert r.status_code == 400 and r.json()["error"]["param"] == "input"


async def test_context_overflow_is_a_400_streaming_or_not(api):
    client, _ = api
    long = [{"role": "user", "content": "sea " * 3000}]
    for stream in (False, True):
        with pytest.raises(openai.BadRequestError) as info:
            await client.chat.completions.create(model=MODEL, messages=long, stream=stream)
        assert info.value.code == "context_length_exceeded"
    # The server is fine afterwards.
    r = await client.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=2)
    assert r.choices[0].finish_reason == "length"


async def test_four_concurrent_streams_complete_with_full_content(api):
    client, _ = api
    prompts = [[{"role": "user", "content": f"Tell me a fact about the number {i}."}]
               for i in range(4)]
    alone = [await client.chat.completions.create(model=MODEL, messages=p, max_tokens=48)
             for p in prompts]

    async def streamed(messages):
        stream = await client.chat.completions.create(
            model=MODEL, messages=messages, max_tokens=48, stream=True,
            stream_options={"include_usage": True})
        chunks = [c async for c in stream]
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        return text, chunks[-1].usage

    results = await asyncio.gather(*(streamed(p) for p in prompts))
    for (text, usage), single in zip(results, alone, strict=True):
        assert text == single.choices[0].message.content
        assert usage.completion_tokens == single.usage.completion_tokens


async def test_developer_role_and_text_parts(api):
    client, _ = api
    r = await client.chat.completions.create(model=MODEL, max_tokens=5, messages=[
        {"role": "developer", "content": "Answer briefly."},
        {"role": "user", "content": [{"type": "text", "text": "Hi"},
                                     {"type": "text", "text": "there"}]}])
    assert r.choices[0].message.content
    with pytest.raises(openai.BadRequestError) as info:
        await client.chat.completions.create(model=MODEL, messages=[
            {"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": "http://x/y.png"}}]}])
    assert info.value.param == "messages[0].content[0].type"


async def test_full_queue_is_503_with_retry_after(make_host, data_folder, smollm_path):
    write_model(data_folder, smollm_path, n_parallel=1)
    async with make_host(settings={"engine": {"queue_size": 0}}) as jan, \
            asgi_client(jan) as http:
        ok = await http.post("/v1/completions", json={**_count_prompt(), "stream": False,
                                                      "max_tokens": 2})
        assert ok.status_code == 200
        busy = asyncio.create_task(http.post("/v1/completions", json={
            **_count_prompt(), "stream": False, "max_tokens": 800}))
        try:
            for _ in range(100):  # until the long request holds the only slot
                models = (await http.get("/health")).json().get("models", [])
                if any(m["busy"] for m in models):
                    break
                await asyncio.sleep(0.05)
            for stream in (False, True):
                r = await http.post("/v1/chat/completions", json={
                    "model": MODEL, "messages": HELLO, "max_tokens": 2, "stream": stream})
                assert r.status_code == 503, r.text
                assert int(r.headers["retry-after"]) >= 1
                assert r.json()["error"]["code"] == "overloaded"
        finally:
            busy.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await busy


# ---------------------------------------------------------------- real server
def _count_prompt() -> dict:
    # Greedy SmolLM2 keeps counting for hundreds of tokens: a long generation on demand.
    return {"model": MODEL, "prompt": "1, 2, 3, 4, 5, 6, 7, 8,", "max_tokens": 1500,
            "stream": True}


def test_disconnect_frees_the_slot(jan_server, data_folder, smollm_path):
    write_model(data_folder, smollm_path, n_parallel=1)
    server = jan_server()
    with httpx.Client(base_url=server.base_url, timeout=60) as http:
        assert http.post("/completions", json={**_count_prompt(), "stream": False,
                                               "max_tokens": 2}).status_code == 200
        with http.stream("POST", "/completions", json=_count_prompt()) as r:
            assert r.status_code == 200
            seen = 0
            for line in r.iter_lines():
                seen += line.startswith("data: ")
                if seen >= 5:
                    break
        # The single slot was held by the counting stream (1,500 tokens): leaving must free it
        # long before those could be generated, and the next request is served.
        def slot_free() -> bool:
            models = http.get(server.url + "/health").json()["models"]
            return all(m["busy"] == 0 for m in models)
        wait_for(slot_free, timeout=5, what="the disconnected stream's slot to be freed")
        r = http.post("/chat/completions", json={"model": MODEL, "messages": HELLO,
                                                 "max_tokens": 4}, timeout=30)
        assert r.status_code == 200 and r.json()["choices"][0]["finish_reason"] == "length"


def _jan_chat(server_url: str, folder: Path, stdin: str, *extra: str
              ) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "jan.host.cli", "chat", "--data-folder", str(folder),
           "--url", server_url, *extra]
    return subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=180)


def test_jan_chat_streams_replies_and_saves_a_thread(jan_server, data_folder, smollm_path,
                                                     tmp_path):
    write_model(data_folder, smollm_path)
    server = jan_server()
    cli_folder = tmp_path / "cli-data"  # the CLI's own host must not touch the server's folder
    cli_folder.mkdir()
    done = _jan_chat(server.url, cli_folder, "Hello there!\n\nWhat is the sea?\n/exit\nignored\n",
                     "--model", MODEL, "--max-tokens", "12")
    assert done.returncode == 0, done.stderr
    saved = [line for line in done.stderr.splitlines() if line.startswith("Saved as thread ")]
    assert saved, done.stderr
    thread_id = saved[0].split()[-1]
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        thread = http.get(f"/threads/{thread_id}").json()
        assert thread["id"] == thread_id
        messages = http.get(f"/threads/{thread_id}/messages", params={"order": "asc"}).json()
    texts = [(m["role"], m["content"][0]["text"]["value"]) for m in messages["data"]]
    assert [role for role, _ in texts] == ["user", "assistant", "user", "assistant"]
    assert texts[0][1] == "Hello there!" and texts[2][1] == "What is the sea?"
    # stdout (not a tty: no prompts) is exactly the two streamed replies, as saved.
    assert texts[1][1] and texts[3][1]
    assert done.stdout == f"{texts[1][1]}\n{texts[3][1]}\n"


def test_jan_chat_without_a_server_says_so(data_folder):
    done = _jan_chat(f"http://127.0.0.1:{free_port()}", data_folder, "hi\n")
    assert done.returncode == 1
    assert "no jan server" in done.stderr and "Traceback" not in done.stderr
