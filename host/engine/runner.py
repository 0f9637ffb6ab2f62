"""A model runner subprocess: ``python -m jan.host.engine.runner CMD_FD EVENT_FD``.

The manager passes two inherited pipe descriptors: commands come in on ``CMD_FD``, events go out
on ``EVENT_FD`` (JSON lines, see ``protocol``). The first command is ``load``. A reader thread
parses commands and renders/tokenizes prompts (tokenizing off-thread is safe in llama.cpp), so
the main thread only runs the step loop. End of the command pipe (the manager died) ends the
runner.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import traceback
from collections import deque

from pydantic import ValidationError

from .batch import Prepared, Scheduler
from .embed import Embedder, EmbedJob, embed_limit, embed_tokens
from .kvstore import KVStore, fingerprint
from .native import Context, Model, init_backend, threads
from .prompts import Prompter, RequestError
from .protocol import (
    COMMAND,
    MAX_LINE,
    Cancel,
    Embed,
    Embedded,
    Failed,
    Fatal,
    Generate,
    Load,
    Ready,
    Shutdown,
    encode,
)
from .recall import Recall
from .sampling import grammar_for
from .tooluse import plan as tool_plan

N_BATCH = 512
EMBED_STEP = 256  # embedding tokens per decode at least, while sequences generate
SAVE_TIMEOUT = 8.0  # seconds the KV cache may take to reach the disk on shutdown


class EventWriter:
    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buf: list[bytes] = []

    def send(self, msg) -> None:  # noqa: ANN001 - any protocol event
        self.buf.append(encode(msg))

    def flush(self) -> None:
        if not self.buf:
            return
        data = memoryview(b"".join(self.buf))
        self.buf.clear()
        while data:  # one write per step: fewer wake-ups on the manager's side
            n = os.write(self.fd, data)
            data = data[n:]


class LineReader:
    """Complete lines from a pipe, in batches of whatever has arrived (one ``os.read``)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buf = b""

    def next_batch(self) -> list[bytes] | None:
        """Block until at least one whole line is there; None at end of input."""
        while b"\n" not in self.buf:
            chunk = os.read(self.fd, 1 << 16)
            if not chunk:
                return None
            self.buf += chunk
            if len(self.buf) > MAX_LINE:
                raise ValueError("command line too long")
        *lines, self.buf = self.buf.split(b"\n")
        return [line for line in lines if line.strip()]

    def first(self) -> bytes:
        batch = self.next_batch()
        if not batch:
            raise ValueError("no load command")
        if len(batch) > 1:  # keep the rest for the reader thread
            self.buf = b"\n".join(batch[1:]) + b"\n" + self.buf
        return batch[0]


