"""Shared prefixes: a prompt start that another sequence already holds is copied, not processed.

Conversations of one assistant, or every chat with the same system prompt, begin with the same
tokens. When a request is admitted, the sequence holding the longest common prefix is found: an
idle slot's cached tokens, or another active sequence's prompt. If that beats the request's own
slot by at least ``min_tokens``, the request takes a ``Share``; before its next prompt chunk the
scheduler copies the source's KV cells into the request's slot (``llama_memory_seq_cp``) and
trims them to the shared length, so only the rest of the prompt is decoded. A source that is
itself still decoding that prefix (requests that arrived together) is waited for: the prefix is
decoded once, by the earliest request, and copied into the others.

With a KV cache split per sequence, llama.cpp copies the source's whole stream buffer at the
start of the next decode (before that decode writes anything), which is what makes a copy from a
sequence that is generating in the same step safe: its new cells are dropped by the trim.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from .kvstore import common_prefix
from .native import Context


class SlotLike(Protocol):
    seq: int
    cached: list[int]


class SeqLike(Protocol):
    fed: int

    @property
    def slot(self) -> SlotLike: ...


@dataclass
class Share:
    """A prefix of ``tokens`` this request will copy from ``source`` (a slot's cache)."""

    source: SlotLike
    tokens: int
    feeder: SeqLike | None = None  # the active sequence still decoding it, if any


def find_share(slots: list[SlotLike], active: list[SeqLike], prompts: dict[int, list[int]],
               own: SlotLike, tokens: list[int], have: int, min_tokens: int) -> Share | None:
    """The best prefix source for ``tokens`` entering ``own`` (which already holds ``have``).

    ``prompts`` maps a slot's seq id to the prompt of the active sequence in it."""
    if min_tokens <= 0:
        return None
    limit = len(tokens) - 1  # one prompt token is always decoded: its logits give a sample
    best: Share | None = None
    busy = {s.slot.seq: s for s in active}
    for slot in slots:
        if slot is own:
            continue
        feeder = busy.get(slot.seq)
        held = common_prefix(slot.cached, tokens)
        n, waits = held, None
        if feeder is not None and feeder.fed < len(prompts[slot.seq]):
            ahead = common_prefix(prompts[slot.seq], tokens)
            if ahead > held:  # its prompt will hold more once decoded: worth the wait
                n, waits = ahead, feeder
        n = min(n, limit)
        if n - have >= min_tokens and (best is None or n > best.tokens):
            best = Share(slot, n, waits)
    return best


def copy_prefix(ctx: Context, share: Share, dst: SlotLike, tokens: list[int]) -> int:
    """Copy the shared prefix into ``dst``; the tokens now cached there (0 if it fell through).

    The source may have changed since admission (taken by another request, trimmed): only what
    it still holds of ``tokens`` is copied."""
    src = share.source
    n = min(share.tokens, common_prefix(src.cached, tokens))
    if n <= common_prefix(dst.cached, tokens):
        return 0
    ctx.seq_cp(src.seq, dst.seq)
    ctx.seq_rm(dst.seq, n, -1)
    dst.cached = list(tokens[:n])
    return n
