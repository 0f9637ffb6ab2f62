"""cached_tokens and the engine's /metrics through the real API (official client, real model):
a conversation resumed after a server restart reports its history as cached."""

from __future__ import annotations

import openai
import pytest
from conftest import asgi_client
from test_chat_api import MODEL, write_model

pytestmark = pytest.mark.slow

SYSTEM = "You are a patient assistant who answers in one short paragraph. " * 8
MESSAGES = [{"role": "system", "content": SYSTEM},
            {"role": "user", "content": "Tell me about lighthouses in two sentences."}]


async def ask(jan) -> tuple[str, object, str]:
    async with asgi_client(jan) as http:
        client = openai.AsyncOpenAI(base_url="http://test/v1", api_key="local", http_client=http,
                                    _strict_response_validation=True, max_retries=0)
        r = await client.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=20)
        metrics = (await http.get("/metrics")).text
    return r.choices[0].message.content, r.usage, metrics


async def test_restart_resumes_from_the_kv_cache_and_reports_cached_tokens(
        make_host, data_folder, smollm_path) -> None:
    write_model(data_folder, smollm_path)
    settings = {"engine": {"kv_cache_min_tokens": 32}}
    async with make_host(settings=settings) as jan:
        _, u1, _ = await ask(jan)
        again, u2, metrics = await ask(jan)  # same slot: its own cache
    assert u1.prompt_tokens_details.cached_tokens == 0
    assert u2.prompt_tokens_details.cached_tokens == u2.prompt_tokens - 1
    assert f'jan_engine_cached_tokens_total{{model="{MODEL}"}} {u2.prompt_tokens - 1}' in metrics
    assert list((data_folder / "cache" / "kv").glob("*.kv"))  # saved on shutdown
    async with make_host(settings=settings) as jan:  # a restarted server
        resumed, u3, metrics = await ask(jan)
    # The restored state is the slot's own, byte for byte: the text is the one the conversation
    # gets when it keeps its slot. (Re-processing from scratch may differ at a near tie: one
    # token decoded alone is not bit-identical to the same token inside a prompt batch; the
    # engine's in-slot reuse has always had that property, as has llama-server's cache.)
    assert resumed == again
    assert u3.prompt_tokens_details.cached_tokens == u3.prompt_tokens - 1
    assert f'jan_engine_restored_tokens_total{{model="{MODEL}"}} {u3.prompt_tokens - 1}' \
        in metrics
