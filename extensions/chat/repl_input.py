"""Reading the user's turns for ``jan chat``: lines, pastes, ``\"\"\"`` blocks and Ctrl-C.

In a terminal, stdin is read from the event loop (``add_reader``), so Ctrl-C at the prompt can
be handled without a blocked thread. The terminal stays in its normal line mode; lines that
arrive together (within ``PASTE_GAP``) are one paste and become one turn. A pipe is read by a
daemon thread, one line per turn, as before.
"""

from __future__ import annotations

import asyncio
import codecs
import os
import sys
import threading
from typing import TextIO

PASTE_GAP = 0.06  # seconds: a pasted text's lines arrive back to back, typed ones do not
INTERRUPT = object()
EOF = object()


class LineSource:
    """Lines (without newline), ``INTERRUPT`` for Ctrl-C, ``EOF`` at the end."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[object] = asyncio.Queue()
        self.loop = asyncio.get_running_loop()

    def interrupt(self) -> None:
        self.queue.put_nowait(INTERRUPT)

    async def next(self, timeout: float | None = None) -> object:
        if timeout is None:
            return await self.queue.get()
        return await asyncio.wait_for(self.queue.get(), timeout)

    def discard_pending(self) -> None:
        """Drop Ctrl-Cs queued while a reply ran (they stopped the reply already)."""
        kept = [item for item in self._drain() if item is not INTERRUPT]
        for item in kept:
            self.queue.put_nowait(item)

    def _drain(self) -> list[object]:
        items = []
        while not self.queue.empty():
            items.append(self.queue.get_nowait())
        return items

    def close(self) -> None:
        pass


class TtyLines(LineSource):
    def __init__(self, stream: TextIO) -> None:
        super().__init__()
        self.fd = stream.fileno()
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.pending = ""
        self.loop.add_reader(self.fd, self._readable)

    def _readable(self) -> None:
        try:
            data = os.read(self.fd, 65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self.loop.remove_reader(self.fd)
            if self.pending:
                self.queue.put_nowait(self.pending)
                self.pending = ""
            self.queue.put_nowait(EOF)
            return
        self.pending += self.decoder.decode(data)
        *lines, self.pending = self.pending.split("\n")
        for line in lines:
            self.queue.put_nowait(line.rstrip("\r"))

    def close(self) -> None:
        self.loop.remove_reader(self.fd)


class PipeLines(LineSource):
    def __init__(self, stream: TextIO) -> None:
        super().__init__()
        self.stream = stream
        threading.Thread(target=self._pump, name="jan-chat-stdin", daemon=True).start()

    def _pump(self) -> None:
        try:
            for line in self.stream:
                self.loop.call_soon_threadsafe(self.queue.put_nowait, line.rstrip("\r\n"))
        except (OSError, ValueError, RuntimeError):
            pass
        try:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, EOF)
        except RuntimeError:  # the loop is gone: nobody is listening any more
            pass


def open_lines(stream: TextIO | None = None) -> LineSource:
    stream = stream or sys.stdin
    return TtyLines(stream) if stream.isatty() else PipeLines(stream)


async def read_turn(lines: LineSource, out: TextIO, prompt: str, more: str,
                    interactive: bool) -> object:
    """One turn: a line, a paste (lines arriving together) or a ``\"\"\"`` block.

    Returns the text, ``INTERRUPT`` or ``EOF``.
    """
    if interactive:
        out.write(prompt)
        out.flush()
    first = await lines.next()
    if not isinstance(first, str):
        return first
    got = [first]
    if first.lstrip().startswith('"""'):
        return await _block(lines, out, more, got, interactive)
    if interactive:
        while True:
            try:
                nxt = await lines.next(PASTE_GAP)
            except TimeoutError:
                break
            if not isinstance(nxt, str):
                lines.queue.put_nowait(nxt)  # handled at the next prompt
                break
            got.append(nxt)
    return "\n".join(got)


async def _block(lines: LineSource, out: TextIO, more: str, got: list[str],
                 interactive: bool) -> object:
    """A ``\"\"\"`` block: everything up to the closing ``\"\"\"``, quotes removed."""
    text = got[0].lstrip()[3:]
    body: list[str] = []
    while True:
        if text.rstrip().endswith('"""'):
            body.append(text.rstrip()[:-3])
            return "\n".join(body).strip("\n")
        body.append(text)
        if interactive and lines.queue.empty():
            out.write(more)
            out.flush()
        nxt = await lines.next()
        if not isinstance(nxt, str):
            return nxt
        text = nxt
