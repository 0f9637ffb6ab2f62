"""Incremental tool-call parser: generated text in, ``Delta`` and ``ToolCallDelta`` events out.

Fed one token's text at a time. Text that might be the start of a call (a prefix of a trigger)
is held back until it is known not to be one, so no trigger leaks into ``content``. Once a call's
name is known, its header goes out (index, ``call_...`` id, name, empty arguments) and then the
arguments stream as the model writes them, fragment by fragment. A call that turns out not to be
one (malformed before its name was known) is given back as text.

Small models tend to repeat a call over and over. A call that repeats an earlier one (same name,
same arguments) is held back while it matches and, if it turns out identical, dropped and
``repeated`` set, so the step loop ends the reply there; a call that differs goes out as soon as
it differs.
"""

from __future__ import annotations

import json
import re
import uuid

from jan.sdk.inference import Delta, ToolCallDelta

from .toolsyntax import CallSyntax

Event = Delta | ToolCallDelta
HEAD = re.compile(r'\s*\{\s*"name"\s*:\s*"((?:[^"\\]|\\.)*)"\s*,\s*"(?:arguments|parameters)"'
                  r"\s*:\s*")
MAX_HEAD = 4096  # a call whose name is not known after this many characters is not a call
WS = " \t\r\n"


def new_call_id() -> str:
    return "call_" + uuid.uuid4().hex[:24]


