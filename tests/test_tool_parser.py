"""The incremental tool-call parser and the tool grammar, with scripted token streams (no model).

Each script is fed piece by piece, as the step loop feeds one token's text at a time."""

from __future__ import annotations

import json

import pytest

from jan.host.engine.errors import RequestError
from jan.host.engine.toolparse import ToolCallParser
from jan.host.engine.toolsyntax import GENERIC, HERMES, LLAMA3, MISTRAL, detect
from jan.host.engine.tooluse import generic_messages, plan
from jan.sdk.inference import ChatMessage, GenerationRequest, Tool, ToolCall, ToolFunction


def run(syntax, pieces):
    p = ToolCallParser(syntax)
    events = []
    for piece in pieces:
        events += p.feed(piece)
    return events + p.finish(), p


def text_of(events):
    return "".join(e.text for e in events if e.type == "delta")


def calls_of(events):
    calls: dict[int, dict] = {}
    for e in events:
        if e.type != "tool_call":
            continue
        if e.name is not None:
            assert e.index not in calls and e.arguments == ""  # the header comes once
            assert e.id.startswith("call_")
            calls[e.index] = {"id": e.id, "name": e.name, "arguments": ""}
        else:
            assert e.id is None  # later pieces never repeat id or name
            calls[e.index]["arguments"] += e.arguments
    return [calls[i] for i in sorted(calls)]


CALL = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'


def test_trigger_split_across_tokens_never_leaks():
    pieces = ["Sure", ". <", "tool", "_c", "all>", "\n{", '"name', '": "get_weather", "',
              'arguments": {"ci', 'ty": "Par', 'is"}}', "\n</tool", "_call>"]
    events, _ = run(GENERIC, pieces)
    assert text_of(events) == "Sure. "
    assert calls_of(events) == [{"id": calls_of(events)[0]["id"], "name": "get_weather",
                                 "arguments": '{"city": "Paris"}'}]
    # argument fragments stream as they come, not all at the end
    assert len([e for e in events if e.type == "tool_call" and e.arguments]) >= 3


def test_every_split_point_gives_the_same_result():
    for cut in range(1, len(CALL)):
        events, _ = run(GENERIC, [CALL[:cut], CALL[cut:]])
        assert text_of(events) == ""
        assert [(c["name"], c["arguments"]) for c in calls_of(events)] == [
            ("get_weather", '{"city": "Paris"}')]


def test_two_calls_in_one_reply_char_by_char():
    second = CALL.replace("Paris", "Tokyo")
    events, p = run(GENERIC, list(CALL + "\n" + second))
    calls = calls_of(events)
    assert [json.loads(c["arguments"])["city"] for c in calls] == ["Paris", "Tokyo"]
    assert len({c["id"] for c in calls}) == 2 and p.calls == 2 and text_of(events) == ""


def test_a_repeated_call_is_dropped_and_ends_the_reply():
    events, p = run(GENERIC, list(CALL + "\n" + CALL + "\n" + CALL))
    assert len(calls_of(events)) == 1 and p.repeated


def test_trigger_that_turns_out_to_be_text():
    events, p = run(GENERIC, ["Use <tool", "_ca", "ll> tags like <tool_c", "at>"])
    assert text_of(events) == "Use <tool_call> tags like <tool_cat>"
    assert calls_of(events) == [] and p.calls == 0


def test_malformed_json_after_the_trigger_is_given_back_as_text():
    events, _ = run(GENERIC, ["<tool_call>", " not json at all"])
    assert text_of(events) == "<tool_call> not json at all" and calls_of(events) == []
    events, _ = run(GENERIC, ["<tool_call>", '{"name": 42}'])
    assert text_of(events) == '<tool_call>{"name": 42}'


def test_truncated_call_keeps_what_was_streamed():
    events, _ = run(GENERIC, [CALL[:60]])
    calls = calls_of(events)
    assert calls[0]["name"] == "get_weather" and calls[0]["arguments"].startswith('{"ci')


