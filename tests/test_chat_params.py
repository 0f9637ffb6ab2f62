"""Fast tests of the chat extension's request parsing, parameter mapping and chunk shapes.

The shapes are checked with the official ``openai`` package's own types in strict mode, the way
its client validates responses with ``_strict_response_validation=True``.
"""

from __future__ import annotations

import base64
import importlib
import json
import struct
import sys
import types
from pathlib import Path

import pytest
from openai._models import validate_type
from openai.types import Completion, CreateEmbeddingResponse
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from jan.sdk.errors import ApiError, InvalidRequest
from jan.sdk.inference import Delta, Done, Usage
from jan.sdk.models import ModelParameters

FOLDER = Path(__file__).resolve().parents[1] / "extensions" / "chat"
PACKAGE = "jan_test_chat_ext"


def _module(name: str) -> types.ModuleType:
    """Import one of the extension's modules the way the host does: as a private package."""
    if PACKAGE not in sys.modules:
        pkg = types.ModuleType(PACKAGE)
        pkg.__path__ = [str(FOLDER)]
        sys.modules[PACKAGE] = pkg
    return importlib.import_module(f"{PACKAGE}.{name}")


schemas = _module("schemas")
params = _module("params")
streaming = _module("streaming")
extension = _module("extension")

USER = [{"role": "user", "content": "hi"}]


def bad(fn, data) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as info:
        fn(data)
    assert info.value.status == 400
    return info.value


# ---------------------------------------------------------------- request validation
def test_missing_model_names_model():
    assert bad(schemas.parse_chat, {"messages": USER}).param == "model"
    assert bad(schemas.parse_chat, {"model": "", "messages": USER}).param == "model"


@pytest.mark.parametrize("field,value", [
    ("n", 2), ("logprobs", True), ("top_logprobs", 3), ("logit_bias", {"1": 5}),
    ("audio", {"voice": "x"}), ("modalities", ["text", "audio"]),
])
def test_semantic_params_we_cannot_honour_are_refused(field, value):
    err = bad(schemas.parse_chat, {"model": "m", "messages": USER, field: value})
    assert err.param == field and field in err.message


def test_harmless_params_are_accepted():
    req = schemas.parse_chat({
        "model": "m", "messages": USER, "user": "u1", "store": False, "metadata": {"a": "b"},
        "n": 1, "logprobs": False, "tools": [], "tool_choice": "none", "parallel_tool_calls": True,
        "service_tier": "auto", "modalities": ["text"], "some_vendor_extra": 1,
    })
    assert req.model == "m"


@pytest.mark.parametrize("field,value", [
    ("temperature", 3), ("top_p", 1.5), ("max_tokens", 0), ("max_completion_tokens", -1),
    ("presence_penalty", 9), ("stop", 5), ("messages", []), ("stream", "perhaps"),
    ("response_format", {"type": "xml"}),
])
def test_bad_values_name_the_param(field, value):
    err = bad(schemas.parse_chat, {"model": "m", "messages": USER, field: value})
    assert err.param == field


def test_json_schema_format_needs_its_schema_object():
    err = bad(schemas.parse_chat, {"model": "m", "messages": USER,
                                   "response_format": {"type": "json_schema"}})
    assert err.param == "response_format.json_schema"


# ---------------------------------------------------------------- messages
def test_developer_becomes_system_and_text_parts_join():
    msgs = params.to_chat_messages([
        {"role": "developer", "content": "be brief"},
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
        {"role": "assistant", "content": None},
    ])
    assert [(m.role, m.content) for m in msgs] == [
        ("system", "be brief"), ("user", "a\nb"), ("assistant", "")]


def test_non_text_part_is_refused_naming_the_field():
    part = {"type": "image_url", "image_url": {"url": "http://x/y.png"}}
    with pytest.raises(InvalidRequest) as info:
        params.to_chat_messages([{"role": "user", "content": [
            {"type": "text", "text": "look"}, part]}])
    assert info.value.param == "messages[0].content[1].type"
    assert "image_url" in info.value.message


