"""Shared pieces of the Responses/Conversations tests: a host serving SmolLM2, clients, and a
scripted inference provider (a test double yielding text and tool-call deltas)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import openai

from jan.sdk.inference import Delta, Done, GenerationRequest, ToolCallDelta, Usage

MODEL = "smollm2"


def write_model(folder: Path, gguf: Path, *, ctx_len: int = 2048, n_parallel: int = 4,
                parameters: dict[str, Any] | None = None, model_id: str = MODEL) -> None:
    (folder / "models" / model_id).mkdir(parents=True, exist_ok=True)
    (folder / "models" / model_id / "model.json").write_text(json.dumps({
        "id": model_id, "object": "model", "name": "SmolLM2 135M", "format": "gguf",
        "engine": "llama-cpp",
        "settings": {"llama_model_path": str(gguf), "ctx_len": ctx_len, "n_parallel": n_parallel},
        "parameters": parameters or {"temperature": 0},
    }))


def openai_for(http: Any) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url="http://test/v1", api_key="local", http_client=http,
                              _strict_response_validation=True, max_retries=0)


class ScriptedEngine:
    """An ``inference`` provider that plays back scripts and records what it was asked.

    Each script is a list of ``Delta``/``ToolCallDelta``/``Done`` events; the last one is
    replayed when the scripts run out.
    """

    def __init__(self, *scripts: list[Any]) -> None:
        self.scripts = list(scripts)
        self.requests: list[GenerationRequest] = []

    async def generate(self, spec: Any, request: GenerationRequest) -> AsyncIterator[Any]:
        self.requests.append(request)
        script = self.scripts.pop(0) if len(self.scripts) > 1 else self.scripts[0]
        for event in script:
            yield event

    async def embed(self, spec: Any, inputs: list[str]) -> Any:
        raise NotImplementedError

    async def load(self, spec: Any) -> Any:
        raise NotImplementedError

    async def unload(self, model_id: str) -> bool:
        return False

    def loaded(self) -> list[Any]:
        return []


def text_script(text: str) -> list[Any]:
    return [Delta(text=t) for t in text.split(" ")[:1]] + [
        Delta(text=" " + t) for t in text.split(" ")[1:]] + [
        Done(usage=Usage(prompt_tokens=5, completion_tokens=3, total_tokens=8))]


def call_script(name: str, arguments: str, call_id: str = "call_1") -> list[Any]:
    half = len(arguments) // 2
    return [ToolCallDelta(index=0, id=call_id, name=name),
            ToolCallDelta(index=0, arguments=arguments[:half]),
            ToolCallDelta(index=0, arguments=arguments[half:]),
            Done(finish_reason="tool_calls",
                 usage=Usage(prompt_tokens=9, completion_tokens=7, total_tokens=16))]


SCRIPTED = {"modules": {"inference": "scripted"}}


def use_engine(jan: Any, engine: ScriptedEngine) -> None:
    """Serve ``inference`` from ``engine`` (the host was started with ``SCRIPTED`` settings)."""
    jan.host.services.provide("inference", engine, provider="scripted")


def fake_model(folder: Path, model_id: str = "fake") -> None:
    """A model entry whose file exists (the scripted engine never reads it)."""
    gguf = folder / "fake.gguf"
    gguf.write_bytes(b"GGUF")
    (folder / "models" / model_id).mkdir(parents=True, exist_ok=True)
    (folder / "models" / model_id / "model.json").write_text(json.dumps({
        "id": model_id, "object": "model", "format": "gguf", "engine": "llama-cpp",
        "settings": {"llama_model_path": str(gguf)}, "parameters": {"temperature": 0}}))
