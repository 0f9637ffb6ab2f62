"""The scheduler's side of the on-disk KV cache (``kvstore``): what to save, what to restore.

- Save a slot's tokens when it is about to lose at least ``min_tokens`` of them (another
  conversation takes the slot) and on shutdown, unless the store has exactly those tokens.
- Restore when a request's prompt shares at least ``min_tokens`` more with a stored entry than
  with the slot it got. The reader thread reads and verifies the file (``prefetch``), so the
  step loop only hands the bytes to llama.cpp.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from .kvstore import KVStore, common_prefix
from .native import Context


class SlotLike(Protocol):
    seq: int
    cached: list[int]


@dataclass
class Restore:
    tokens: list[int]  # what the state holds
    state: bytes
    shared: int  # tokens the prompt shares with it


class Recall:
    def __init__(self, store: KVStore, ctx: Context, min_tokens: int) -> None:
        self.store, self.ctx = store, ctx
        self.min_tokens = max(1, min_tokens)

    def prefetch(self, tokens: list[int], slots: list[SlotLike]) -> Restore | None:
        """(Reader thread.) The stored state worth restoring for this prompt, read and checked."""
        hit = self.store.best(tokens)
        if hit is None:
            return None
        entry, shared = hit
        try:  # the slots belong to the step loop: a racy read only makes this guess worse
            in_slots = max((common_prefix(s.cached, tokens) for s in slots), default=0)
        except IndexError:
            in_slots = 0
        if shared - in_slots < self.min_tokens:
            return None
        got = self.store.load(entry)
        return Restore(got[0], got[1], shared) if got is not None else None

    def admit(self, slot: SlotLike, tokens: list[int], restore: Restore | None) -> int:
        """Before a request starts in ``slot``: restore its stored prefix if that beats what the
        slot holds (saving the slot's tokens first). Returns the tokens restored."""
        if restore is None:
            return 0
        own = common_prefix(slot.cached, tokens)
        if restore.shared - own < self.min_tokens:
            return 0
        self.evicting(slot, 0)
        slot.cached = []
        if not self.ctx.set_seq_state(slot.seq, restore.state):
            return 0
        slot.cached = list(restore.tokens)
        self.store.restored += 1
        return min(restore.shared, len(tokens) - 1)

    def evicting(self, slot: SlotLike, keep: int) -> None:
        """``slot`` is about to keep only its first ``keep`` tokens: save them all if that
        loses enough to be worth a file."""
        cached = slot.cached
        if len(cached) - keep < self.min_tokens or self.store.has(cached):
            return
        self.store.save(cached, self.ctx.seq_state(slot.seq))

    def save_all(self, slots: list[SlotLike], timeout: float) -> None:
        """Shutdown: every slot's tokens to disk, then wait for the writes."""
        for slot in slots:
            self.evicting(slot, 0)
        self.store.flush(timeout)
