"""Types shared by whoever asks for tokens (chat, runs, assistants) and the engine that makes them.

The engine turns a ``LoadSpec`` (which model file, with which load-time settings) plus a
``GenerationRequest`` into a stream of ``Delta`` (text) and ``ToolCallDelta`` (tool call) events
closed by one ``Done``. Every engine (local or remote) takes ``tools``/``tool_choice`` through this
one interface, so chat, runs, responses and the sandbox relay share one tool path. Closing the
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
    # model.json's ``engine``: a local one (``LOCAL_ENGINES``) runs ``path`` in a runner; any
    # other names a remote provider (``engines/<engine>.json``) and ``path`` is then the model
    # name the upstream knows.
    engine: str = "llama-cpp"

    @property
    def remote(self) -> bool:
        return is_remote_engine(self.engine)

    def load_key(self) -> tuple[Any, ...]:
        """Two specs with the same key can share one loaded runner."""
        return (self.path, self.ctx_len, self.n_parallel, self.ngl, self.cpu_threads,
                self.embedding, self.chat_template, self.prompt_template, tuple(self.stop),
                self.engine)


# Engine names that mean "a GGUF run here" (Jan's names for llama.cpp over its versions).
LOCAL_ENGINES = frozenset({"llama-cpp", "llama.cpp", "llamacpp", "cortex.llamacpp", "nitro", ""})
# The service a remote-engine extension provides; the host's inference hands it remote specs.
REMOTE_INFERENCE = "remote-inference"


def is_remote_engine(engine: str | None) -> bool:
    return bool(engine) and engine not in LOCAL_ENGINES


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


class ToolFunction(BaseModel):
    """A function the model may call: its JSON-schema ``parameters`` constrain the arguments."""

    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class Tool(BaseModel):
    type: Literal["function"] = "function"
    function: ToolFunction


class NamedToolChoice(BaseModel):
    """``tool_choice`` naming one function: the model must call exactly that one."""

    type: Literal["function"] = "function"
    function: dict[str, str]  # {"name": ...}

    @property
    def name(self) -> str:
        return self.function["name"]


ToolChoice = Literal["auto", "none", "required"] | NamedToolChoice


class ToolCall(BaseModel):
    """A complete call the model made: ``arguments`` is JSON text (as OpenAI sends it)."""

    id: str
    name: str
    arguments: str


class ChatMessage(BaseModel):
    """One turn of a chat. ``assistant`` turns may carry ``tool_calls`` (then ``content`` may be
    ``None``); ``tool`` turns answer one call by ``tool_call_id``."""

    role: Literal["system", "user", "assistant", "tool"]
    content: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None
    name: str | None = None


def dangling_tool_message(messages: list[ChatMessage]) -> int | None:
    """Index of the first ``tool`` message that answers no call of an earlier assistant
    message (every caller must refuse such a conversation), or ``None``."""
    open_ids: set[str] = set()
    for i, m in enumerate(messages):
        if m.role == "assistant" and m.tool_calls:
            open_ids.update(c.id for c in m.tool_calls)
        elif m.role == "tool":
            if m.tool_call_id not in open_ids:
                return i
            open_ids.discard(m.tool_call_id)
    return None


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
    tools: list[Tool] | None = None
    tool_choice: ToolChoice = "auto"
    parallel_tool_calls: bool = True


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cached_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        """The usage of two generations together (a run's model calls, summed)."""
        return Usage(**{k: getattr(self, k) + getattr(other, k) for k in Usage.model_fields})


class Delta(BaseModel):
    """A piece of generated text (whole UTF-8 characters only)."""

    type: Literal["delta"] = "delta"
    text: str


class ToolCallDelta(BaseModel):
    """A piece of a tool call. The first piece of call ``index`` carries ``id`` and ``name``
    (and empty ``arguments``); later pieces carry only argument text, which concatenated is the
    call's JSON arguments."""

    type: Literal["tool_call"] = "tool_call"
    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


class Done(BaseModel):
    type: Literal["done"] = "done"
    finish_reason: Literal["stop", "length", "tool_calls"] = "stop"
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
