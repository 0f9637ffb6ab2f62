"""Embeddings: one mean-pooled, L2-normalised vector per input, in a context of their own.

A decoder model's vectors come from its last hidden states, read during the decode so that the
output layer is skipped (hidden.py: about 15% less work for SmolLM2); an encoder model, or a
graph where that read finds nothing, uses llama.cpp's embedding mode.

A separate context keeps pooling settings away from the generation context and leaves the step
loop's KV cache (and its prefix reuse) untouched. Inputs are packed many to a decode, one
sequence each (from one request or several waiting together), up to the batch size; while
sequences are generating, a decode holds at most ``budget`` tokens so they get their next token
soon. The KV cache is unified here: the inputs of one decode share the whole context, and in a
causal model inputs that open alike share those tokens (``Packing``).
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
    shared_tokens: int = 0  # decoded once for an earlier input with the same opening

    @property
    def done(self) -> bool:
        return len(self.vectors) == len(self.inputs)

    @property
    def prompt_tokens(self) -> int:
        return sum(len(t) for t in self.inputs)


class Packing:
    """The inputs of one decode, laid out as batch entries (token, position, sequences).

    With ``share``, inputs that open with the same tokens (an instruction every query carries, a
    common template) share those tokens' entries: in a causal model a token's hidden state depends
    on the tokens up to it alone, so each shared token is decoded once, its KV cell belongs to
    every sequence that passes through it, and its row counts in each of their means. The entries
    form a tree of prefixes, kept in the order they were added, so each sequence's positions
    rise through the batch (as llama.cpp requires).
    """

    def __init__(self, share: bool) -> None:
        self.share = share
        self.inputs: list[list[int]] = []
        self.entries: list[tuple[int, int, list[int]]] = []
        self.paths: list[list[int]] = []  # per input, its tokens' entries
        self.shared: list[int] = []  # per input, its tokens an earlier input had added
        self._child: dict[tuple[int, int], int] = {}  # (parent entry or -1, token) -> entry

    def _known(self, tokens: list[int]) -> list[int]:
        """The entries of the longest opening of ``tokens`` already packed."""
        path, parent = [], -1
        for tok in tokens if self.share else ():
            entry = self._child.get((parent, tok))
            if entry is None:
                break
            path.append(entry)
            parent = entry
        return path

    def cost(self, tokens: list[int]) -> int:
        """The entries ``tokens`` would add."""
        return len(tokens) - len(self._known(tokens))

    def add(self, tokens: list[int]) -> None:
        seq, path = len(self.paths), self._known(tokens)
        self.shared.append(len(path))
        for entry in path:
            self.entries[entry][2].append(seq)
        for pos in range(len(path), len(tokens)):
            entry = len(self.entries)
            self.entries.append((tokens[pos], pos, [seq]))
            if self.share:
                self._child[(path[-1] if path else -1, tokens[pos])] = entry
            path.append(entry)
        self.inputs.append(tokens)
        self.paths.append(path)

    def unshared(self) -> Packing:
        out = Packing(share=False)
        for tokens in self.inputs:
            out.add(tokens)
        return out


class Embedder:
    def __init__(self, model: Model, ctx_len: int, n_threads: int) -> None:
        self.model, self.n_threads = model, n_threads
        self.n_ctx = embed_limit(model, ctx_len)
        self.hidden = None
        if not model.encoder_only:
            from .hidden import HiddenStates  # numpy: only once a model embeds

            self.hidden = HiddenStates(model.n_embd)
        # Shared openings need our own pooling (llama.cpp's pools by a token's first sequence).
        self.causal = model.causal_attention
        self.ctx = self._context()

    def _context(self) -> Context:
        return Context(self.model, n_ctx=self.n_ctx, n_seq=EMBED_SEQS, n_batch=self.n_ctx,
                       n_threads=self.n_threads, embeddings=self.hidden is None, unified=True,
                       eval_callback=self.hidden.callback if self.hidden else None,
                       seqs_per_token=EMBED_SEQS if self.hidden else 1)

    def step(self, jobs: deque[EmbedJob], budget: int) -> list[EmbedJob]:
        """One decode over the next waiting inputs (oldest job first); the jobs it finished."""
        budget = min(budget, self.ctx.n_batch)
        packing = Packing(share=self.hidden is not None and self.causal)
        todo: list[EmbedJob] = []
        for job in jobs:
            for i in range(len(job.vectors), len(job.inputs)):
                cost = packing.cost(job.inputs[i])
                if len(todo) >= EMBED_SEQS or (todo and len(packing.entries) + cost > budget):
                    break
                packing.add(job.inputs[i])
                todo.append(job)
            else:
                continue
            break
        vectors, packing = self._vectors(packing)
        for job, vector, shared in zip(todo, vectors, packing.shared, strict=True):
            job.vectors.append(vector)
            job.shared_tokens += shared
        finished = [j for j in jobs if j.done]
        for j in finished:
            jobs.remove(j)
        return finished

    def _vectors(self, packing: Packing) -> tuple[list[list[float]], Packing]:
        """One decode, one sequence per input; the vectors and the packing decoded."""
        self.ctx.clear()
        self.ctx.clear_batch()
        if self.hidden is not None:
            self.hidden.clear()  # a failed decode may have left rows
        for token, pos, seqs in packing.entries:  # pooling reads every token's output
            self.ctx.add_shared(token, pos, seqs, True)
        rc = self.ctx.decode()
        if rc != 0:
            raise RuntimeError(f"embedding failed (llama_decode code {rc})")
        if self.hidden is None:
            pooled = [self.ctx.embedding(seq) for seq in range(len(packing.paths))]
        else:
            pooled = self.hidden.pooled(packing.paths, len(packing.entries))
            if pooled is None:  # this graph has no hidden-state tensor by that name
                self.ctx.free()
                self.hidden = None
                self.ctx = self._context()
                return self._vectors(packing.unshared())
        return [_normalise(v) for v in pooled], packing

    def free(self) -> None:
        self.ctx.free()


def _normalise(v: list[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in v))
    return [x / norm for x in v] if norm > 0 else v