def test_arguments_with_nested_strings_braces_and_escapes():
    args = {"q": 'a "quoted" {brace} [x]', "n": [1, {"k": None}], "t": True}
    body = json.dumps({"name": "f", "arguments": args})
    events, _ = run(GENERIC, list(f"<tool_call>{body}</tool_call>"))
    assert json.loads(calls_of(events)[0]["arguments"]) == args


def test_mistral_list_and_llama3_bare_json():
    events, _ = run(MISTRAL, ['[TOOL_', 'CALLS][{"name": "a", "arguments": {"x": 1}}, ',
                              '{"name": "b", "arguments": {}}]'])
    assert [(c["name"], c["arguments"]) for c in calls_of(events)] == [
        ("a", '{"x": 1}'), ("b", "{}")]
    events, _ = run(LLAMA3, ["\n", '{"name": "a", "parameters": {"x": 1}}'])
    assert [(c["name"], c["arguments"]) for c in calls_of(events)] == [("a", '{"x": 1}')]
    assert text_of(events) == ""
    events, _ = run(LLAMA3, ['Text first {"name": "a", "parameters": {}}'])
    assert calls_of(events) == []  # a bare JSON call only counts at the start of the reply
    events, _ = run(LLAMA3, ['<|python_tag|>{"name": "a", "parameters": {"y": "z"}}'])
    assert calls_of(events)[0]["arguments"] == '{"y": "z"}'


def test_family_detection_from_templates():
    assert detect("{% for m in messages %}{{ m.content }}{% endfor %}") is GENERIC
    assert detect("{% if tools %}<tool_call>{% endif %}") is HERMES
    assert detect("{% if tools %}[TOOL_CALLS]{% endif %}") is MISTRAL
    assert detect("{% if tools %}<|python_tag|>{% endif %}").name == "llama3"


TOOL = Tool(function=ToolFunction(name="get_weather", parameters={
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}))


def req(**kw):
    return GenerationRequest(messages=[ChatMessage(role="user", content="hi")], **kw)


def test_plan_modes():
    assert plan(req(tools=[TOOL], tool_choice="none"), GENERIC) is None
    auto = plan(req(tools=[TOOL]), GENERIC)
    assert auto.lazy and "<tool_call>" in auto.lazy[0]
    forced = plan(req(tools=[TOOL], tool_choice="required"), GENERIC)
    assert forced.lazy is None and forced.grammar.startswith("root ::= tc-call (tc-ws tc-call)*")
    single = plan(req(tools=[TOOL], tool_choice="required", parallel_tool_calls=False), GENERIC)
    assert single.grammar.startswith("root ::= tc-call\n")
    assert '"\\"get_weather\\""' in forced.grammar


def test_uncompilable_schema_names_the_tool():
    bad = Tool(function=ToolFunction(name="b", parameters={
        "type": "object", "properties": {"x": {"$ref": "#/$defs/missing"}}}))
    with pytest.raises(RequestError) as info:
        plan(req(tools=[TOOL, bad], tool_choice="required"), GENERIC)
    assert info.value.param == "tools[1].function.parameters"


def test_generic_prompt_describes_tools_and_renders_tool_turns():
    call = ToolCall(id="call_1", name="get_weather", arguments='{"city": "Paris"}')
    r = GenerationRequest(tools=[TOOL], messages=[
        ChatMessage(role="system", content="Be brief."),
        ChatMessage(role="user", content="Weather?"),
        ChatMessage(role="assistant", content=None, tool_calls=[call]),
        ChatMessage(role="tool", tool_call_id="call_1", content="21 C")])
    out = generic_messages(r, GENERIC)
    assert out[0].role == "system" and out[0].content.startswith("Be brief.")
    assert "get_weather" in out[0].content and "<tool_call>" in out[0].content
    assert out[2].role == "assistant" and '"city": "Paris"' in out[2].content
    assert out[3].role == "user" and "21 C" in out[3].content
    no_tools = generic_messages(r.model_copy(update={"tool_choice": "none"}), GENERIC)
    assert "get_weather" not in (no_tools[0].content or "")
