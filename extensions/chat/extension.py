"""The ``chat`` extension: OpenAI's ``/v1/chat/completions``, ``/v1/completions`` and
``/v1/embeddings`` over the ``models`` registry and the ``inference`` engine, plus ``jan chat``.

Services are looked up per request, so a swapped or reloaded provider is picked up at once.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import AsyncIterator, Callable
from typing import Any

from jan.sdk import Extension, hookimpl
from jan.sdk.errors import NotFound
from jan.sdk.http import Request, Response, json_response, read_body, sse_response
from jan.sdk.inference import GenerationRequest, LoadSpec

from . import cli
from .params import chat_generation, completion_generation, completion_prompt, embedding_inputs
from .schemas import parse_chat, parse_completion, parse_embedding
from .streaming import (
    ClientGone,
    ClosingStream,
    Collected,
    Event,
    Head,
    aclose_quietly,
    chain,
    chat_body,
    chat_chunks,
    collect,
    completion_body,
    completion_chunks,
    first_event,
    unless_disconnected,
)

Chunks = Callable[[Head, AsyncIterator[Event], bool], AsyncIterator[Any]]
Body = Callable[[Head, Collected], dict[str, Any]]
CLIENT_CLOSED = 499  # nginx's "client closed request": nobody reads it, the logs do


class ChatExtension(Extension):
    def activate(self, ctx: Any) -> None:
        self.ctx = ctx

    @hookimpl
    def register_routes(self, register: Callable[..., Any]) -> None:
        register("/v1/chat/completions", self.chat_completions, methods=["POST"])
        register("/v1/completions", self.completions, methods=["POST"])
        register("/v1/embeddings", self.embeddings, methods=["POST"])

    @hookimpl
    def register_commands(self, register: Callable[..., Any]) -> None:
        register("chat", "Chat with a model in the terminal (needs a running `jan serve`)",
                 configure=cli.configure, run=cli.run)
        register("run", "Send one prompt (or piped text) to a model and stream the reply",
                 configure=cli.configure_run, run=cli.run_oneshot)

    # ------------------------------------------------------------------ model resolution
    async def _resolve(self, model_id: str, overrides: dict[str, Any] | None = None
                       ) -> tuple[Any, LoadSpec]:
        """The registry entry and load spec for ``model_id``; unknown ids are a 404."""
        registry = self.ctx.services.get("models")
        if model_id == "*":
            default = await registry.default_model()
            if not default:
                raise NotFound("No model is available: add a GGUF to the models folder or "
                               "run `jan models pull`", param="model", code="model_not_found")
            model_id = default
        entry = await registry.get(model_id)
        # load_spec refuses catalogue entries that are not downloaded yet (a 400 naming model).
        return entry, registry.load_spec(entry, overrides)

    # ------------------------------------------------------------------ endpoints
    async def chat_completions(self, request: Request) -> Response:
        req = parse_chat(await read_body(request))
        entry, spec = await self._resolve(req.model)
        gen = chat_generation(req, entry.parameters, entry.id)
        head = Head(model=entry.id, object="chat.completion.chunk" if req.stream
                    else "chat.completion", prefix="chatcmpl")
        extra = req.model_extra or {}
        legacy = bool(extra.get("functions")) and not extra.get("tools")

        def body(head: Head, out: Collected) -> dict[str, Any]:
            return chat_body(head, out, legacy=legacy)

        def chunks(head: Head, events: AsyncIterator[Event], usage: bool) -> AsyncIterator[Any]:
            return chat_chunks(head, events, usage, legacy=legacy)

        return await self._generate(request, spec, gen, head, stream=bool(req.stream),
                                    include_usage=req.include_usage, body=body, chunks=chunks)

    async def completions(self, request: Request) -> Response:
        req = parse_completion(await read_body(request))
        entry, spec = await self._resolve(req.model)
        gen = completion_generation(req, entry.parameters, entry.id)
        echo = completion_prompt(req.prompt) if req.echo else ""
        head = Head(model=entry.id, object="text_completion", prefix="cmpl")

        def body(head: Head, out: Collected) -> dict[str, Any]:
            return completion_body(head, echo + out.text, out.done)

        def chunks(head: Head, events: AsyncIterator[Event], usage: bool) -> AsyncIterator[Any]:
            return completion_chunks(head, events, usage, echo=echo)

        return await self._generate(request, spec, gen, head, stream=bool(req.stream),
                                    include_usage=req.include_usage, body=body, chunks=chunks)

    async def embeddings(self, request: Request) -> Response:
        req = parse_embedding(await read_body(request))
        inputs = embedding_inputs(req.input)
        # The engine embeds with the model's generation runner (in a pooling context of its
        # own), so no ``embedding`` override: that would start a second runner for the model.
        entry, spec = await self._resolve(req.model)
        engine = self.ctx.services.get("inference")
        try:
            result = await unless_disconnected(request, engine.embed(spec, inputs))
        except ClientGone:
            return Response(status_code=CLIENT_CLOSED)
        encode = _base64 if req.encoding_format == "base64" else list
        data = [{"object": "embedding", "index": i, "embedding": encode(vector)}
                for i, vector in enumerate(result.vectors)]
        usage = {"prompt_tokens": result.prompt_tokens, "total_tokens": result.prompt_tokens}
        return json_response({"object": "list", "data": data, "model": entry.id, "usage": usage})

    # ------------------------------------------------------------------ shared generation path
    async def _generate(self, request: Request, spec: LoadSpec, gen: GenerationRequest,
                        head: Head, *, stream: bool, include_usage: bool, body: Body,
                        chunks: Chunks) -> Response:
        engine = self.ctx.services.get("inference")
        it = engine.generate(spec, gen)
        try:
            if not stream:
                out = await unless_disconnected(request, collect(it))
                await aclose_quietly(it)
                return json_response(body(head, out))
            # Admission errors (full queue, prompt too long) must be HTTP errors: wait for the
            # first event before the 200 and its headers go out.
            first = await unless_disconnected(request, first_event(it))
        except ClientGone:
            await aclose_quietly(it)
            return Response(status_code=CLIENT_CLOSED)
        except BaseException:
            await aclose_quietly(it)
            raise
        events = chain(first, it)
        payloads = chunks(head, events, include_usage)
        return ClosingStream(sse_response(payloads), payloads, events, it)


def _base64(vector: list[float]) -> str:
    """OpenAI's base64 encoding: the raw little-endian float32 array."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")
