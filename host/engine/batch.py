"""The continuous-batching step loop: up to ``n_parallel`` sequences share one context.

Each ``step()``: admit waiting requests into free slots (the slot whose cached tokens share the
longest prefix with the prompt), then one ``llama_decode`` holding one token for every
generating sequence plus chunks of prompts within a per-step budget (so a long prompt never
stalls the other streams for long), then one sample per sequence that asked for logits.
Single-threaded by design: a llama.cpp context must never be shared across threads.
"""

from __future__ import annotations

import time
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from jan.sdk.inference import GenerationRequest, Usage

from .budget import StepBudget
from .kvstore import common_prefix
from .native import Context, Model
from .prefixes import Share, copy_prefix, find_share
from .prompts import RequestError
from .protocol import Failed, Finished, TokenText, ToolCallPiece
from .recall import Recall, Restore
from .sampling import Sampler
from .textout import TextOut
from .toolparse import ToolCallParser
from .tooluse import ToolPlan


@dataclass
class Prepared:
    """A request ready for admission (rendered and tokenized off the step loop's thread)."""

    id: int
    request: GenerationRequest
    tokens: list[int]
    grammar: str | None
    stops: list[str]
    tools: ToolPlan | None = None  # the request may call tools: parse its output for calls
    restore: Restore | None = None  # a stored KV state sharing a long prefix (read ahead)


@dataclass
class Slot:
    seq: int
    cached: list[int] = field(default_factory=list)  # tokens whose KV is in this sequence
    last_used: float = 0.0
    busy: bool = False


@dataclass
class Seq:
    p: Prepared
    slot: Slot
    sampler: Sampler
    out: TextOut
    fed: int  # prompt tokens in the KV cache
    n_cached: int
    n_restored: int = 0
    n_shared: int = 0
    n_gen: int = 0
    next_tok: int | None = None
    parser: ToolCallParser | None = None
    share: Share | None = None  # a prompt prefix to copy from another sequence first


@dataclass
class Work:
    seq: Seq
    tokens: list[int]
    pos0: int
    logits: bool
    idx: int = -1


