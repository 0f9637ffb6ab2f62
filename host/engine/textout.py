"""Per-sequence text output: incremental UTF-8 decoding and stop strings.

Byte-level BPE splits characters across tokens, so bytes are decoded incrementally (a partial
character waits for the next token instead of being dropped). Text that could be the start of a
stop string is held back until it is known not to be one, so a stop string never leaks out.
"""

from __future__ import annotations

import codecs


class TextOut:
    def __init__(self, stops: list[str]) -> None:
        self._dec = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._stops = [s for s in dict.fromkeys(stops) if s]
        self._held = ""
        self.stopped = False

    def feed(self, data: bytes) -> str:
        """Add a token's bytes; return the text that is safe to emit now."""
        text = self._held + self._dec.decode(data)
        if not self._stops:
            self._held = ""
            return text
        cut = self._first_stop(text)
        if cut is not None:
            self.stopped = True
            self._held = ""
            return text[:cut]
        keep = self._partial_suffix(text)
        self._held = text[len(text) - keep:] if keep else ""
        return text[: len(text) - keep]

    def flush(self) -> str:
        """At the end of generation: whatever was held back. The bytes of a character cut off
        by the end of generation are dropped rather than shown as U+FFFD."""
        text, self._held = self._held, ""
        return text  # held text never contains a whole stop string: feed() cuts those

    def _first_stop(self, text: str) -> int | None:
        hits = [i for i in (text.find(s) for s in self._stops) if i >= 0]
        return min(hits) if hits else None

    def _partial_suffix(self, text: str) -> int:
        """Length of the longest suffix of ``text`` that is a proper prefix of a stop string."""
        best = 0
        for s in self._stops:
            for n in range(min(len(s) - 1, len(text)), best, -1):
                if text.endswith(s[:n]):
                    best = n
                    break
        return best
