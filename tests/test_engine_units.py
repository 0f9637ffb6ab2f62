"""Fast tests of the engine's pure parts: text output, prompt fallbacks, protocol, settings."""

from __future__ import annotations

import pytest

from jan.host.engine import EngineSettings, create_service
from jan.host.engine.batch import common_prefix
from jan.host.engine.budget import StepBudget
from jan.host.engine.prompts import _chatml, _jan_template
from jan.host.engine.protocol import COMMAND, EVENT, Failed, Generate, TokenText, encode
from jan.host.engine.textout import TextOut
from jan.sdk.inference import ChatMessage, GenerationRequest


def feed_all(out: TextOut, chunks: list[bytes]) -> str:
    return "".join(out.feed(c) for c in chunks) + out.flush()


def test_utf8_split_across_tokens_is_reassembled() -> None:
    data = "héllo 你好 🎉!".encode()
    chunks = [data[i:i + 1] for i in range(len(data))]  # worst case: one byte per token
    out = TextOut([])
    emitted = [out.feed(c) for c in chunks]
    assert "".join(emitted) == "héllo 你好 🎉!"
    assert all("\ufffd" not in e for e in emitted)


def test_partial_character_at_the_end_is_dropped_not_garbled() -> None:
    out = TextOut([])
    assert out.feed(b"ok ") == "ok "
    assert out.feed("🎉".encode()[:2]) == ""
    assert out.flush() == ""


def test_stop_string_split_over_tokens_never_leaks() -> None:
    out = TextOut(["STOP"])
    parts = [out.feed(c) for c in [b"abc S", b"T", b"O", b"P tail"]]
    assert "".join(parts) == "abc "
    assert out.stopped


def test_held_back_prefix_is_released_when_it_is_not_a_stop() -> None:
    out = TextOut(["</end>"])
    assert out.feed(b"a </e") == "a "
    assert out.feed(b"x") == "</ex"
    assert not out.stopped
    assert out.feed(b" </") == " "
    assert out.flush() == "</"  # generation ended (length): the held text is not lost


def test_earliest_of_several_stops_wins() -> None:
    out = TextOut(["world", "lo w"])
    assert feed_all(out, [b"hello world"]) == "hel"


def test_common_prefix() -> None:
    assert common_prefix([1, 2, 3], [1, 2, 4]) == 2
    assert common_prefix([], [1]) == 0
    assert common_prefix([5, 6], [5, 6]) == 2


def test_jan_prompt_template_multi_turn() -> None:
    tpl = "<s>SYS {system_message}\nUSER {prompt}\nBOT "
    msgs = [ChatMessage(role="system", content="be brief"), ChatMessage(role="user", content="hi"),
            ChatMessage(role="assistant", content="hello"), ChatMessage(role="user", content="?")]
    assert _jan_template(tpl, msgs) == (
        "<s>SYS be brief\nUSER hi\nBOT hello\nUSER ?\nBOT ")


def test_chatml_fallback() -> None:
    text = _chatml([ChatMessage(role="user", content="hi")])
    assert text == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"


def test_protocol_round_trip_and_rejects_unknown() -> None:
    cmd = Generate(id=3, request=GenerationRequest(prompt="x", stop=["\n"]))
    assert COMMAND.validate_json(encode(cmd)) == cmd
    ev = TokenText(id=3, text="你好")
    assert EVENT.validate_json(encode(ev)) == ev
    assert isinstance(EVENT.validate_json(encode(Failed(id=1, message="m"))), Failed)
    with pytest.raises(ValueError):
        EVENT.validate_json(b'{"type": "pickle", "id": 1}')


def test_settings_defaults_and_validation() -> None:
    s = EngineSettings()
    assert (s.keep_alive, s.queue_size) == (300.0, 64)
    assert s.budget_bytes() > 0
    assert EngineSettings(memory_budget_mb=10).budget_bytes() == 10 * 2**20
    with pytest.raises(ValueError):
        EngineSettings(queue_size=-1)
    engine = create_service(settings={"keep_alive": 5, "unknown": 1}, events=None, log=None)
    assert engine.settings.keep_alive == 5
    assert engine.loaded() == []


def test_line_reader_batches_what_arrived_together() -> None:
    import os

    from jan.host.engine.runner import LineReader

    r, w = os.pipe()
    try:
        os.write(w, b'{"a":1}\n{"b":2}\n{"c"')
        lines = LineReader(r)
        assert lines.next_batch() == [b'{"a":1}', b'{"b":2}']
        os.write(w, b':3}\n')
        assert lines.next_batch() == [b'{"c":3}']
        os.close(w)
        w = -1
        assert lines.next_batch() is None
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)


def test_step_budget_follows_measured_decode_cost() -> None:
    budget = StepBudget(initial=64, step_ms=200.0, n_batch=512)
    assert budget.prompt_tokens(generating=False) == 512  # nobody waits: whole batches
    assert budget.prompt_tokens(generating=True) == 64  # nothing measured yet
    budget.measured(tokens=8, seconds=1.0)  # too small a step to say anything
    assert budget.prompt_tokens(generating=True) == 64
    budget.measured(tokens=100, seconds=0.5)  # 5 ms a token: 200 ms hold 40
    assert budget.prompt_tokens(generating=True) == 40
    for _ in range(50):
        budget.measured(tokens=400, seconds=0.04)  # a fast machine: capped by the batch
    assert budget.prompt_tokens(generating=True) == 512
    slow = StepBudget(initial=64, step_ms=200.0, n_batch=512)
    slow.measured(tokens=50, seconds=5.0)  # 100 ms a token: prompts still progress
    assert slow.prompt_tokens(generating=True) == 16
