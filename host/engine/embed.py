"""Embeddings: one mean-pooled, L2-normalised vector per input, in a context of their own.

A separate small context keeps pooling settings away from the generation context and lets the
step loop's KV cache (and its prefix reuse) stay untouched.
"""

from __future__ import annotations

import math

from .native import Context, Model
from .prompts import RequestError

MAX_EMBED_CTX = 2048


class Embedder:
    def __init__(self, model: Model, ctx_len: int, n_threads: int) -> None:
        self.model = model
        n_ctx = max(64, min(ctx_len, MAX_EMBED_CTX, model.n_ctx_train or MAX_EMBED_CTX))
        # The whole input must fit one micro-batch for pooling, hence n_batch = n_ctx.
        self.ctx = Context(model, n_ctx=n_ctx, n_seq=1, n_batch=n_ctx, n_threads=n_threads,
                           embeddings=True)
        self.n_ctx = self.ctx.n_ctx_seq

    def tokens(self, text: str) -> list[int]:
        toks = self.model.tokenize(text, add_special=True, parse_special=False)
        if not toks:
            toks = [self.model.bos]
        if len(toks) > self.n_ctx:
            raise RequestError(
                f"an input has {len(toks)} tokens; this model embeds at most {self.n_ctx}",
                code="context_length_exceeded", param="input")
        return toks

    def embed(self, inputs: list[str]) -> tuple[list[list[float]], int]:
        all_tokens = [self.tokens(t) for t in inputs]  # validate everything before any work
        vectors = []
        for toks in all_tokens:
            self.ctx.clear()
            self.ctx.clear_batch()
            for i, tok in enumerate(toks):
                self.ctx.add(tok, i, 0, True)
            rc = self.ctx.decode()
            if rc != 0:
                raise RequestError(f"embedding failed (llama_decode code {rc})", status=500,
                                   code="decode_failed")
            vectors.append(_normalise(self.ctx.embedding(0)))
        return vectors, sum(len(t) for t in all_tokens)

    def free(self) -> None:
        self.ctx.free()


def _normalise(v: list[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in v))
    return [x / norm for x in v] if norm > 0 else v
