"""Embeddings: one mean-pooled, L2-normalised vector per input, in a context of their own.

A decoder model's vectors come from its last hidden states, read during the decode so that the
output layer is skipped (hidden.py: about 15% less work for SmolLM2); an encoder model, or a
graph where that read finds nothing, uses llama.cpp's embedding mode.

A separate context keeps pooling settings away from the generation context and leaves the step
loop's KV cache (and its prefix reuse) untouched. Inputs are packed many to a decode, one
sequence each (from one request or several waiting together), up to the batch size; while
sequences are generating, a decode holds at most ``budget`` tokens so they get their next token
soon. The KV cache is unified here: the inputs of one decode share the whole context.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from .native import Context, Model
from .prompts import RequestError

MAX_EMBED_CTX = 2048
EMBED_SEQS = 64  # inputs per decode at most


def embed_limit(model: Model, ctx_len: int) -> int:
    """Tokens an input may have (the whole input must fit one micro-batch for pooling)."""
    return max(64, min(ctx_len, MAX_EMBED_CTX, model.n_ctx_train or MAX_EMBED_CTX))


def embed_tokens(model: Model, limit: int, inputs: list[str]) -> list[list[int]]:
    """Tokenize and check every input before any work (tokenizing is thread-safe)."""
    out = []
    for text in inputs:
        toks = model.tokenize(text, add_special=True, parse_special=False) or [model.bos]
        if len(toks) > limit:
            raise RequestError(
                f"an input has {len(toks)} tokens; this model embeds at most {limit}",
                code="context_length_exceeded", param="input")
        out.append(toks)
    return out


@dataclass
class EmbedJob:
    id: int
    inputs: list[list[int]]
    vectors: list[list[float]] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return len(self.vectors) == len(self.inputs)

    @property
    def prompt_tokens(self) -> int:
        return sum(len(t) for t in self.inputs)


class Embedder:
    def __init__(self, model: Model, ctx_len: int, n_threads: int) -> None:
        self.model, self.n_threads = model, n_threads
        self.n_ctx = embed_limit(model, ctx_len)
        self.hidden = None
        if not model.encoder_only:
            from .hidden import HiddenStates  # numpy: only once a model embeds

            self.hidden = HiddenStates(model.n_embd)
        self.ctx = self._context()

    def _context(self) -> Context:
        return Context(self.model, n_ctx=self.n_ctx, n_seq=EMBED_SEQS, n_batch=self.n_ctx,
                       n_threads=self.n_threads, embeddings=self.hidden is None, unified=True,
                       eval_callback=self.hidden.callback if self.hidden else None)

    def step(self, jobs: deque[EmbedJob], budget: int) -> list[EmbedJob]:
        """One decode over the next waiting inputs (oldest job first); the jobs it finished."""
        budget = min(budget, self.ctx.n_batch)
        todo: list[tuple[EmbedJob, int]] = []
        used = 0
        for job in jobs:
            for i in range(len(job.vectors), len(job.inputs)):
                n = len(job.inputs[i])
                if len(todo) >= EMBED_SEQS or (todo and used + n > budget):
                    break
                todo.append((job, i))
                used += n
            else:
                continue
            break
        vectors = self._vectors([job.inputs[i] for job, i in todo])
        for (job, _), vector in zip(todo, vectors, strict=True):
            job.vectors.append(vector)
        finished = [j for j in jobs if j.done]
        for j in finished:
            jobs.remove(j)
        return finished

    def _vectors(self, inputs: list[list[int]]) -> list[list[float]]:
        """One decode, one sequence per input."""
        self.ctx.clear()
        self.ctx.clear_batch()
        if self.hidden is not None:
            self.hidden.clear()  # a failed decode may have left rows
        for seq, tokens in enumerate(inputs):
            for pos, tok in enumerate(tokens):  # pooling reads every token's output
                self.ctx.add(tok, pos, seq, True)
        rc = self.ctx.decode()
        if rc != 0:
            raise RuntimeError(f"embedding failed (llama_decode code {rc})")
        if self.hidden is None:
            pooled = [self.ctx.embedding(seq) for seq in range(len(inputs))]
        else:
            pooled = self.hidden.pooled([len(t) for t in inputs])
            if pooled is None:  # this graph has no hidden-state tensor by that name
                self.ctx.free()
                self.hidden = None
                self.ctx = self._context()
                return self._vectors(inputs)
        return [_normalise(v) for v in pooled]

    def free(self) -> None:
        self.ctx.free()


def _normalise(v: list[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in v))
    return [x / norm for x in v] if norm > 0 else v
