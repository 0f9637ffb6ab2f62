"""An on-disk cache of per-sequence KV state, so a conversation outlives its slot.

When a slot's tokens are about to be lost (another conversation takes the slot, the model is
unloaded, the server stops), the runner copies the sequence's state out of llama.cpp
(``llama_state_seq_get_data``) and a writer thread stores it here; a later request whose prompt
shares a long prefix with a stored entry gets it back (``llama_state_seq_set_data``) instead of
re-processing the prompt.

One file per entry, ``<fingerprint[:16]>-<hash of tokens[:32]>.kv``:
``MAGIC``, a 4-byte header length, a JSON header (fingerprint, model path, token count, payload
size, CRC-32 of tokens + payload), the tokens (int32 LE), then llama.cpp's state bytes. The
fingerprint covers the model file's identity (path, size, mtime) and the settings that shape
the state, so an entry is only ever loaded into a context that made it. Files are written to a
temporary name and renamed (a crash never leaves half an entry); an entry whose checks fail is
deleted. The folder has a byte cap; the least recently used entries (file mtime, refreshed on
every hit) go first. Several runners may share the folder: a file that vanished is just a miss.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import struct
import sys
import threading
import time
import zlib
from array import array
from dataclasses import dataclass
from pathlib import Path

MAGIC = b"JANKV1\n"
FORMAT = 1


def fingerprint(model_path: str, **settings: object) -> str:
    """Model file identity + the load settings that shape a sequence's state."""
    st = os.stat(model_path)
    import llama_cpp  # the state layout may change with the library

    ident = {"path": os.path.realpath(model_path), "size": st.st_size, "mtime": st.st_mtime_ns,
             "llama_cpp": llama_cpp.__version__, "format": FORMAT, **settings}
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()