@pytest.mark.parametrize("msg,param", [
    ({"role": "tool", "content": "42", "tool_call_id": "c"}, "messages[1].tool_call_id"),
    ({"role": "robot", "content": "x"}, "messages[1].role"),
    ({"role": "user"}, "messages[1].content"),
    ({"role": "user", "content": 7}, "messages[1].content"),
    ({"role": "assistant", "content": None, "tool_calls": [{"id": "c"}]},
     "messages[1].tool_calls[0].function"),
])
def test_bad_messages_name_the_field(msg, param):
    with pytest.raises(InvalidRequest) as info:
        params.to_chat_messages([USER[0], msg])
    assert info.value.param == param


# ---------------------------------------------------------------- precedence and mapping
MODEL_PARAMS = ModelParameters(temperature=0.3, top_p=0.5, max_tokens=77,
                               stop=["<|im_end|>"], stream=True)


def chat(**body):
    return params.chat_generation(
        schemas.parse_chat({"model": "m", "messages": USER, **body}), MODEL_PARAMS, "m")


def test_model_json_parameters_are_defaults_and_requests_win():
    gen = chat()
    assert (gen.temperature, gen.top_p, gen.max_tokens) == (0.3, 0.5, 77)
    gen = chat(temperature=0.9, top_p=0.1, max_tokens=5, top_k=3, min_p=0.2, seed=7,
               frequency_penalty=0.5, presence_penalty=-0.5, repeat_penalty=1.1)
    assert (gen.temperature, gen.top_p, gen.max_tokens, gen.top_k, gen.min_p, gen.seed) == (
        0.9, 0.1, 5, 3, 0.2, 7)
    assert (gen.frequency_penalty, gen.presence_penalty, gen.repeat_penalty) == (0.5, -0.5, 1.1)


def test_without_model_defaults_the_engine_defaults_apply():
    gen = params.chat_generation(schemas.parse_chat({"model": "m", "messages": USER}), None, "m")
    assert gen.temperature == 0.8 and gen.max_tokens is None and gen.stop == []


def test_max_completion_tokens_wins_over_max_tokens():
    assert chat(max_tokens=50, max_completion_tokens=9).max_tokens == 9


def test_stop_adds_to_the_models_own_stops():
    assert chat(stop="END").stop == ["<|im_end|>", "END"]
    assert chat(stop=["a", "", "b"]).stop == ["<|im_end|>", "a", "b"]


def test_response_formats_map_to_grammar_requests():
    schema = {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]}
    gen = chat(response_format={"type": "json_schema",
                                "json_schema": {"name": "t", "schema": schema, "strict": True}})
    assert gen.json_schema == schema and not gen.json_object
    assert chat(response_format={"type": "json_object"}).json_object
    gen = chat(response_format={"type": "text"})
    assert gen.json_schema is None and not gen.json_object


def test_invalid_model_json_parameter_is_reported_as_such():
    with pytest.raises(ApiError) as info:
        params.chat_generation(schemas.parse_chat({"model": "m", "messages": USER}),
                               {"temperature": "hot"}, "m")
    assert "model.json" in info.value.message and "temperature" in info.value.message


def test_completion_prompt_and_default_max_tokens():
    req = schemas.parse_completion({"model": "m", "prompt": ["Once upon"]})
    gen = params.completion_generation(req, None, "m")
    assert gen.prompt == "Once upon" and gen.max_tokens == 16 and gen.messages is None
    for prompt in ([1, 2, 3], [[1, 2]], ["a", "b"], []):
        with pytest.raises(InvalidRequest) as info:
            params.completion_prompt(prompt)
        assert info.value.param == "prompt"
    assert bad(schemas.parse_completion, {"model": "m", "prompt": "x", "suffix": "y"}).param \
        == "suffix"
    assert bad(schemas.parse_completion, {"model": "m", "prompt": "x", "logprobs": 2}).param \
        == "logprobs"


