"""A small GGUF metadata reader: header, key/value metadata (arrays included) and tensor infos.

Tensor data is never read. The file is memory-mapped and walked with ``struct.unpack_from``,
so even a 128k-token vocabulary parses in well under a second, and every length read from the
file is checked against the file size first: a truncated or hostile file raises ``GGUFError``
instead of allocating gigabytes or looping forever.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MAGIC = b"GGUF"
DEFAULT_ALIGNMENT = 32
MAX_STRING = 64 * 1024 * 1024  # a chat template or a token is never anywhere near this
MAX_ITEMS = 1 << 26
MAX_NESTING = 8
HEADER_READ = 4 << 20  # first read of the metadata; grown 4x while it is not enough
MAX_HEADER = 1 << 30
KEEP_ARRAY_ITEMS = 1024  # larger arrays are skipped (merges, scores) unless asked for by key

# value type id -> struct format (scalars only)
_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q",
            12: "d"}
_STRING, _ARRAY = 8, 9

# ggml type id -> (block size, bytes per block); checked against libggml's ggml_blck_size and
# ggml_type_size. Used only to tell whether a file is complete (all tensor data present).
GGML_TYPES: dict[int, tuple[int, int]] = {
    0: (1, 4), 1: (1, 2), 2: (32, 18), 3: (32, 20), 6: (32, 22), 7: (32, 24), 8: (32, 34),
    9: (32, 36), 10: (256, 84), 11: (256, 110), 12: (256, 144), 13: (256, 176), 14: (256, 210),
    15: (256, 292), 16: (256, 66), 17: (256, 74), 18: (256, 98), 19: (256, 50), 20: (32, 18),
    21: (256, 110), 22: (256, 82), 23: (256, 136), 24: (1, 1), 25: (1, 2), 26: (1, 4),
    27: (1, 8), 28: (1, 8), 29: (256, 56), 30: (1, 2), 34: (256, 54), 35: (256, 66),
    39: (32, 17), 40: (64, 36), 41: (128, 18), 42: (64, 18),
}

# general.file_type (llama_ftype) -> the quantization name users know
FILE_TYPES = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K",
    11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S",
    17: "Q5_K_M", 18: "Q6_K", 19: "IQ2_XXS", 20: "IQ2_XS", 21: "Q2_K_S", 22: "IQ3_XS",
    23: "IQ3_XXS", 24: "IQ1_S", 25: "IQ4_NL", 26: "IQ3_S", 27: "IQ3_M", 28: "IQ2_S",
    29: "IQ2_M", 30: "IQ4_XS", 31: "IQ1_M", 32: "BF16", 36: "TQ1_0", 37: "TQ2_0", 38: "MXFP4_MOE",
}


class GGUFError(ValueError):
    """The file is not a GGUF file we can read (wrong magic, truncated, corrupt)."""


@dataclass
class TensorInfo:
    name: str
    shape: tuple[int, ...]
    type: int
    offset: int

    def nbytes(self) -> int | None:
        block = GGML_TYPES.get(self.type)
        if block is None:
            return None
        count = 1
        for dim in self.shape:
            count *= dim
        return count // block[0] * block[1]


@dataclass
class GGUFInfo:
    """What a GGUF file says about itself (metadata only)."""

    path: Path
    version: int
    file_size: int
    metadata: dict[str, Any] = field(default_factory=dict)
    tensors: list[TensorInfo] = field(default_factory=list)
    data_offset: int = 0

    def get(self, key: str, default: Any = None) -> Any:
        return self.metadata.get(key, default)

    @property
    def architecture(self) -> str | None:
        return _str_or_none(self.get("general.architecture"))

    @property
    def name(self) -> str | None:
        return _str_or_none(self.get("general.name"))

    @property
    def context_length(self) -> int | None:
        value = self.get(f"{self.architecture}.context_length") if self.architecture else None
        return int(value) if isinstance(value, int) and value > 0 else None

    @property
    def chat_template(self) -> str | None:
        return _str_or_none(self.get("tokenizer.chat_template"))

    @property
    def quantization(self) -> str | None:
        ftype = self.get("general.file_type")
        return FILE_TYPES.get(ftype) if isinstance(ftype, int) else None

    def token(self, key: str) -> str | None:
        """The text of the token whose id is stored under ``key`` (e.g. the EOS token)."""
        token_id = self.get(key)
        tokens = self.get("tokenizer.ggml.tokens")
        if isinstance(token_id, int) and isinstance(tokens, list) and 0 <= token_id < len(tokens):
            return _str_or_none(tokens[token_id])
        return None

    @property
    def eos_token(self) -> str | None:
        return self.token("tokenizer.ggml.eos_token_id")

    @property
    def bos_token(self) -> str | None:
        return self.token("tokenizer.ggml.bos_token_id")

    def expected_size(self) -> int | None:
        """Bytes a complete file needs (end of the last tensor); ``None`` if a type is unknown."""
        end = self.data_offset
        for tensor in self.tensors:
            size = tensor.nbytes()
            if size is None:
                return None
            end = max(end, self.data_offset + tensor.offset + size)
        return end

    @property
    def complete(self) -> bool | None:
        """Whether all tensor data is present; ``None`` when that cannot be computed."""
        expected = self.expected_size()
        return None if expected is None else self.file_size >= expected


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


class _Cursor:
    """Bounds-checked little-endian reads over a buffer."""

    def __init__(self, buf: Any, size: int) -> None:
        self.buf, self.size, self.pos = buf, size, 0

    def need(self, n: int) -> None:
        if n < 0 or self.pos + n > self.size:
            raise GGUFError(f"truncated GGUF metadata at byte {self.pos}")

    def scalar(self, fmt: str) -> Any:
        width = struct.calcsize("<" + fmt)
        self.need(width)
        (value,) = struct.unpack_from("<" + fmt, self.buf, self.pos)
        self.pos += width
        return value

    def count(self, limit: int = MAX_ITEMS) -> int:
        value = self.scalar("Q")
        if value > limit:
            raise GGUFError(f"implausible count {value} at byte {self.pos - 8}")
        return value

    def string(self) -> str:
        length = self.count(MAX_STRING)
        self.need(length)
        raw = bytes(self.buf[self.pos:self.pos + length])
        self.pos += length
        return raw.decode("utf-8", errors="replace")

    def skip_string(self) -> None:
        length = self.count(MAX_STRING)
        self.need(length)
        self.pos += length

    def value(self, vtype: int, keep: bool) -> Any:
        if vtype in _SCALARS:
            return self.scalar(_SCALARS[vtype])
        if vtype == _STRING:
            return self.string()
        if vtype == _ARRAY:
            return self.array(keep)
        raise GGUFError(f"unknown GGUF value type {vtype} at byte {self.pos}")

    def array(self, keep: bool, depth: int = 0) -> list[Any] | None:
        if depth > MAX_NESTING:  # a crafted file must not exhaust the stack
            raise GGUFError(f"arrays nested deeper than {MAX_NESTING} at byte {self.pos}")
        etype = self.scalar("I")
        n = self.count()
        keep = keep or n <= KEEP_ARRAY_ITEMS
        if etype in _SCALARS:
            fmt = _SCALARS[etype]
            width = struct.calcsize("<" + fmt)
            self.need(n * width)
            values = list(struct.unpack_from(f"<{n}{fmt}", self.buf, self.pos)) if keep else None
            self.pos += n * width
            return values
        if etype == _STRING:
            if keep:
                return [self.string() for _ in range(n)]
            for _ in range(n):
                self.skip_string()
            return None
        if etype == _ARRAY:
            items = [self.array(keep, depth + 1) for _ in range(n)]
            return items if keep else None
        raise GGUFError(f"unknown GGUF array element type {etype} at byte {self.pos}")


def _read(buf: Any, size: int, path: Path, keep_keys: frozenset[str], *,
          file_size: int | None = None) -> GGUFInfo:
    cur = _Cursor(buf, size)
    cur.need(4)
    if bytes(buf[0:4]) != MAGIC:
        raise GGUFError(f"{path.name} is not a GGUF file (bad magic)")
    cur.pos = 4
    version = cur.scalar("I")
    if version not in (2, 3):
        hint = " (big-endian files are not supported)" if version > 0xFFFF else ""
        raise GGUFError(f"unsupported GGUF version {version}{hint}")
    n_tensors = cur.count()
    n_kv = cur.count()
    info = GGUFInfo(path=path, version=version, file_size=file_size or size)
    for _ in range(n_kv):
        key = cur.string()
        vtype = cur.scalar("I")
        value = cur.value(vtype, key in keep_keys)
        if value is not None:
            info.metadata[key] = value
    for _ in range(n_tensors):
        name = cur.string()
        n_dims = cur.scalar("I")
        if n_dims > 8:
            raise GGUFError(f"tensor {name!r} has {n_dims} dimensions")
        shape = tuple(cur.scalar("Q") for _ in range(n_dims))
        info.tensors.append(TensorInfo(name, shape, cur.scalar("I"), cur.scalar("Q")))
    alignment = info.get("general.alignment", DEFAULT_ALIGNMENT)
    if not isinstance(alignment, int) or alignment <= 0:
        alignment = DEFAULT_ALIGNMENT
    info.data_offset = (cur.pos + alignment - 1) // alignment * alignment
    return info


def read_gguf(path: str | Path, *, keep: tuple[str, ...] = ("tokenizer.ggml.tokens",)) -> GGUFInfo:
    """Parse ``path``'s header and metadata; arrays over 1024 items are kept only if in ``keep``.

    Raises ``GGUFError`` for anything that is not a readable GGUF file, ``OSError`` if it cannot
    be opened.
    """
    path = Path(path)
    with path.open("rb") as f:
        size = f.seek(0, 2)
        if size < 24:
            raise GGUFError(f"{path.name} is not a GGUF file (only {size} bytes)")
        # Plain reads, not mmap: a file truncated while we parse it (a copy over it) must give
        # an error, not SIGBUS the whole host. Metadata sits at the start; read more if needed.
        window = HEADER_READ
        while True:
            f.seek(0)
            buf = f.read(min(size, window))
            try:
                return _read(buf, size if len(buf) == size else len(buf), path,
                             frozenset(keep), file_size=size)
            except GGUFError as exc:
                if len(buf) >= size or window >= MAX_HEADER or "truncated" not in str(exc):
                    raise
                window *= 4


def looks_like_gguf(path: str | Path) -> bool:
    """A cheap check of the magic bytes only."""
    try:
        with Path(path).open("rb") as f:
            return f.read(4) == MAGIC
    except OSError:
        return False
