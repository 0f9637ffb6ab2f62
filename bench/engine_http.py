"""HTTP targets for bench_inference.py: any OpenAI-compatible server, streamed with httpx.

``--url NAME=BASE`` adds a running server (``BASE`` ends before ``/v1``, e.g.
``http://127.0.0.1:1337``); ``--llama-cpp-server`` starts ``python -m llama_cpp.server`` on a
free loopback port with the same model and threads, for the same table.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
from engine_stats import Stream


class HttpTarget:
    def __init__(self, name: str, base: str, model: str) -> None:
        self.name, self.base, self.model = name, base.rstrip("/"), model
        self.client = httpx.AsyncClient(base_url=self.base, timeout=httpx.Timeout(300.0))

    async def stream(self, prompt: str, max_tokens: int) -> Stream:
        body = {"model": self.model, "stream": True, "max_tokens": max_tokens,
                "temperature": 0.0, "messages": [{"role": "user", "content": prompt}],
                "stream_options": {"include_usage": True}}
        s = Stream()
        usage = None
        try:
            async with self.client.stream("POST", "/v1/chat/completions", json=body) as resp:
                if resp.status_code != 200:
                    raise RuntimeError(f"HTTP {resp.status_code} {(await resp.aread())[:200]!r}")
                async for line in resp.aiter_lines():
                    if not line.startswith("data: ") or line == "data: [DONE]":
                        continue
                    chunk = json.loads(line[6:])
                    if chunk.get("error"):
                        raise RuntimeError(str(chunk["error"]))
                    for choice in chunk.get("choices") or []:
                        s.on_text((choice.get("delta") or {}).get("content") or "")
                    usage = chunk.get("usage") or usage
        except (httpx.HTTPError, RuntimeError) as exc:  # counted, not fatal: peers do this
            s.error = f"{type(exc).__name__}: {exc}"
            return s.finish(None)
        return s.finish(usage.get("completion_tokens") if usage else None)

    async def close(self) -> None:
        await self.client.aclose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Served(str):
    """The base URL of a server started here; ``proc`` is its process (tests kill it)."""

    proc: subprocess.Popen


@contextlib.contextmanager
def server_process(name: str, cmd: list[str], base: str, probe: str = "/v1/models"
                   ) -> Iterator[Served]:
    """Run an OpenAI-compatible server on loopback until it answers ``probe``; stop it after."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    served = Served(base)
    served.proc = proc
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(base + probe, timeout=2).status_code == 200:
                    break
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited at startup")
            time.sleep(0.3)
        else:
            raise RuntimeError(f"{name} did not start in time")
        yield served
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def llama_cpp_server(model: str, threads: int, ctx: int) -> contextlib.AbstractContextManager:
    """llama-cpp-python's own server (one request at a time), on loopback only."""
    port = free_port()
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", model, "--host", "127.0.0.1",
           "--port", str(port), "--n_threads", str(threads), "--n_threads_batch", str(threads),
           "--n_ctx", str(ctx), "--verbose", "false"]
    return server_process("llama_cpp.server", cmd, f"http://127.0.0.1:{port}")


def llama_server(binary: str, model: str, threads: int, ctx: int, parallel: int,
                 extra: tuple[str, ...] = ()) -> contextlib.AbstractContextManager:
    """llama.cpp's own C++ server with ``--parallel`` slots (its continuous batching);
    ``extra`` options are appended (``("--embeddings", "--pooling", "mean")``)."""
    port = free_port()
    cmd = [binary, "-m", model, "--host", "127.0.0.1", "--port", str(port), "-t", str(threads),
           "-tb", str(threads), "-c", str(ctx * parallel), "--parallel", str(parallel),
           "--log-disable", *extra]
    return server_process("llama-server", cmd, f"http://127.0.0.1:{port}", probe="/health")
