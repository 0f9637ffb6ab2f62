"""Tool-calling pieces that need no model: the sandbox's RPC params, the assistant SDK's message
shaping, and the shared dangling-tool-turn check."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from jan.host.sandbox.rpc import ChatParams
from jan.sdk import assistant
from jan.sdk.inference import ChatMessage, ToolCall, dangling_tool_message

TOOL = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
CALL = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}


def test_assistant_sdk_messages_keep_tool_turns():
    msgs = assistant._as_messages([
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": None, "tool_calls": [CALL]},
        {"role": "tool", "tool_call_id": "call_1", "content": 7}])
    assert msgs[1] == {"role": "assistant", "content": None,
                       "tool_calls": [{"id": "call_1", "name": "f", "arguments": "{}"}]}
    assert msgs[2] == {"role": "tool", "content": "7", "tool_call_id": "call_1"}
    params = ChatParams.model_validate({"messages": msgs, "tools": [TOOL],
                                        "tool_choice": "required"})
    assert params.tools[0].function.name == "f"
    assert params.messages[1].tool_calls[0].id == "call_1"


def test_sandbox_chat_params_refuse_bad_tool_fields():
    with pytest.raises(ValidationError):
        ChatParams.model_validate({"messages": [{"role": "user", "content": "x"}],
                                   "tools": [{"type": "code", "function": {"name": "f"}}]})
    with pytest.raises(ValidationError):
        ChatParams.model_validate({"messages": [{"role": "function", "content": "x"}]})
    with pytest.raises(ValidationError):
        ChatParams.model_validate({"messages": [{"role": "user", "content": "x"}],
                                   "tool_choice": "sometimes"})


def test_dangling_tool_message():
    call = ToolCall(id="c1", name="f", arguments="{}")
    ok = [ChatMessage(role="user", content="q"),
          ChatMessage(role="assistant", tool_calls=[call]),
          ChatMessage(role="tool", tool_call_id="c1", content="r")]
    assert dangling_tool_message(ok) is None
    assert dangling_tool_message([*ok, ChatMessage(role="tool", tool_call_id="c1")]) == 3
    assert dangling_tool_message([ChatMessage(role="tool", tool_call_id="x")]) == 0


@pytest.mark.slow
def test_lazy_grammar_constrains_only_after_the_trigger(smollm_path):
    """``auto``'s mechanism: free text, then the grammar from the trigger on (real model)."""
    from jan.host.engine.native import Context, Model, init_backend
    from jan.host.engine.sampling import Sampler
    from jan.sdk.inference import GenerationRequest

    init_backend()
    model = Model(str(smollm_path))
    ctx = Context(model, n_ctx=512, n_seq=1, n_batch=512, n_threads=2)
    prompt = ("<|im_start|>user\nSay: Hello there, how are you?<|im_end|>\n"
              "<|im_start|>assistant\n")
    toks = model.tokenize(prompt, add_special=False, parse_special=True)
    sampler = Sampler(model, GenerationRequest(prompt=prompt, temperature=0),
                      'root ::= "Hel" [a-z]* " ZZZ QQQ" "."\n', lazy=[r"[\s\S]*?(Hel)[\s\S]*"])
    try:
        ctx.clear_batch()
        idx = ctx.add_many(toks, 0, 0, True)
        assert ctx.decode() == 0
        pos, out = len(toks), b""
        for _ in range(20):
            tok = sampler.sample(ctx.ptr, idx)
            if model.is_eog(tok):
                break
            out += model.piece(tok)
            ctx.clear_batch()
            idx = ctx.add(tok, pos, 0, True)
            pos += 1
            assert ctx.decode() == 0
    finally:
        sampler.free()
        ctx.free()
        model.free()
    assert out.decode().endswith(" ZZZ QQQ.") and out.startswith(b"Hel")
