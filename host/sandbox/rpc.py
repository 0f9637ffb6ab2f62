"""Newline-delimited JSON-RPC 2.0 between the host and a sandboxed worker.

The channel is a pair of dedicated pipes (never stdout/stderr, so ``print`` cannot corrupt it).
Everything the worker sends is untrusted: each line is size-capped *while reading* (a 100 MB
line is cut off at the cap, not buffered), parsed as JSON (never pickle) and validated with
pydantic before anything acts on it. A protocol violation is fatal for that worker.

Ids: requests the host makes use string ids (``"h1"``), the worker's use integers, so a
response always says whose request it answers.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from jan.sdk.inference import Tool, ToolCall, ToolChoice

TOPIC_RE = r"^[A-Za-z0-9_.:@+*-]{1,200}$"
Topic = Annotated[str, StringConstraints(pattern=TOPIC_RE)]
WORKER_METHODS = ("thread.messages", "models.list", "models.chat", "events.emit",
                  "events.subscribe")


class ProtocolError(Exception):
    """The worker broke the protocol (oversized, malformed or invalid message)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RpcError(_Strict):
    code: int
    message: Annotated[str, StringConstraints(max_length=64_000)]
    data: Any = None


class WorkerRequest(_Strict):
    jsonrpc: Literal["2.0"]
    id: Annotated[int, Field(ge=0, lt=2**53)]
    method: Literal[WORKER_METHODS]  # type: ignore[valid-type]
    params: dict[str, Any] = Field(default_factory=dict)


class WorkerResponse(_Strict):
    jsonrpc: Literal["2.0"]
    id: Annotated[str, StringConstraints(pattern=r"^h\d{1,18}$")]
    result: Any = None
    error: RpcError | None = None


# ---------------------------------------------------------------- params of worker requests
class ThreadMessagesParams(_Strict):
    limit: Annotated[int, Field(ge=1, le=1000)] = 100


class ChatMessageIn(_Strict):
    role: Literal["system", "user", "assistant", "tool"]
    content: Annotated[str, StringConstraints(max_length=1_000_000)] | None = None
    tool_calls: Annotated[list[ToolCall], Field(max_length=64)] | None = None
    tool_call_id: Annotated[str, StringConstraints(max_length=200)] | None = None


class ChatParams(_Strict):
    model: Annotated[str, StringConstraints(max_length=200)] | None = None
    messages: Annotated[list[ChatMessageIn], Field(min_length=1, max_length=1000)]
    stream: bool = False
    max_tokens: Annotated[int, Field(ge=1, le=32768)] | None = None
    temperature: Annotated[float, Field(ge=0, le=5)] | None = None
    top_p: Annotated[float, Field(ge=0, le=1)] | None = None
    stop: Annotated[list[str], Field(max_length=8)] | None = None
    seed: int | None = None
    tools: Annotated[list[Tool], Field(max_length=64)] | None = None
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None


class EmitParams(_Strict):
    topic: Topic
    data: Any = None


class SubscribeParams(_Strict):
    topic: Topic


PARAMS: dict[str, type[BaseModel]] = {
    "thread.messages": ThreadMessagesParams,
    "models.list": _Strict,
    "models.chat": ChatParams,
    "events.emit": EmitParams,
    "events.subscribe": SubscribeParams,
}


def parse_inbound(line: bytes) -> WorkerRequest | WorkerResponse:
    """Validate one line from the worker, or raise ``ProtocolError``."""
    try:
        obj = json.loads(line)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"malformed RPC message (not JSON: {exc})") from None
    if not isinstance(obj, dict):
        raise ProtocolError("malformed RPC message (not an object)")
    try:
        if "method" in obj:
            return WorkerRequest.model_validate(obj)
        return WorkerResponse.model_validate(obj)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err.get("loc", ()))
        raise ProtocolError(f"malformed RPC message ({where}: {err.get('msg')})") from None


def encode(obj: dict[str, Any]) -> bytes:
    return (json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=str)
            + "\n").encode()


class Channel:
    """The host's end of the two pipes: capped line reads, whole-line writes."""

    def __init__(self, read_fd: int, write_fd: int, *, max_bytes: int,
                 buffer_bytes: int = 1024 * 1024) -> None:
        self.read_fd, self.write_fd, self.max_bytes = read_fd, write_fd, max_bytes
        self.buffer_bytes = buffer_bytes
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self._read_transport: asyncio.BaseTransport | None = None

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        # The limit bounds how much of one line is ever buffered (+1 for the newline).
        self.reader = asyncio.StreamReader(limit=self.max_bytes + 1)
        self._read_transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(self.reader),
            os.fdopen(self.read_fd, "rb", buffering=0))
        transport, protocol = await loop.connect_write_pipe(
            lambda: asyncio.streams.FlowControlMixin(), os.fdopen(self.write_fd, "wb", 0))
        # drain() waits once this much is buffered for a worker that is not reading.
        transport.set_write_buffer_limits(high=self.buffer_bytes)
        self.writer = asyncio.StreamWriter(transport, protocol, None, loop)

    async def read(self) -> WorkerRequest | WorkerResponse | None:
        """The next validated message, ``None`` at end of stream."""
        assert self.reader is not None
        try:
            line = await self.reader.readuntil(b"\n")
        except asyncio.IncompleteReadError as exc:
            if exc.partial.strip():
                raise ProtocolError("RPC stream ended mid-message") from None
            return None
        except asyncio.LimitOverrunError:
            raise ProtocolError(
                f"RPC message larger than the {self.max_bytes} byte limit") from None
        return parse_inbound(line)

    async def send(self, obj: dict[str, Any]) -> None:
        assert self.writer is not None
        self.writer.write(encode(obj))
        await self.writer.drain()

    def send_nowait(self, obj: dict[str, Any]) -> None:
        """Queue a small message without waiting for the worker to read it."""
        assert self.writer is not None
        self.writer.write(encode(obj))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        if self._read_transport is not None:
            self._read_transport.close()