def common_prefix(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


@dataclass
class Entry:
    path: Path
    tokens: list[int]


class KVStore:
    def __init__(self, folder: str | Path, fp: str, model_path: str, cap_bytes: int) -> None:
        self.dir = Path(folder)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.fp, self.model_path, self.cap = fp, os.path.realpath(model_path), cap_bytes
        self.entries: dict[str, Entry] = {}  # file name -> entry (this fingerprint only)
        self.lock = threading.Lock()
        self.saved = self.restored = self.dropped = 0
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._scan()
        threading.Thread(target=self._write_loop, daemon=True, name="kv-writer").start()

    # -- index -------------------------------------------------------------------------------
    def _scan(self) -> None:
        for path in self.dir.iterdir():
            if path.suffix == ".tmp":  # a write that never finished (not one under way)
                if _age(path) > 600:
                    _unlink(path)
            elif path.suffix == ".kv":
                head = self._read(path, payload=False)
                if head is not None:
                    self.entries[path.name] = Entry(path, head[1])

    def _read(self, path: Path, *, payload: bool) -> tuple[dict, list[int], bytes] | None:
        """Header, tokens and (when ``payload``) the verified state; None (and the file gone
        if it is corrupt or stale) otherwise."""
        try:
            with open(path, "rb") as f:
                if f.read(len(MAGIC)) != MAGIC:
                    raise ValueError("bad magic")
                (n,) = struct.unpack("<I", f.read(4))
                if n > 1 << 20:
                    raise ValueError("header too long")
                head = json.loads(f.read(n))
                if head.get("fingerprint") != self.fp:
                    if head.get("model") == self.model_path:  # our model, other file or settings
                        raise ValueError("stale")
                    return None  # another model's entry: not ours to judge
                raw = f.read(4 * int(head["n_tokens"]))
                data = f.read() if payload else b""
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError, struct.error) as exc:
            self._drop(path, exc)
            return None
        toks = array("i")
        try:
            toks.frombytes(raw)
            if len(toks) != head["n_tokens"]:
                raise ValueError("truncated tokens")
            if payload and (len(data) != head["size"] or
                            zlib.crc32(data, zlib.crc32(raw)) != head["crc"]):
                raise ValueError("checksum mismatch")
        except (ValueError, KeyError) as exc:
            self._drop(path, exc)
            return None
        if sys.byteorder != "little":
            toks.byteswap()
        return head, toks.tolist(), data

    def _drop(self, path: Path, why: object) -> None:
        print(f"runner: kv cache entry {path.name} removed: {why}", file=sys.stderr, flush=True)
        _unlink(path)
        with self.lock:
            self.entries.pop(path.name, None)
            self.dropped += 1

    # -- lookup (any thread) -----------------------------------------------------------------
    def best(self, tokens: list[int]) -> tuple[Entry, int] | None:
        """The entry sharing the longest prefix with ``tokens`` (and that length)."""
        with self.lock:
            found = [(common_prefix(e.tokens, tokens), e) for e in self.entries.values()]
        if not found:
            return None
        n, entry = max(found, key=lambda t: t[0])
        return (entry, n) if n > 0 else None

    def load(self, entry: Entry) -> tuple[list[int], bytes] | None:
        """The entry's tokens and state bytes, verified; refreshes its LRU time."""
        got = self._read(entry.path, payload=True)
        if got is None:
            with self.lock:
                self.entries.pop(entry.path.name, None)
            return None
        _touch(entry.path)
        return got[1], got[2]

    def has(self, tokens: list[int]) -> bool:
        with self.lock:
            return _name(self.fp, tokens) in self.entries

    # -- saving (a writer thread: the step loop only copies the bytes) -----------------------
    def save(self, tokens: list[int], state: bytes) -> None:
        if not state or len(state) > self.cap:
            return
        self._jobs.put((list(tokens), state))

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every entry queued so far is on disk (shutdown, tests)."""
        done = threading.Event()
        self._jobs.put(done)  # FIFO: set once everything before it is written
        return done.wait(timeout)

    def _write_loop(self) -> None:
        while True:
            job = self._jobs.get()
            if isinstance(job, threading.Event):
                job.set()
                continue
            try:
                self._write(*job)
            except OSError as exc:  # a full disk must not end the runner
                print(f"runner: kv cache write failed: {exc}", file=sys.stderr, flush=True)

    def _write(self, tokens: list[int], state: bytes) -> None:
        raw = array("i", tokens)
        if sys.byteorder != "little":
            raw.byteswap()
        rawb = raw.tobytes()
        head = json.dumps({"fingerprint": self.fp, "model": self.model_path,
                           "n_tokens": len(tokens), "size": len(state),
                           "crc": zlib.crc32(state, zlib.crc32(rawb))}).encode()
        name = _name(self.fp, tokens)
        path = self.dir / name
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            f.write(MAGIC + struct.pack("<I", len(head)) + head)
            f.write(rawb)
            f.write(state)
        with self.lock:  # renamed and indexed together: a lookup never sees one without the other
            os.replace(tmp, path)
            # Entries this one extends are now redundant: drop them.
            shorter = [e for e in self.entries.values()
                       if len(e.tokens) < len(tokens) and tokens[:len(e.tokens)] == e.tokens]
            for e in shorter:
                self.entries.pop(e.path.name, None)
            self.entries[name] = Entry(path, list(tokens))
            self.saved += 1
        for e in shorter:
            _unlink(e.path)
        self._enforce_cap()

    def _enforce_cap(self) -> None:
        """Delete least recently used entries (of any model) until the folder fits its cap."""
        files = []
        for p in self.dir.glob("*.kv"):
            try:
                st = p.stat()
            except FileNotFoundError:
                continue
            files.append((st.st_mtime_ns, st.st_size, p))
        total = sum(size for _, size, _ in files)
        for _, size, p in sorted(files, key=lambda f: f[0]):
            if total <= self.cap:
                break
            _unlink(p)
            with self.lock:
                self.entries.pop(p.name, None)
            total -= size

    def size(self) -> int:
        return sum(p.stat().st_size for p in self.dir.glob("*.kv") if p.exists())


def _name(fp: str, tokens: list[int]) -> str:
    digest = hashlib.sha256(array("i", tokens).tobytes()).hexdigest()
    return f"{fp[:16]}-{digest[:32]}.kv"


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:
        print(f"runner: could not remove {path}: {exc}", file=sys.stderr, flush=True)


def _touch(path: Path) -> None:
    try:
        os.utime(path)
    except OSError:
        pass


def _age(path: Path) -> float:
    try:
        return time.time() - path.stat().st_mtime
    except OSError:
        return 0.0
