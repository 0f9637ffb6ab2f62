"""The inference engine against the real SmolLM2 model: batching, prefix reuse, exact text."""

from __future__ import annotations

import asyncio
import json

import pytest
from engine_fixtures import STORY, chat, collect, engine_for, spec_for
from waiting import eventually

from jan.sdk.errors import InvalidRequest
from jan.sdk.inference import Delta, Done

pytestmark = pytest.mark.slow


async def test_four_concurrent_greedy_requests_equal_each_alone(smollm_path) -> None:
    prompts = [STORY, "List ten fruits.", "Explain rain to a child in detail.",
               "Write a poem about the sea, then explain it line by line."]
    # A tiny prompt chunk makes batches mix prompt chunks with generated tokens.
    async with engine_for({"prompt_chunk": 4}) as engine:
        spec = spec_for(smollm_path)
        alone = [await collect(engine, spec, chat(p, max_tokens=40)) for p in prompts]
        together = await asyncio.gather(
            *(collect(engine, spec, chat(p, max_tokens=40)) for p in prompts))
    for (a_text, a_done), (t_text, t_done) in zip(alone, together, strict=True):
        assert t_text == a_text
        assert t_done.usage.completion_tokens == a_done.usage.completion_tokens
    assert all(a_text for a_text, _ in alone)


async def test_six_requests_on_four_slots_complete_in_admission_order(smollm_path) -> None:
    async with engine_for() as engine:
        spec = spec_for(smollm_path, n_parallel=4)
        await engine.load(spec)
        finished: list[int] = []
        first_token: dict[int, int] = {}

        async def one(i: int) -> None:
            async for ev in engine.generate(spec, chat(STORY, max_tokens=12)):
                if isinstance(ev, Delta):
                    first_token.setdefault(i, len(finished))
                elif isinstance(ev, Done):
                    assert ev.finish_reason == "length"
                    finished.append(i)

        tasks = []
        for i in range(6):
            tasks.append(asyncio.create_task(one(i)))
            await asyncio.sleep(0)  # admission order = creation order
        await asyncio.wait_for(asyncio.gather(*tasks), 120)
    assert finished == [0, 1, 2, 3, 4, 5]
    # The last two waited for a slot: their first token came after others had finished.
    assert first_token[4] >= 1 and first_token[5] >= 1


async def test_cancelled_stream_frees_its_slot_for_a_waiter(smollm_path) -> None:
    async with engine_for() as engine:
        spec = spec_for(smollm_path, n_parallel=1)
        long_gen = engine.generate(spec, chat(STORY, max_tokens=900))
        assert isinstance(await long_gen.__anext__(), Delta)
        waiter = asyncio.create_task(collect(engine, spec, chat("Say hi.", max_tokens=8)))
        await eventually(lambda: engine.loaded()[0].queued == 1, what="the waiter to queue")
        assert not waiter.done()
        await long_gen.aclose()  # the client went away
        text, done = await asyncio.wait_for(waiter, 30)
        assert done.usage.completion_tokens > 0 and text


async def test_emoji_and_cjk_round_trip_exactly(smollm_path) -> None:
    from llama_cpp import Llama

    prompt = ("<|im_start|>user\nSay hello in Chinese and Japanese, with emoji 🎉🐉"
              "<|im_end|>\n<|im_start|>assistant\n")
    async with engine_for() as engine:
        spec = spec_for(smollm_path)
        pieces = []
        async for ev in engine.generate(spec, chat("", max_tokens=48).model_copy(
                update={"messages": None, "prompt": prompt})):
            if isinstance(ev, Delta):
                pieces.append(ev.text)
    ours = "".join(pieces)
    ref = Llama(str(smollm_path), n_ctx=512, verbose=False)
    expected = ref.create_completion(prompt, max_tokens=48, temperature=0.0)["choices"][0]["text"]
    assert ours == expected.rstrip("\ufffd")
    assert any(ord(c) > 0x2E80 for c in ours), ours  # the test really covers multi-byte text
    assert "\ufffd" not in ours


async def test_second_turn_reuses_the_cached_prefix(smollm_path) -> None:
    system = "You are a careful assistant. " * 20
    async with engine_for() as engine:
        spec = spec_for(smollm_path)
        first = chat("Name three colours.", system=system, max_tokens=24)
        reply, done1 = await collect(engine, spec, first)
        second = first.model_copy(deep=True)
        second.messages += [chat(reply).messages[0].model_copy(update={"role": "assistant"}),
                            chat("And three animals?").messages[0]]
        _, done2 = await collect(engine, spec, second)
    assert done1.usage.cached_tokens == 0
    processed = done2.usage.prompt_tokens - done2.usage.cached_tokens
    assert done2.usage.cached_tokens >= done1.usage.prompt_tokens
    assert processed < done2.usage.prompt_tokens / 4


