"""The JSON-lines protocol between the engine manager and a runner subprocess.

Two dedicated pipes (never stdin/stdout, which native code may write to): commands flow
manager → runner, events flow runner → manager, one JSON object per line, validated by pydantic on
both sides. Never pickle. The first command is always ``load``; the runner answers ``ready`` or
``fatal``. Request ids are chosen by the manager and unique per runner.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, TypeAdapter

from jan.sdk.inference import GenerationRequest, LoadSpec, Usage

MAX_LINE = 64 * 1024 * 1024  # an oversized line is a protocol error, not a memory bomb


# -- manager → runner -----------------------------------------------------------------------
class Load(BaseModel):
    type: Literal["load"] = "load"
    spec: LoadSpec
    prompt_chunk: int = 64  # the step budget until decode times are measured
    step_ms: float = 200.0
    share_min_tokens: int = 16  # 0: no prefix sharing between sequences
    kv_dir: str | None = None  # the on-disk KV state cache (None: off)
    kv_cap_bytes: int = 0
    kv_min_tokens: int = 128


class Generate(BaseModel):
    type: Literal["generate"] = "generate"
    id: int
    request: GenerationRequest


class Cancel(BaseModel):
    type: Literal["cancel"] = "cancel"
    id: int


class Embed(BaseModel):
    type: Literal["embed"] = "embed"
    id: int
    inputs: list[str]


class Shutdown(BaseModel):
    type: Literal["shutdown"] = "shutdown"


Command = Annotated[Load | Generate | Cancel | Embed | Shutdown, Field(discriminator="type")]
COMMAND = TypeAdapter(Command)


# -- runner → manager -----------------------------------------------------------------------
class Ready(BaseModel):
    type: Literal["ready"] = "ready"
    pid: int
    n_parallel: int
    n_ctx_seq: int
    n_embd: int
    template: str = Field(description="chat template in use: gguf, spec, prompt_template, chatml")


class Fatal(BaseModel):
    type: Literal["fatal"] = "fatal"
    message: str


class TokenText(BaseModel):
    type: Literal["delta"] = "delta"
    id: int
    text: str


class ToolCallPiece(BaseModel):
    """A piece of a tool call (see ``jan.sdk.inference.ToolCallDelta``)."""

    type: Literal["tool_call"] = "tool_call"
    id: int
    index: int
    call_id: str | None = None
    name: str | None = None
    arguments: str = ""


class Finished(BaseModel):
    type: Literal["done"] = "done"
    id: int
    finish_reason: Literal["stop", "length", "tool_calls"]
    usage: Usage
    restored_tokens: int = 0  # of usage.cached_tokens, how many came from the on-disk cache
    shared_tokens: int = 0  # ... and how many were copied from another sequence


class Failed(BaseModel):
    """A request failed; ``status`` 400 is the client's fault, anything else the engine's."""

    type: Literal["error"] = "error"
    id: int
    status: int = 500
    code: str | None = None
    param: str | None = None
    message: str


class Embedded(BaseModel):
    type: Literal["embeddings"] = "embeddings"
    id: int
    vectors: list[list[float]]
    prompt_tokens: int
    shared_tokens: int = 0  # of the prompt tokens, those decoded once for several inputs


Event = Annotated[
    Ready | Fatal | TokenText | ToolCallPiece | Finished | Failed | Embedded,
    Field(discriminator="type"),
]
EVENT = TypeAdapter(Event)


def encode(msg: BaseModel) -> bytes:
    return msg.model_dump_json().encode() + b"\n"