def test_embedding_inputs():
    assert params.embedding_inputs("a") == ["a"]
    assert params.embedding_inputs(["a", "b"]) == ["a", "b"]
    for value in ([], [""], [1, 2], [[1]], [None]):
        with pytest.raises(InvalidRequest) as info:
            params.embedding_inputs(value)
        assert info.value.param == "input"
    assert bad(schemas.parse_embedding, {"model": "m", "input": "x",
                                         "encoding_format": "hex"}).param == "encoding_format"
    assert bad(schemas.parse_embedding, {"model": "m", "input": "x", "dimensions": 8}).param \
        == "dimensions"


# ---------------------------------------------------------------- response shapes
async def events(*texts: str, finish: str = "stop"):
    for t in texts:
        yield Delta(text=t)
    yield Done(finish_reason=finish, usage=Usage(prompt_tokens=5, completion_tokens=len(texts),
                                                   total_tokens=5 + len(texts), cached_tokens=2))


async def payloads(gen) -> list[dict]:
    return [json.loads(p) if isinstance(p, str) else p async for p in gen]


def strict(type_, value):
    return validate_type(type_=type_, value=value)


async def test_chat_chunks_follow_openai_and_validate_strictly():
    head = streaming.Head(model='we"ird', object="chat.completion.chunk")
    chunks = await payloads(streaming.chat_chunks(head, events("Hel", "lo ☃"), True))
    parsed = [strict(ChatCompletionChunk, c) for c in chunks]
    assert parsed[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in parsed[:-1]) == "Hello ☃"
    assert [c.choices[0].finish_reason for c in parsed[:-1]] == [None, None, None, "stop"]
    assert all("usage" in c and c["usage"] is None for c in chunks[:-1])
    assert parsed[-1].choices == [] and parsed[-1].usage.total_tokens == 7
    assert parsed[-1].usage.prompt_tokens_details.cached_tokens == 2
    assert {c.id for c in parsed} == {head.id} and parsed[0].model == 'we"ird'


async def test_chat_chunks_without_usage_have_no_usage_key():
    head = streaming.Head(model="m", object="chat.completion.chunk")
    chunks = await payloads(streaming.chat_chunks(head, events("a", finish="length"), False))
    assert all("usage" not in c for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"


async def test_stream_without_done_is_an_error():
    async def cut():
        yield Delta(text="x")

    head = streaming.Head(model="m", object="chat.completion.chunk")
    with pytest.raises(ApiError):
        await payloads(streaming.chat_chunks(head, cut(), False))


async def test_non_stream_bodies_validate_strictly():
    out = await streaming.collect(events("a", "b"))
    text, done = out.text, out.done
    body = streaming.chat_body(streaming.Head(model="m", object="chat.completion"), out)
    parsed = strict(ChatCompletion, body)
    assert parsed.choices[0].message.content == "ab" and parsed.usage.completion_tokens == 2
    body = streaming.completion_body(streaming.Head(model="m", object="text_completion"),
                                     text, done)
    assert strict(Completion, body).choices[0].text == "ab"


async def test_completion_chunks_end_with_finish_reason_and_echo():
    head = streaming.Head(model="m", object="text_completion", prefix="cmpl")
    chunks = await payloads(streaming.completion_chunks(head, events("b"), True, echo="a"))
    assert [c["choices"][0]["text"] for c in chunks[:-1]] == ["a", "b", ""]
    assert [c["choices"][0]["finish_reason"] for c in chunks[:-1]] == [None, None, "stop"]
    strict(Completion, chunks[-2])
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] == 6


def test_base64_embedding_is_little_endian_float32():
    vector = [0.5, -1.25, 3.0]
    encoded = extension._base64(vector)
    assert list(struct.unpack("<3f", base64.b64decode(encoded))) == vector
    body = {"object": "list", "model": "m", "usage": {"prompt_tokens": 1, "total_tokens": 1},
            "data": [{"object": "embedding", "index": 0, "embedding": vector}]}
    strict(CreateEmbeddingResponse, body)
