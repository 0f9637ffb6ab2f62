"""A llama.cpp sampler chain per request, in the order llama-cpp-python's own API builds it."""

from __future__ import annotations

import ctypes
import json
import random

import llama_cpp.llama_cpp as L
from llama_cpp.llama_grammar import JSON_GBNF, json_schema_to_gbnf

from jan.sdk.inference import GenerationRequest

from .native import Model
from .prompts import RequestError

PENALTY_LAST_N = 64


def grammar_for(req: GenerationRequest) -> str | None:
    if req.grammar:
        return req.grammar
    if req.json_schema is not None:
        try:
            return json_schema_to_gbnf(json.dumps(req.json_schema))
        except Exception as exc:  # the converter raises plain errors on schemas it can't map
            raise RequestError(f"unsupported json_schema: {exc}",
                               param="response_format") from exc
    if req.json_object:
        return JSON_GBNF
    return None


class Sampler:
    """Owns one ``llama_sampler`` chain; ``free()`` must be called exactly once."""

    def __init__(self, model: Model, req: GenerationRequest, grammar: str | None,
                 lazy: list[str] | None = None) -> None:
        self.ptr = L.llama_sampler_chain_init(L.llama_sampler_chain_default_params())
        self.lazy = lazy  # trigger patterns: the grammar applies once one matches (tool calls)
        try:
            self._build(model, req, grammar)
        except BaseException:
            self.free()
            raise

    def _add(self, s) -> None:  # noqa: ANN001 - ctypes pointer
        if not s:
            raise RequestError("could not create a sampler", status=500)
        L.llama_sampler_chain_add(self.ptr, s)

    def _build(self, model: Model, req: GenerationRequest, grammar: str | None) -> None:
        if (req.repeat_penalty != 1.0 or req.frequency_penalty != 0.0
                or req.presence_penalty != 0.0):
            self._add(L.llama_sampler_init_penalties(
                PENALTY_LAST_N, req.repeat_penalty, req.frequency_penalty, req.presence_penalty))
        if grammar is not None:
            g = self._grammar(model, grammar)
            if not g:
                tools = bool(req.tools) and req.tool_choice != "none"
                raise RequestError("the grammar could not be parsed",
                                   param="tools" if tools else "response_format")
            self._add(g)
        if req.temperature <= 0.0:
            self._add(L.llama_sampler_init_greedy())
            return
        seed = req.seed if req.seed is not None else random.getrandbits(32)
        self._add(L.llama_sampler_init_top_k(req.top_k if req.top_k > 0 else 0))
        self._add(L.llama_sampler_init_top_p(req.top_p, 1))
        self._add(L.llama_sampler_init_min_p(req.min_p, 1))
        self._add(L.llama_sampler_init_temp(req.temperature))
        self._add(L.llama_sampler_init_dist(seed & 0xFFFFFFFF))

    def _grammar(self, model: Model, grammar: str):  # noqa: ANN202 - ctypes pointer
        if not self.lazy:
            return L.llama_sampler_init_grammar(model.vocab, grammar.encode(), b"root")
        pats = (ctypes.c_char_p * len(self.lazy))(*(p.encode() for p in self.lazy))
        return L.llama_sampler_init_grammar_lazy_patterns(
            model.vocab, grammar.encode(), b"root", pats, len(self.lazy), None, 0)

    def sample(self, ctx_ptr, idx: int) -> int:  # noqa: ANN001 - ctypes pointer
        """Sample at batch index ``idx`` (which must have requested logits); also accepts it."""
        return L.llama_sampler_sample(self.ptr, ctx_ptr, idx)

    def free(self) -> None:
        if self.ptr:
            L.llama_sampler_free(self.ptr)
            self.ptr = None
