"""``ctx.models``: one line for an extension to call a model.

    text = await ctx.models.chat("Say hi")                         # the default model
    text = await ctx.models.chat(messages, model="my-model", max_tokens=64)
    async for piece in await ctx.models.chat(messages, stream=True): ...

It goes through the same services as ``/v1/chat/completions`` (``models`` for the entry and its
``model.json`` defaults, ``inference`` for the generation), so it needs no HTTP round trip.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from jan.sdk.errors import InvalidRequest, NotFound
from jan.sdk.inference import ChatMessage, Delta, Done, GenerationRequest, merge_stops

Messages = str | Sequence[dict[str, Any] | ChatMessage]


def _messages(messages: Messages) -> list[ChatMessage]:
    if isinstance(messages, str):
        return [ChatMessage(role="user", content=messages)]
    return [m if isinstance(m, ChatMessage) else ChatMessage.model_validate(m) for m in messages]


class ModelCalls:
    """Implements ``jan.sdk.extension.Models`` over a service lookup (read per call)."""

    def __init__(self, services: Any) -> None:
        self._services = services

    async def chat(self, messages: Messages, model: str | None = None, *, stream: bool = False,
                   **params: Any) -> str | AsyncIterator[str]:
        """The reply's text, or (``stream=True``) an async iterator of its pieces."""
        engine, spec, request = await self._prepare(messages, model, params)
        pieces = self._pieces(engine, spec, request)
        if stream:
            return pieces
        return "".join([piece async for piece in pieces])

    async def _prepare(self, messages: Messages, model: str | None, params: dict[str, Any]
                       ) -> tuple[Any, Any, GenerationRequest]:
        registry = self._services.get("models")
        model_id = model if model and model != "*" else await registry.default_model()
        if not model_id:
            raise NotFound("No model is available: add a GGUF to the models folder or run "
                           "`jan models pull`", param="model", code="model_not_found")
        entry = await registry.get(model_id)
        spec = registry.load_spec(entry)
        defaults = entry.parameters.model_dump(exclude_none=True)
        fields = GenerationRequest.model_fields
        unknown = sorted(set(params) - set(fields))
        if unknown:
            raise InvalidRequest(f"unknown generation parameter(s): {', '.join(unknown)}")
        merged = {k: v for k, v in {**defaults, **params}.items() if k in fields}
        merged["stop"] = merge_stops(defaults.get("stop"), params.get("stop"))
        merged.pop("messages", None)
        request = GenerationRequest(messages=_messages(messages), **merged)
        return self._services.get("inference"), spec, request

    @staticmethod
    async def _pieces(engine: Any, spec: Any, request: GenerationRequest) -> AsyncIterator[str]:
        stream = engine.generate(spec, request)
        try:
            async for item in stream:
                if isinstance(item, Delta) and item.text:
                    yield item.text
                elif isinstance(item, Done):
                    break
        finally:
            await stream.aclose()
