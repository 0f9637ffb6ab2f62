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