class ToolCallParser:
    def __init__(self, syntax: CallSyntax) -> None:
        self.syn = syntax
        self.buf = ""  # text not yet consumed
        self.raw = ""  # text since the current call's trigger, in case it turns out to be text
        self.state = "text"
        self.index = -1  # index of the current/last call
        self.said_text = False  # non-whitespace text went out (bare JSON calls only at start)
        self._depth = 0
        self._in_str = self._esc = self._started = False
        self.history: list[tuple[str, str]] = []  # (name, arguments) of finished calls
        self._call: tuple[str, str] = ("", "")  # the current call's (id, name)
        self._args_text = ""
        self._held = False  # the current call's header and arguments are held (maybe a repeat)
        self.repeated = False

    @property
    def calls(self) -> int:
        return self.index + 1

    def feed(self, text: str) -> list[Event]:
        self.buf += text
        if self.state not in ("text", "after"):
            self.raw += text
        out: list[Event] = []
        while self.buf and self._step(out):
            pass
        return out

    def finish(self) -> list[Event]:
        """End of generation: give back whatever is held (a truncated call stays truncated)."""
        out: list[Event] = []
        if self.repeated:
            pass
        elif self.state == "text" or self.state == "after":
            self._text(out, self.buf)
        elif self.state in ("head", "list"):
            self._abandon(out)
        self.buf = ""
        return out

    # -- states ------------------------------------------------------------------------------
    def _step(self, out: list[Event]) -> bool:
        """Consume what can be consumed; False when more input is needed."""
        handler = {"text": self._text_state, "list": self._list, "head": self._head,
                   "args": self._args, "close": self._close, "end": self._end,
                   "between": self._between, "after": self._after}[self.state]
        return handler(out)

    def _text(self, out: list[Event], text: str) -> None:
        if text:
            self.said_text = self.said_text or bool(text.strip(WS))
            if out and isinstance(out[-1], Delta):
                out[-1] = Delta(text=out[-1].text + text)
            else:
                out.append(Delta(text=text))

    def _triggers(self) -> list[tuple[str, bool]]:
        """(trigger, kept in the call body)."""
        trig = [(s, False) for s in self.syn.starts]
        if self.syn.bare_json and not self.said_text:
            trig.append(("{", True))
        return trig

    def _text_state(self, out: list[Event]) -> bool:
        best: tuple[int, str, bool] | None = None
        for trig, keep in self._triggers():
            if keep:  # bare JSON: only as the first non-space text of the reply
                i = len(self.buf) - len(self.buf.lstrip(WS))
                hit = i if self.buf[i:i + 1] == trig else -1
            else:
                hit = self.buf.find(trig)
            if hit >= 0 and (best is None or hit < best[0]):
                best = (hit, trig, keep)
        if best is None:
            hold = self._partial(self.buf)
            if not self.said_text and not self.buf[: len(self.buf) - hold].strip(WS):
                hold = len(self.buf)  # only whitespace so far: it may just precede a call
            self._text(out, self.buf[: len(self.buf) - hold])
            self.buf = self.buf[len(self.buf) - hold:]
            return False
        i, trig, keep = best
        if self.said_text or self.buf[:i].strip(WS):
            self._text(out, self.buf[:i])  # (whitespace alone before a call is dropped)
        self.raw = self.buf[i:]
        self.buf = self.buf[i:] if keep else self.buf[i + len(trig):]
        self.state = "list" if self.syn.list_form else "head"
        return True

    def _partial(self, text: str) -> int:
        """Length of the longest suffix of ``text`` that is a proper prefix of a trigger."""
        best = 0
        for trig, keep in self._triggers():
            if keep:
                continue
            for n in range(min(len(trig) - 1, len(text)), best, -1):
                if text.endswith(trig[:n]):
                    best = n
                    break
        return best

    def _list(self, out: list[Event]) -> bool:
        rest = self.buf.lstrip(WS)
        if not rest:
            return False
        if rest[0] != "[":
            self._abandon(out)
            return True
        self.buf = rest[1:]
        self.state = "head"
        return True

    def _head(self, out: list[Event]) -> bool:
        m = HEAD.match(self.buf)
        if m is None:
            rest = self.buf.lstrip(WS)
            if (rest and rest[0] != "{") or len(self.buf) > MAX_HEAD:
                self._abandon(out)
                return True
            return False  # not enough text yet (or an object in another key order: wait)
        try:
            name = json.loads('"' + m.group(1) + '"')
        except ValueError:
            self._abandon(out)
            return True
        self.index += 1
        self._call, self._args_text = (new_call_id(), name), ""
        self._held = any(n == name for n, _ in self.history)
        if not self._held:
            out.append(ToolCallDelta(index=self.index, id=self._call[0], name=name, arguments=""))
        self.buf = self.buf[m.end():]
        self._depth, self._in_str, self._esc, self._started = 0, False, False, False
        self.state = "args"
        return True

    def _args(self, out: list[Event]) -> bool:
        buf, i, end = self.buf, 0, -1
        if not self._started:
            i = len(buf) - len(buf.lstrip(WS))
            buf = buf[i:]
            i = 0
            if not buf:
                self.buf = ""
                return False
        for k, c in enumerate(buf):
            self._started = True
            if self._in_str:
                if self._esc:
                    self._esc = False
                elif c == "\\":
                    self._esc = True
                elif c == '"':
                    self._in_str = False
                    if self._depth == 0:
                        end = k + 1
                        break
            elif c in "{[":
                self._depth += 1
            elif c in "}]":
                self._depth -= 1
                if self._depth <= 0:
                    end = k + 1 if self._depth == 0 else k
                    break
            elif c == '"':
                self._in_str = True
            elif self._depth == 0 and c in ",}" + WS:
                end = k
                break
        piece = buf if end < 0 else buf[:end]
        self._args_text += piece
        self.buf = "" if end < 0 else buf[end:]
        if self._held:
            self._check_repeat(out, done=end >= 0)
        elif piece:
            out.append(ToolCallDelta(index=self.index, arguments=piece))
        if end >= 0:
            self.history.append((self._call[1], self._args_text))
            self.state = "close"
        return end >= 0 and not self.repeated

    def _check_repeat(self, out: list[Event], done: bool) -> None:
        name, args = self._call[1], self._args_text
        same = [a for n, a in self.history if n == name]
        if done and args in same:
            self.repeated = True  # the model is looping: drop the copy and end the reply
            self.index -= 1
            self.state, self.buf = "after", ""
            return
        if not done and any(a.startswith(args) for a in same):
            return  # still a copy so far: keep holding
        self._held = False
        out.append(ToolCallDelta(index=self.index, id=self._call[0], name=name, arguments=""))
        if args:
            out.append(ToolCallDelta(index=self.index, arguments=args))

    def _close(self, out: list[Event]) -> bool:
        """After the arguments: the object's ``}`` and the family's end marker."""
        rest = self.buf.lstrip(WS)
        if not rest:
            self.buf = rest
            return False
        if rest[0] == "}":
            rest = rest[1:]
        self.buf = rest
        self.state = "end" if self.syn.end else "between"
        return True

    def _end(self, out: list[Event]) -> bool:
        rest = self.buf.lstrip(WS)
        end = self.syn.end
        if len(rest) < len(end) and end.startswith(rest):
            self.buf = rest
            return False
        self.buf = rest[len(end):] if rest.startswith(end) else rest
        self.state = "between"
        return True

    def _between(self, out: list[Event]) -> bool:
        """After a call: another one, or (with a grammar, never) more text."""
        rest = self.buf.lstrip(WS)
        if not rest:
            self.buf = rest
            return False
        if self.syn.list_form:
            if rest[0] == ",":
                self.buf, self.state, self.raw = rest[1:], "head", ""
                return True
            self.buf, self.state = rest[1:] if rest[0] == "]" else rest, "after"
            return True
        for trig in self.syn.starts:
            if rest.startswith(trig):
                self.buf, self.state, self.raw = rest[len(trig):], "head", rest
                return True
            if trig.startswith(rest):
                self.buf = rest
                return False
        self.buf, self.state = rest, "after"
        return True

    def _after(self, out: list[Event]) -> bool:
        """Text after the calls: passed on as content."""
        if not self.repeated:
            self._text(out, self.buf)
        self.buf = ""
        return False

    def _abandon(self, out: list[Event]) -> None:
        """What looked like a call is not one: it was text after all."""
        text, self.raw, self.buf = self.raw, "", ""
        self.state = "text" if self.index < 0 else "after"
        self._text(out, text)

