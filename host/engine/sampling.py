"""A llama.cpp sampler chain per request, in the order llama-cpp-python's own API builds it."""

from __future__ import annotations

import ctypes
import json
import math
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


def _penalties(n_vocab: int, repeat: float, freq: float, present: float):  # noqa: ANN202
    """``llama_sampler_init_penalties``: llama-cpp-python 0.3.36's binding takes ``n_vocab``
    first (5 arguments); later llama.cpp dropped it (4). Calling with the wrong count raised
    inside the step loop and took the runner down for every client."""
    args = (PENALTY_LAST_N, repeat, freq, present)
    if len(getattr(L.llama_sampler_init_penalties, "argtypes", None) or ()) == 5:
        args = (n_vocab, *args)
    return L.llama_sampler_init_penalties(*args)


def _finite(value: float, default: float = 0.0) -> float:
    return value if math.isfinite(value) else default


def _unit(value: float, default: float) -> float:
    return min(max(value, 0.0), 1.0) if math.isfinite(value) else default


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
        n_vocab = L.llama_vocab_n_tokens(model.vocab)
        repeat = req.repeat_penalty if math.isfinite(req.repeat_penalty) and (
            req.repeat_penalty > 0) else 1.0  # llama.cpp: "must be > 0.0, 1.0 = disabled"
        freq, present = _finite(req.frequency_penalty), _finite(req.presence_penalty)
        if repeat != 1.0 or freq != 0.0 or present != 0.0:
            self._add(_penalties(n_vocab, repeat, freq, present))
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
        # Clamp into what the C API takes: a top_k beyond the vocabulary (or beyond int32)
        # must not overflow ctypes, and out-of-range floats mean "no filtering".
        self._add(L.llama_sampler_init_top_k(min(max(req.top_k, 0), n_vocab)))
        self._add(L.llama_sampler_init_top_p(_unit(req.top_p, 1.0), 1))
        self._add(L.llama_sampler_init_min_p(_unit(req.min_p, 0.0), 1))
        self._add(L.llama_sampler_init_temp(_finite(req.temperature, 1.0)))
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