class Scheduler:
    def __init__(self, model: Model, ctx: Context, n_parallel: int, prompt_chunk: int,
                 emit: Callable[[object], None], recall: Recall | None = None, *,
                 step_ms: float = 0.0, share_min: int = 0) -> None:
        self.model, self.ctx, self.emit, self.recall = model, ctx, emit, recall
        self.budget = StepBudget(max(1, prompt_chunk), step_ms, ctx.n_batch)
        self.share_min = share_min
        self.slots = [Slot(seq=i) for i in range(n_parallel)]
        self.pending: deque[Prepared] = deque()
        self.active: dict[int, Seq] = {}  # insertion order = admission order

    @property
    def busy(self) -> bool:
        return bool(self.active or self.pending)

    def submit(self, p: Prepared) -> None:
        self.pending.append(p)

    def cancel(self, req_id: int) -> None:
        for p in self.pending:
            if p.id == req_id:
                self.pending.remove(p)
                return
        seq = self.active.get(req_id)
        if seq is not None:
            self._release(seq)

    # -- admission ---------------------------------------------------------------------------
    def _admit(self) -> None:
        while self.pending:
            free = [s for s in self.slots if not s.busy]
            if not free:
                return
            p = self.pending.popleft()
            # Longest shared prefix first; on a tie the lowest id, which keeps the busy
            # sequences contiguous (0, 1, 2 decodes faster than 0, 2, 3).
            slot = max(free, key=lambda s: (common_prefix(s.cached, p.tokens), -s.seq))
            try:
                self._start(p, slot)
            except RequestError as exc:
                self.emit(Failed(id=p.id, status=exc.status, code=exc.code, param=exc.param,
                                 message=exc.message))
            except Exception as exc:  # noqa: BLE001 - one bad request must not end the runner
                self._crashed(p.id, exc)

    def _start(self, p: Prepared, slot: Slot) -> None:
        tools = p.tools
        sampler = Sampler(self.model, p.request, tools.grammar if tools else p.grammar,
                          lazy=tools.lazy if tools else None)
        restored = self.recall.admit(slot, p.tokens, p.restore) if self.recall else 0
        p.restore = None  # the bytes are in llama.cpp now (or useless): free them
        # Keep at least one prompt token to decode: its logits give the first sample.
        keep = min(common_prefix(slot.cached, p.tokens), len(p.tokens) - 1)
        if self.recall is not None and keep < len(slot.cached):
            self.recall.evicting(slot, keep)  # another conversation takes the slot: keep it
        if keep < len(slot.cached) and not self.ctx.seq_rm(slot.seq, keep, -1):
            self.ctx.seq_rm(slot.seq, -1, -1)
            keep = 0
        slot.cached = slot.cached[:keep]
        slot.busy = True
        seq = Seq(p=p, slot=slot, sampler=sampler, out=TextOut(p.stops), fed=keep,
                  n_cached=keep, n_restored=min(restored, keep),
                  parser=ToolCallParser(tools.syntax) if tools else None)
        active = list(self.active.values())
        seq.share = find_share(self.slots, active, {s.slot.seq: s.p.tokens for s in active},
                               slot, p.tokens, keep, self.share_min)
        self.active[p.id] = seq

    # -- the step ----------------------------------------------------------------------------
    def step(self) -> None:
        self._admit()
        work = self._plan()
        if not work:
            return
        try:
            self._run(work)
        except Exception as exc:  # noqa: BLE001 - last resort: fail this step's requests only
            for w in work:
                if w.seq.p.id in self.active:
                    self.ctx.seq_rm(w.seq.slot.seq, -1, -1)
                    w.seq.slot.cached = []
                    self._release(w.seq)
                    self._crashed(w.seq.p.id, exc)

    def _plan(self) -> list[Work]:
        work: list[Work] = []
        for seq in self.active.values():
            if seq.next_tok is not None:
                work.append(Work(seq, [seq.next_tok], len(seq.slot.cached), True))
                seq.next_tok = None
        # While others generate, a step's prompt tokens are capped (measured: about step_ms
        # of work) so their next token comes soon; otherwise the whole batch is for prompts.
        budget = self.budget.prompt_tokens(generating=bool(work)) - len(work)
        feeding = [s for s in self.active.values()
                   if s.fed < len(s.p.tokens) and self._take_share(s)]
        # First every prompt that fits whole (oldest first): each gets its first token in this
        # step, so short prompts are not stuck behind a long one; then chunks, oldest first.
        fits = [len(s.p.tokens) - s.fed <= budget for s in feeding]
        whole = [s for s, f in zip(feeding, fits, strict=True) if f]
        for seq in whole + [s for s, f in zip(feeding, fits, strict=True) if not f]:
            left = len(seq.p.tokens) - seq.fed
            if budget <= 0:
                break
            take = seq.p.tokens[seq.fed: seq.fed + min(left, budget)]
            work.append(Work(seq, take, seq.fed, len(take) == left))
            budget -= len(take)
        return work

    def _take_share(self, seq: Seq) -> bool:
        """Copy a shared prefix into ``seq`` before its prompt is fed; False while the source
        is still decoding that prefix (it started earlier: wait one step instead of repeating
        its work)."""
        share = seq.share
        if share is None:
            return True
        feeder = share.feeder
        if (feeder is not None and feeder.fed < share.tokens and feeder.slot is share.source
                and self.active.get(feeder.p.id) is feeder):
            return False
        seq.share = None
        n = copy_prefix(self.ctx, share, seq.slot, seq.p.tokens)
        if n > seq.fed:
            seq.fed = seq.n_cached = seq.n_shared = n
            seq.n_restored = 0  # the copy replaced whatever the slot held
        return True

    def _run(self, work: list[Work]) -> None:
        ctx = self.ctx
        ctx.clear_batch()
        # Sequences in ascending id order: llama.cpp then builds one micro-batch for all of them
        # (a permuted order cost 26-29 ms per 4-sequence step instead of 19-22 here).
        for w in sorted(work, key=lambda w: w.seq.slot.seq):
            w.idx = ctx.add_many(w.tokens, w.pos0, w.seq.slot.seq, w.logits)
        t0 = time.perf_counter()
        rc = ctx.decode()
        self.budget.measured(ctx.n_in_batch, time.perf_counter() - t0)
        if rc != 0:
            self._decode_failed(work, rc)
            return
        for w in work:
            seq = w.seq
            seq.slot.cached.extend(w.tokens)
            if seq.fed < len(seq.p.tokens):  # a prompt chunk, not a generated token
                seq.fed += len(w.tokens)
            if w.logits and seq.p.id in self.active:
                try:
                    self._on_token(seq, seq.sampler.sample(ctx.ptr, w.idx))
                except Exception as exc:  # noqa: BLE001 - fails this sequence, not the others
                    self._release(seq)
                    self._crashed(seq.p.id, exc)

    def _crashed(self, req_id: int, exc: Exception) -> None:
        """An unexpected error in one request: report it to that request alone."""
        traceback.print_exc()  # the runner's stderr goes to the server log
        self.emit(Failed(id=req_id, status=500, code="generation_failed",
                         message=f"generation failed: {type(exc).__name__}: {exc}"[:500]))

    def _decode_failed(self, work: list[Work], rc: int) -> None:
        for w in work:  # drop whatever this step may have left in the cache
            self.ctx.seq_rm(w.seq.slot.seq, w.pos0, -1)
        if len(work) > 1:  # isolate the culprit: only the sequences that fail alone are failed
            for w in work:
                if w.seq.p.id in self.active:
                    self._run([w])
            return
        seq = work[0].seq
        self._release(seq)
        self.emit(Failed(id=seq.p.id, status=500, code="decode_failed",
                         message=f"llama_decode failed with code {rc}"))

    def _on_token(self, seq: Seq, tok: int) -> None:
        if self.model.is_eog(tok):
            self._finish(seq, "stop")
            return
        seq.n_gen += 1
        self._emit_text(seq, seq.out.feed(self.model.piece(tok, special=seq.parser is not None)))
        max_tokens = seq.p.request.max_tokens
        if seq.out.stopped or (seq.parser is not None and seq.parser.repeated):
            self._finish(seq, "stop")
        elif max_tokens is not None and seq.n_gen >= max_tokens:
            self._finish(seq, "length")
        elif len(seq.slot.cached) + 1 >= self.ctx.n_ctx_seq:  # no room to decode this token
            self._finish(seq, "length")
        else:
            seq.next_tok = tok

    def _finish(self, seq: Seq, reason: str) -> None:
        self._emit_text(seq, seq.out.flush(), last=True)
        if seq.parser is not None and seq.parser.calls and reason == "stop":
            reason = "tool_calls"
        n_prompt = len(seq.p.tokens)
        usage = Usage(prompt_tokens=n_prompt, completion_tokens=seq.n_gen,
                      total_tokens=n_prompt + seq.n_gen, cached_tokens=seq.n_cached)
        self._release(seq)
        self.emit(Finished(id=seq.p.id, finish_reason=reason, usage=usage,
                           restored_tokens=seq.n_restored, shared_tokens=seq.n_shared))

    def _emit_text(self, seq: Seq, text: str, last: bool = False) -> None:
        """Text goes out as is, or through the tool-call parser when the request has tools."""
        if seq.parser is None:
            if text:
                self.emit(TokenText(id=seq.p.id, text=text))
            return
        events = seq.parser.feed(text) if text else []
        if last:
            events += seq.parser.finish()
        for ev in events:
            if ev.type == "delta":
                self.emit(TokenText(id=seq.p.id, text=ev.text))
            else:
                self.emit(ToolCallPiece(id=seq.p.id, index=ev.index, call_id=ev.id, name=ev.name,
                                        arguments=ev.arguments))

    def _release(self, seq: Seq) -> None:
        """Free the slot; its cached tokens stay for prefix reuse by the next request."""
        seq.sampler.free()
        seq.slot.busy = False
        seq.slot.last_used = time.monotonic()
        self.active.pop(seq.p.id, None)
