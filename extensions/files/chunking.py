"""Chunks that respect a document's structure, with overlap.

Units are paragraphs, then sentences, then word windows for anything still too long; units are
packed into chunks of at most ``max_tokens``; a new chunk in the same section starts with the
previous chunk's last units (up to ``overlap`` tokens), so a fact cut by a boundary is still
whole in one chunk. A section (PDF page, Markdown heading, HTML block) ends a chunk unless the
chunk is still small. Token counts are an estimate (words and punctuation marks), close to
what BPE tokenizers give for English prose.
"""

from __future__ import annotations

import re

AUTO_MAX_TOKENS = 400
AUTO_OVERLAP = 100

_TOKEN = re.compile(r"\w+|[^\w\s]")
_PARA = re.compile(r"\n\s*\n")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def count_tokens(text: str) -> int:
    return len(_TOKEN.findall(text))


def _split_long(text: str, max_tokens: int) -> list[str]:
    if count_tokens(text) <= max_tokens:
        return [text]
    sentences = [s for s in _SENTENCE.split(text) if s.strip()]
    if len(sentences) > 1:
        return [part for s in sentences for part in _split_long(s, max_tokens)]
    words = text.split()
    out, current, size = [], [], 0
    for word in words:
        n = count_tokens(word)
        if current and size + n > max_tokens:
            out.append(" ".join(current))
            current, size = [], 0
        current.append(word)
        size += n
    if current:
        out.append(" ".join(current))
    return out


def _units(section: str, max_tokens: int) -> list[str]:
    paras = [p.strip() for p in _PARA.split(section) if p.strip()]
    return [u for p in paras for u in _split_long(p, max_tokens)]


def chunk(sections: list[str], max_tokens: int = AUTO_MAX_TOKENS,
          overlap: int = AUTO_OVERLAP) -> list[str]:
    """The chunks of a document given as sections."""
    if max_tokens < 1 or overlap < 0 or overlap > max_tokens // 2:
        raise ValueError("need 0 <= overlap <= max_tokens / 2")
    chunks: list[str] = []
    current: list[tuple[str, int]] = []
    fresh = False  # whether ``current`` holds anything beyond the carried-over overlap

    def flush() -> None:
        nonlocal current, fresh
        if current and fresh:
            chunks.append("\n\n".join(u for u, _ in current))
        current, fresh = [], False

    for section in sections:
        if sum(n for _, n in current) >= max_tokens // 4:
            flush()
        for unit in _units(section, max_tokens):
            n = count_tokens(unit)
            if current and sum(m for _, m in current) + n > max_tokens:
                carried = _tail(current, overlap, max_tokens - n)
                flush()
                current = carried
            current.append((unit, n))
            fresh = True
    flush()
    return chunks


def _tail(units: list[tuple[str, int]], overlap: int, room: int) -> list[tuple[str, int]]:
    """The last units of a chunk totalling at most ``overlap`` (and ``room``) tokens."""
    out: list[tuple[str, int]] = []
    total = 0
    for unit, n in reversed(units):
        if total + n > min(overlap, room):
            break
        out.insert(0, (unit, n))
        total += n
    return out
