"""The manager's side of embeddings: validate the inputs, send them to the runner in parts."""

from __future__ import annotations

from typing import Any

from jan.sdk.errors import InvalidRequest, Unavailable
from jan.sdk.inference import Embeddings

from .protocol import Embed, Embedded, Failed
from .slots import api_error

MAX_EMBED_INPUTS = 2048  # as OpenAI
EMBED_BATCH = 64  # inputs per message: replies stay far below the pipe's line cap


def check_inputs(inputs: list[str]) -> None:
    if not inputs:
        raise InvalidRequest("input must not be empty", param="input")
    if len(inputs) > MAX_EMBED_INPUTS:
        raise InvalidRequest(f"input may hold at most {MAX_EMBED_INPUTS} items", param="input")


async def embed_all(runner: Any, inputs: list[str]) -> tuple[Embeddings, int]:
    """The vectors, and how many of the prompt tokens were decoded once for several inputs."""
    out, shared = Embeddings(vectors=[], prompt_tokens=0), 0
    for start in range(0, len(inputs), EMBED_BATCH):
        part = await _embed_part(runner, inputs[start:start + EMBED_BATCH])
        out.vectors += part.vectors
        out.prompt_tokens += part.prompt_tokens
        shared += part.shared_tokens
    return out, shared


async def _embed_part(runner: Any, inputs: list[str]) -> Embedded:
    rid, q = runner.open_stream()
    try:
        runner.send(Embed(id=rid, inputs=inputs))
        ev = await q.get()
    finally:
        runner.close_stream(rid)
    if isinstance(ev, Embedded):
        return ev
    if isinstance(ev, Failed):
        raise api_error(ev)
    raise Unavailable(getattr(ev, "message", "the runner stopped"))