async def test_context_overflow_is_a_client_error(smollm_path) -> None:
    async with engine_for() as engine:
        spec = spec_for(smollm_path, ctx_len=128)
        with pytest.raises(InvalidRequest) as err:
            await collect(engine, spec, chat("tell me about apples " * 200))
        assert err.value.code == "context_length_exceeded"
        assert err.value.param == "messages"
        # The runner is fine afterwards.
        text, _ = await collect(engine, spec, chat("Hi", max_tokens=4))
        assert text


async def test_stop_strings_and_max_tokens(smollm_path) -> None:
    async with engine_for() as engine:
        spec = spec_for(smollm_path)
        full, done = await collect(engine, spec, chat(STORY, max_tokens=30))
        assert done.finish_reason == "length" and done.usage.completion_tokens == 30
        words = full.split()
        stop = words[len(words) // 2]
        cut, done2 = await collect(engine, spec, chat(STORY, max_tokens=30, stop=[stop]))
        assert done2.finish_reason == "stop"
        assert cut == full[: full.index(stop)]


async def test_json_schema_output_parses_and_matches(smollm_path) -> None:
    schema = {"type": "object",
              "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
              "required": ["name", "age"], "additionalProperties": False}
    async with engine_for() as engine:
        spec = spec_for(smollm_path)
        text, done = await collect(engine, spec, chat(
            "Give me a person with a name and an age as JSON.", max_tokens=60,
            json_schema=schema))
        obj = json.loads(text)
        assert set(obj) == {"name", "age"}
        assert isinstance(obj["name"], str) and isinstance(obj["age"], int)
        assert done.finish_reason == "stop"
        text, _ = await collect(engine, spec, chat("A JSON object about a cat.", max_tokens=80,
                                                   json_object=True, temperature=0.7, seed=7))
        assert text.lstrip().startswith("{")


async def test_embeddings_have_a_consistent_dimension(smollm_path) -> None:
    async with engine_for() as engine:
        spec = spec_for(smollm_path)
        inputs = ["hello", "你好，世界 🎉", "A much longer sentence about embeddings and cats."]
        emb = await engine.embed(spec, inputs)
        again = await engine.embed(spec, ["hello"])
    assert len(emb.vectors) == 3
    assert {len(v) for v in emb.vectors} == {576}
    assert emb.prompt_tokens > 3
    assert emb.vectors[0] != emb.vectors[1]
    # Alone or batched with others: the same vector up to float rounding.
    assert sum(x * y for x, y in zip(again.vectors[0], emb.vectors[0], strict=True)) > 0.9999
    assert sum(x * x for x in emb.vectors[2]) == pytest.approx(1.0, abs=1e-3)


def test_decode_failure_fails_only_the_affected_request(smollm_path) -> None:
    """Step loop in-process: a sequence whose batch entry llama.cpp rejects (an out-of-vocabulary
    token) fails alone; the sequence decoded beside it completes normally."""
    from jan.host.engine.batch import Prepared
    from jan.host.engine.protocol import Failed, Finished, Generate, Load
    from jan.host.engine.runner import Runner

    class Sink:
        def __init__(self) -> None:
            self.events: list = []

        def send(self, msg) -> None:  # noqa: ANN001
            self.events.append(msg)

        def flush(self) -> None:
            pass

    sink = Sink()
    runner = Runner(Load(spec=spec_for(smollm_path, n_parallel=2)), sink)  # type: ignore[arg-type]
    good = runner.prepare(Generate(id=1, request=chat("Hi", max_tokens=5)))
    assert isinstance(good, Prepared)
    bad = Prepared(2, good.request, good.tokens[:-1] + [10**7] + good.tokens[-1:], None, [])
    runner.sched.submit(good)
    runner.sched.submit(bad)
    for _ in range(100):
        if not runner.sched.busy:
            break
        runner.sched.step()
    done = {e.id: e for e in sink.events if isinstance(e, Finished | Failed)}
    assert isinstance(done[1], Finished) and done[1].usage.completion_tokens == 5
    assert isinstance(done[2], Failed) and done[2].code == "decode_failed"
