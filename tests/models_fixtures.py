"""Helpers for the ``models`` extension's tests: load its modules, write real GGUF files, and
serve files over a local HTTP server with Range support (and a switch to cut a response short).
"""

from __future__ import annotations

import contextlib
import importlib
import re
import shutil
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from jan.host.loader import import_extension

EXT_DIR = Path(__file__).resolve().parent.parent / "extensions" / "models"
_modules: SimpleNamespace | None = None


def models_ext() -> SimpleNamespace:
    """The extension's modules, imported from its folder the way the host imports them."""
    global _modules
    if _modules is None:
        cls, package = import_extension(EXT_DIR, "models-tests", "extension:ModelsExtension")
        names = ["gguf", "importer", "registry", "spec", "download", "pull", "catalog", "cli"]
        _modules = SimpleNamespace(ModelsExtension=cls, package=package, **{
            n: importlib.import_module(f"{package}.{n}") for n in names})
    return _modules


# ----------------------------------------------------------------------------- GGUF writer
def _str(s: str) -> bytes:
    raw = s.encode()
    return struct.pack("<Q", len(raw)) + raw


def _typed(value: Any) -> tuple[int, bytes]:
    """(GGUF value type, encoded value) for a Python value."""
    if isinstance(value, bool):
        return 7, struct.pack("<?", value)
    if isinstance(value, int):
        if 0 <= value < 2**32:
            return 4, struct.pack("<I", value)
        return 11, struct.pack("<q", value)
    if isinstance(value, float):
        return 12, struct.pack("<d", value)
    if isinstance(value, str):
        return 8, _str(value)
    if isinstance(value, list):
        etype = _typed(value[0])[0] if value else 4
        body = b"".join(_typed(v)[1] for v in value)  # nested arrays carry their own type
        return 9, struct.pack("<IQ", etype, len(value)) + body
    raise TypeError(f"cannot encode {value!r}")


TYPE_SIZES = {0: (1, 4), 1: (1, 2), 2: (32, 18), 3: (32, 20), 8: (32, 34), 12: (256, 144),
              14: (256, 210)}


def gguf_bytes(*, arch: str = "llama", name: str = "Tiny Test", context_length: int = 2048,
               tokens: list[str] | None = None, eos_id: int = 2,
               chat_template: str | None = "{{ messages }}",
               extra: dict[str, Any] | None = None,
               tensors: list[tuple[str, tuple[int, ...], int]] | None = None) -> bytes:
    """A complete, valid GGUF v3 file (zero-filled tensor data)."""
    tokens = tokens if tokens is not None else ["<unk>", "<s>", "</s>", "hello", "world"]
    kv: dict[str, Any] = {"general.architecture": arch, "general.name": name,
                          f"{arch}.context_length": context_length, "general.file_type": 3,
                          "tokenizer.ggml.model": "gpt2", "tokenizer.ggml.tokens": tokens,
                          "tokenizer.ggml.eos_token_id": eos_id,
                          "tokenizer.ggml.bos_token_id": 1}
    if chat_template is not None:
        kv["tokenizer.chat_template"] = chat_template
    kv.update(extra or {})
    tensors = tensors if tensors is not None else [("token_embd.weight", (64, 32), 3),
                                                  ("output_norm.weight", (64,), 0)]
    out = bytearray(b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kv)))
    for key, value in kv.items():
        vtype, body = _typed(value)
        out += _str(key) + struct.pack("<I", vtype) + body
    data = bytearray()
    for tname, shape, ttype in tensors:
        block, nbytes = TYPE_SIZES[ttype]
        count = 1
        for d in shape:
            count *= d
        data += b"\0" * ((-len(data)) % 32)  # each tensor starts aligned
        out += _str(tname) + struct.pack("<I", len(shape))
        out += b"".join(struct.pack("<Q", d) for d in shape) + struct.pack("<IQ", ttype, len(data))
        data += b"\x01" * (count // block * nbytes)
    out += b"\0" * ((-len(out)) % 32)
    return bytes(out + data)


def write_gguf(path: Path, **kw: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gguf_bytes(**kw))
    return path


def big_gguf(path: Path, megabytes: int = 4, **kw: Any) -> Path:
    """A valid GGUF with ``megabytes`` of tensor data (for downloads worth interrupting)."""
    rows = megabytes * 1024 * 1024 // (256 * 4)
    return write_gguf(path, tensors=[("token_embd.weight", (256, rows), 0)], **kw)


def copy_model(src: Path, dst: Path) -> Path:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)
    return dst


# ----------------------------------------------------------------------------- HTTP server
@dataclass
class FileServer:
    """Serves ``root`` on 127.0.0.1 with byte ranges. ``cut_after`` cuts the next response
    after that many body bytes; ``ranges`` switches Range support off; ``seen`` logs
    ``(path, Range header)`` per request."""

    root: Path
    cut_after: int | None = None
    ranges: bool = True
    seen: list[tuple[str, str | None]] = field(default_factory=list)
    url: str = ""

    def handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server naming
                header = self.headers.get("Range")
                server.seen.append((self.path, header))
                path = server.root / self.path.lstrip("/")
                if not path.is_file():
                    self.send_error(404)
                    return
                data = path.read_bytes()
                start, status = 0, 200
                match = re.fullmatch(r"bytes=(\d+)-", header or "")
                if match and server.ranges:
                    start = int(match.group(1))
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    status = 206
                body = data[start:]
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Accept-Ranges", "bytes" if server.ranges else "none")
                if status == 206:
                    self.send_header("Content-Range",
                                     f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.end_headers()
                cut, server.cut_after = server.cut_after, None
                if cut is not None:
                    self.wfile.write(body[:cut])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

        return Handler


@contextlib.contextmanager
def file_server(root: Path, **kw: Any) -> Iterator[FileServer]:
    state = FileServer(root, **kw)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), state.handler())
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)
