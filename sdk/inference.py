"""Types shared by whoever asks for tokens (chat, runs, assistants) and the engine that makes them.

The engine turns a ``LoadSpec`` (which model file, with which load-time settings) plus a
``GenerationRequest`` into a stream of ``Delta`` events closed by one ``Done``. Closing the
stream early (``aclose()`` or a cancelled task) cancels that generation and nothing else.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class LoadSpec(BaseModel):
    """What the engine needs to load one model."""

    model_id: str
    path: str
    ctx_len: int = 4096
    n_parallel: int = 4
    ngl: int = 0
    cpu_threads: int | None = None
    embedding: bool = False
    chat_template: str | None = None
    prompt_template: str | None = None
    stop: list[str] = Field(default_factory=list)

    def load_key(self) -> tuple[Any, ...]:
        """Two specs with the same key can share one loaded runner."""
        return (self.path, self.ctx_len, self.n_parallel, self.ngl, self.cpu_threads,
                self.embedding, self.chat_template, self.prompt_template, tuple(self.stop))


def merge_stops(*layers: Any) -> list[str]:
    """Stop strings accumulate across settings layers (model < ... < request), unlike other
    parameters: the model's own stops end its turn and a request's must not remove them.

    Each layer is a string, a list of strings or ``None``; order is kept, duplicates and empty
    strings are dropped.
    """
    stops: list[str] = []
    for layer in layers:
        items = [layer] if isinstance(layer, str) else list(layer or [])
        stops += [s for s in items if isinstance(s, str) and s and s not in stops]
    return stops


class ChatMessage(BaseModel):
    role: Literal["system", "user", "assistant", "tool"]
    content: str


class GenerationRequest(BaseModel):
    """One generation: a chat (``messages``) or a raw completion (``prompt``)."""

    messages: list[ChatMessage] | None = None
    prompt: str | None = None
    max_tokens: int | None = None
    temperature: float = 0.8
    top_p: float = 0.95
    top_k: int = 40
    min_p: float = 0.05
    repeat_penalty: float = 1.0
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    seed: int | None = None
    stop: list[str] = Field(default_factory=list)
    grammar: str | None = None
    json_schema: dict[str, Any] | None = None
    json_object: bool = False


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cached_tokens: int = 0


class Delta(BaseModel):
    """A piece of generated text (whole UTF-8 characters only)."""

    type: Literal["delta"] = "delta"
    text: str


class Done(BaseModel):
    type: Literal["done"] = "done"
    finish_reason: Literal["stop", "length"] = "stop"
    usage: Usage = Field(default_factory=Usage)


class Embeddings(BaseModel):
    vectors: list[list[float]]
    prompt_tokens: int = 0


class LoadedModel(BaseModel):
    model_id: str
    pid: int | None = None
    n_parallel: int
    ctx_len: int
    busy: int = 0
    queued: int = 0
    last_used: float = 0.0