class Runner:
    def __init__(self, load: Load, out: EventWriter) -> None:
        spec = load.spec
        init_backend()
        self.spec, self.out = spec, out
        self.n_threads = threads(spec.cpu_threads)
        self.n_parallel = max(1, spec.n_parallel)
        self.model = Model(spec.path, spec.ngl)
        self.ctx = Context(self.model, n_ctx=spec.ctx_len * self.n_parallel, n_seq=self.n_parallel,
                           n_batch=N_BATCH, n_threads=self.n_threads)
        self.prompter = Prompter(self.model, spec)
        self.recall = self._recall(load)
        self.sched = Scheduler(self.model, self.ctx, self.n_parallel, load.prompt_chunk, out.send,
                               self.recall, step_ms=load.step_ms, share_min=load.share_min_tokens)
        self._embedder: Embedder | None = None
        self.embed_limit = embed_limit(self.model, spec.ctx_len)
        self.embeds: deque[EmbedJob] = deque()

    def _recall(self, load: Load) -> Recall | None:
        if not load.kv_dir or load.kv_cap_bytes <= 0:
            return None
        fp = fingerprint(self.spec.path, n_ctx_seq=self.ctx.n_ctx_seq, n_batch=N_BATCH,
                         type_k="f16", type_v="f16", flash_attn="auto", ngl=self.spec.ngl)
        try:
            store = KVStore(load.kv_dir, fp, self.spec.path, load.kv_cap_bytes)
        except OSError as exc:  # an unusable folder only costs the cache
            print(f"runner: kv cache off: {exc}", file=sys.stderr, flush=True)
            return None
        return Recall(store, self.ctx, load.kv_min_tokens)

    def ready(self) -> Ready:
        return Ready(pid=os.getpid(), n_parallel=self.n_parallel, n_ctx_seq=self.ctx.n_ctx_seq,
                     n_embd=self.model.n_embd, template=self.prompter.kind)

    # -- reader thread -----------------------------------------------------------------------
    def prepare(self, cmd: Generate) -> Prepared | Failed:
        try:
            tokens, param = self.prompter.tokens(cmd.request)
            if len(tokens) >= self.ctx.n_ctx_seq:
                raise RequestError(
                    f"This model's context is {self.ctx.n_ctx_seq} tokens per request, but the "
                    f"prompt has {len(tokens)} tokens. Shorten the {param}.",
                    code="context_length_exceeded", param=param)
            stops = self.prompter.stops + cmd.request.stop
            tools = tool_plan(cmd.request, self.prompter.syntax)
            grammar = None if tools else grammar_for(cmd.request)
            restore = self.recall.prefetch(tokens, self.sched.slots) if self.recall else None
            return Prepared(cmd.id, cmd.request, tokens, grammar, stops, tools, restore)
        except RequestError as exc:
            return Failed(id=cmd.id, status=exc.status, code=exc.code, param=exc.param,
                          message=exc.message)

    def prepare_embed(self, cmd: Embed) -> EmbedJob | Failed:
        try:
            return EmbedJob(cmd.id, embed_tokens(self.model, self.embed_limit, cmd.inputs))
        except RequestError as exc:
            return Failed(id=cmd.id, status=exc.status, code=exc.code, param=exc.param,
                          message=exc.message)

    def read_commands(self, lines: LineReader, inbox: queue.SimpleQueue) -> None:
        """Parse and prepare whatever arrived together, then hand it over as one list, so that
        requests sent at the same moment are admitted in the same step."""
        try:
            while (batch := lines.next_batch()) is not None:
                items = []
                for line in batch:
                    try:
                        cmd = COMMAND.validate_json(line)
                    except ValidationError as exc:
                        print(f"runner: bad command ignored: {exc}", file=sys.stderr, flush=True)
                        continue
                    if isinstance(cmd, Generate):
                        cmd = self.prepare(cmd)
                    elif isinstance(cmd, Embed):
                        cmd = self.prepare_embed(cmd)
                    items.append(cmd)
                inbox.put(items)
        finally:  # end of input or a broken pipe: the runner must not outlive its manager
            inbox.put([Shutdown()])

    # -- main thread -------------------------------------------------------------------------
    def serve(self, inbox: queue.SimpleQueue) -> None:
        while True:
            items = list(inbox.get()) if not (self.sched.busy or self.embeds) else []
            while True:
                try:
                    items.extend(inbox.get_nowait())
                except queue.Empty:
                    break
            for item in items:
                if isinstance(item, Shutdown):
                    self.out.flush()
                    if self.recall is not None:  # conversations outlive the runner
                        self.recall.save_all(self.sched.slots, timeout=SAVE_TIMEOUT)
                    return
                self.handle(item)
            if self.embeds:
                self.embed_step()
            if self.sched.busy:
                self.sched.step()
            self.out.flush()

    def handle(self, item) -> None:  # noqa: ANN001 - a prepared request or a command
        if isinstance(item, Prepared):
            self.sched.submit(item)
        elif isinstance(item, Failed):
            self.out.send(item)
        elif isinstance(item, Cancel):
            self.sched.cancel(item.id)
        elif isinstance(item, EmbedJob):
            self.embeds.append(item)

    def embed_step(self) -> None:
        """One decode of waiting embedding inputs: the whole batch when nothing generates,
        else a step's prompt budget, at least ``EMBED_STEP`` tokens (the streams wait for it)."""
        busy = bool(self.sched.active)
        try:
            if self._embedder is None:
                self._embedder = Embedder(self.model, self.spec.ctx_len, self.n_threads)
            budget = (max(EMBED_STEP, self.sched.budget.prompt_tokens(generating=True)) if busy
                      else N_BATCH * 4)
            for job in self._embedder.step(self.embeds, budget):
                self.out.send(Embedded(id=job.id, vectors=job.vectors,
                                       prompt_tokens=job.prompt_tokens,
                                       shared_tokens=job.shared_tokens))
        except RuntimeError as exc:  # fail what was waiting, keep the runner
            for job in self.embeds:
                self.out.send(Failed(id=job.id, status=500, code="embedding_failed",
                                     message=str(exc)))
            self.embeds.clear()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    cmd_fd, evt_fd = int(args[0]), int(args[1])
    out = EventWriter(evt_fd)
    lines = LineReader(cmd_fd)
    try:
        load = COMMAND.validate_json(lines.first())
        if not isinstance(load, Load):
            raise ValueError("the first command must be load")
        runner = Runner(load, out)
    except Exception as exc:  # report why, then exit: the manager turns it into an API error
        traceback.print_exc()
        out.send(Fatal(message=str(exc) or type(exc).__name__))
        out.flush()
        return 1
    out.send(runner.ready())
    out.flush()
    inbox: queue.SimpleQueue = queue.SimpleQueue()
    threading.Thread(target=runner.read_commands, args=(lines, inbox), daemon=True).start()
    runner.serve(inbox)
    return 0


if __name__ == "__main__":
    # Exit without running native destructors: the OS frees memory faster and more safely.
    code = main()
    sys.stdout.flush()
    os._exit(code)
