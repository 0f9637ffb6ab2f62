"""How many prompt tokens a step may hold while other sequences are generating.

A fixed count is wrong on every machine but one: 64 tokens take ~250 ms on two small cores and
~5 ms on a GPU. The budget is instead a time (``step_ms``, the longest a generating stream should
wait for its next token because prompts are being admitted) turned into tokens with the decode
cost measured on this machine, for this model, from the steps already run.
"""

from __future__ import annotations

MIN_CHUNK = 16  # a prompt always progresses, however slow the machine
MIN_SAMPLE = 32  # smaller steps are dominated by fixed costs: they say little per token
WEIGHT = 0.2  # of the newest sample in the moving average


class StepBudget:
    def __init__(self, initial: int, step_ms: float, n_batch: int) -> None:
        self.initial, self.step_ms, self.n_batch = initial, step_ms, n_batch
        self.ms_per_token: float | None = None

    def prompt_tokens(self, generating: bool) -> int:
        """Tokens for this step's batch (generated tokens included)."""
        if not generating:  # nobody waits for a next token: the fewest, largest decodes
            return self.n_batch
        if self.step_ms <= 0 or self.ms_per_token is None:
            return min(self.initial, self.n_batch)
        return max(MIN_CHUNK, min(self.n_batch, int(self.step_ms / self.ms_per_token)))

    def measured(self, tokens: int, seconds: float) -> None:
        """A decode of ``tokens`` took ``seconds``."""
        if tokens < MIN_SAMPLE:
            return
        ms = seconds * 1000 / tokens
        last = self.ms_per_token
        self.ms_per_token = ms if last is None else (1 - WEIGHT) * last + WEIGHT * ms
