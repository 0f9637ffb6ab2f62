"""The ``remote-inference`` service: generation and embeddings on an OpenAI-compatible upstream.

Retries happen only before anything was handed to the caller (connect errors, timeouts before
the first byte, 408/409/429/5xx; ``Retry-After`` honoured up to ``retry_after_cap``, jittered
backoff), each on another upstream of the fleet when there is one. Once the first event is out,
an upstream failure ends the stream with an error and is never retried.

The upstream client is aiohttp rather than httpx: in a proxy that relays one-token replies from
an upstream that answers at once, httpx added about 3 ms to each first token and aiohttp about
1.5 (measured with the same Starlette front; bench/bench_remote.py measures ours).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.helpers import get_env_proxy_for_url
from yarl import URL

from jan.sdk import ApiError, InvalidRequest, Unavailable
from jan.sdk.inference import (
    Delta,
    Done,
    Embeddings,
    GenerationRequest,
    LoadedModel,
    LoadSpec,
    ToolCallDelta,
    Usage,
)

from .config import Provider, redact, resolve_key
from .fleet import Fleet, Upstream
from .shapes import ChunkReader, request_body

RETRYABLE = {408, 409, 429, 500, 502, 503, 504}
MAX_LINE = 16 * 1024 * 1024  # bytes of one SSE line: a bound on what an upstream makes us hold


class _Retry(Exception):
    def __init__(self, why: str, wait: float = 0.0) -> None:
        super().__init__(why)
        self.wait = wait


class ProviderClient:
    def __init__(self, provider: Provider, root: Path, log: logging.Logger) -> None:
        self.provider, self.root, self.log = provider, root, log
        self.fleet = Fleet(provider.urls())
        self.gate = asyncio.Semaphore(provider.max_concurrency)
        self.discovered: list[str] = []  # model ids the upstreams listed (grows, never shrinks)
        self._session: aiohttp.ClientSession | None = None
        self._proxies: dict[str, tuple[dict[str, Any], dict[str, str]]] = {}

    def session(self) -> aiohttp.ClientSession:
        """Made on first use: an aiohttp session belongs to the event loop that made it."""
        if self._session is None or self._session.closed:
            p = self.provider
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=None, connect=p.connect_timeout,
                                              sock_read=p.read_timeout),
                connector=aiohttp.TCPConnector(limit=0),  # the gate limits concurrency
                cookie_jar=aiohttp.DummyCookieJar())  # one client's cookies are not another's
        return self._session

    def _via(self, url: str, headers: dict[str, str]) -> dict[str, Any]:
        """The request's headers and proxy for an upstream, from HTTP(S)_PROXY / NO_PROXY as
        most clients use them, looked up once per upstream: aiohttp's ``trust_env`` looks them
        (and ~/.netrc) up in worker threads on every request: 1.7 ms of each first token here.
        A proxy's credentials go in the request itself (plain HTTP: the proxy reads it) or in
        the CONNECT of an https upstream."""
        if url not in self._proxies:
            try:
                proxy, auth = get_env_proxy_for_url(URL(url))
            except LookupError:  # none set, or NO_PROXY names this host
                self._proxies[url] = ({}, {})
            else:
                creds = {"Proxy-Authorization": auth.encode()} if auth else {}
                tunnel = url.startswith("https:")
                self._proxies[url] = ({"proxy": proxy, "proxy_headers": creds if tunnel else
                                       None}, {} if tunnel else creds)
        kwargs, extra = self._proxies[url]
        return {**kwargs, "headers": {**headers, **extra} if extra else headers}

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()

    def headers(self) -> tuple[dict[str, str], str | None]:
        key = resolve_key(self.provider, self.root)
        h = dict(self.provider.headers)
        if key:
            h["Authorization"] = f"Bearer {key}"
        return h, key

    async def _open(self, path: str, body: dict, key_headers: tuple[dict, str | None]
                    ) -> tuple[Upstream, aiohttp.ClientResponse, float]:
        """An upstream response with status 200 (streaming), retried across the fleet."""
        headers, key = key_headers
        tried: set[str] = set()
        last = "no upstream configured"
        for attempt in range(self.provider.retries + 1):
            up = self.fleet.pick(tried if len(tried) < len(self.fleet.upstreams) else set())
            if up is None:
                break
            tried.add(up.url)
            up.in_flight += 1
            up.requests += 1
            t0 = time.monotonic()
            try:
                resp = await self._send(up, path, body, headers, key)
                return up, resp, t0
            except _Retry as exc:
                up.in_flight -= 1
                last = str(exc)
                self.log.warning("engine %s upstream %s: %s (attempt %d)", self.provider.id,
                                 up.url, redact(last, key), attempt + 1)
                if attempt < self.provider.retries:
                    jitter = self.provider.backoff * (2 ** attempt) * (0.5 + random.random())
                    await asyncio.sleep(max(exc.wait, jitter))
            except BaseException:
                up.in_flight -= 1
                raise
        raise Unavailable(redact(f"engine '{self.provider.id}': upstream failed ({last})", key))

    async def _send(self, up: Upstream, path: str, body: dict, headers: dict, key: str | None
                    ) -> aiohttp.ClientResponse:
        p = self.provider
        try:
            async with asyncio.timeout(p.first_byte_timeout):  # (wait_for: one more task)
                resp = await self.session().post(up.url + path, json=body,
                                                 **self._via(up.url, headers))
        except (TimeoutError, aiohttp.ClientError) as exc:
            why = f"{_reason(exc)} before the first byte"
            up.fail(p.cooldown, why)
            raise _Retry(why) from None
        if resp.status == 200:
            return resp
        try:
            raw = await resp.read()
        except (TimeoutError, aiohttp.ClientError):
            raw = b""
        finally:
            resp.release()
        if resp.status in RETRYABLE:
            if resp.status >= 500 or resp.status == 429:
                up.fail(min(p.cooldown, _retry_after(resp) or p.cooldown), f"HTTP {resp.status}")
            raise _Retry(f"HTTP {resp.status}", min(_retry_after(resp), p.retry_after_cap))
        raise _upstream_error(resp.status, raw, key)

    async def generate(self, spec: LoadSpec, req: GenerationRequest
                       ) -> AsyncIterator[Delta | ToolCallDelta | Done]:
        path, body = request_body(self.provider, spec.path, req)
        async with self.gate:
            headers = self.headers()
            key = headers[1]
            up, resp, t0 = await self._open(path, body, headers)
            reader, first, complete = ChunkReader(), True, False
            try:
                async for line in _lines(resp):
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        complete = await _drain(resp)
                        break
                    chunk = json.loads(data)
                    if isinstance(chunk, dict) and "error" in chunk:
                        raise _upstream_error(502, data.encode(), key)
                    if first:
                        up.ok(time.monotonic() - t0)
                        first = False
                    for ev in reader.read(chunk):
                        yield ev
                else:
                    complete = True  # the body ended without a [DONE]
                u = reader.usage
                yield Done(finish_reason=reader.finish_reason(), usage=Usage(
                    prompt_tokens=u.get("prompt_tokens", 0) or 0,
                    completion_tokens=u.get("completion_tokens", 0) or 0,
                    total_tokens=u.get("total_tokens", 0) or 0))
            except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
                up.fail(self.provider.cooldown, f"stream broke ({_reason(exc)})")
                raise Unavailable(redact(f"engine '{self.provider.id}': upstream stream broke "
                                         f"({_reason(exc)})", key)) from None
            finally:
                up.in_flight -= 1
                # A whole body gives the connection back to the pool; anything else (a client
                # that left, a broken stream) closes it, which ends the upstream request too.
                if complete:
                    resp.release()
                else:
                    resp.close()

    async def embed(self, spec: LoadSpec, inputs: list[str]) -> Embeddings:
        if not self.provider.capabilities.embeddings:
            raise InvalidRequest(f"engine '{self.provider.id}' does not take embeddings",
                                 param="model")
        if not inputs:
            raise InvalidRequest("input must not be empty", param="input")
        async with self.gate:
            headers = self.headers()
            key = headers[1]
            up, resp, t0 = await self._open("/embeddings", {"model": spec.path, "input": inputs},
                                            headers)
            try:
                data = json.loads(await resp.read())
                up.ok(time.monotonic() - t0)
            except (TimeoutError, aiohttp.ClientError) as exc:
                raise Unavailable(redact(f"engine '{self.provider.id}': upstream embeddings "
                                         f"broke ({_reason(exc)})", key)) from None
            finally:
                up.in_flight -= 1
                resp.release()
        rows = sorted(data.get("data") or [], key=lambda r: r.get("index", 0))
        return Embeddings(vectors=[r["embedding"] for r in rows],
                          prompt_tokens=(data.get("usage") or {}).get("prompt_tokens", 0))

    async def check(self) -> None:
        """One health check of every upstream (GET /models), which also discovers the models
        it serves when the provider file lists none."""
        headers, key = self.headers()
        for up in self.fleet.upstreams:
            why, names = None, None
            try:
                async with self.session().get(up.url + "/models",
                                              timeout=aiohttp.ClientTimeout(
                                                  total=self.provider.connect_timeout),
                                              **self._via(up.url, headers)) as r:
                    if r.status >= 500:
                        why = f"health check: HTTP {r.status}"
                    elif r.status == 200:
                        names = _model_ids(await r.read())
            except (TimeoutError, aiohttp.ClientError) as exc:
                why = redact(f"health check: {_reason(exc)}", key)
            if names and not self.provider.models:
                self.discovered = sorted(set(self.discovered) | set(names))
            if why is None:
                if not up.healthy:
                    self.log.info("engine %s upstream %s is back", self.provider.id, up.url)
                up.ok()
            elif up.healthy:
                self.log.warning("engine %s upstream %s failed its health check",
                                 self.provider.id, up.url)
                up.fail(self.provider.cooldown, why)

    def model_names(self) -> list[str]:
        """What this provider serves: its fixed list, else what discovery found so far."""
        return list(self.provider.models) or list(self.discovered)

    def loaded(self, spec: LoadSpec) -> LoadedModel:
        return LoadedModel(model_id=spec.model_id, n_parallel=self.provider.max_concurrency,
                           ctx_len=spec.ctx_len,
                           busy=sum(u.in_flight for u in self.fleet.upstreams))


async def _lines(resp: aiohttp.ClientResponse) -> AsyncIterator[str]:
    """The body's lines (``\n`` or ``\r\n``), however the upstream splits its writes, up to
    ``MAX_LINE`` bytes each (aiohttp's own ``readline`` refuses lines over 128 KiB, which one
    big chunk can exceed). A longer line is a ``ValueError``: the stream broke."""
    rest = b""
    async for data in resp.content.iter_any():
        *lines, rest = (rest + data).split(b"\n")
        if len(rest) > MAX_LINE:
            raise ValueError(f"an upstream line over {MAX_LINE} bytes")
        for line in lines:
            yield line.rstrip(b"\r").decode("utf-8", "replace")
    if rest:
        yield rest.decode("utf-8", "replace")


async def _drain(resp: aiohttp.ClientResponse) -> bool:
    """Read the body to its end, so the connection goes back to the pool: closing a half-read
    response drops it, and the next request would pay a new TCP connection (measured: about a
    fifth of the proxy's time per request). Bounded: after ``[DONE]`` only the end should come.
    True if the body ended."""
    with contextlib.suppress(Exception):
        async with asyncio.timeout(1.0):
            await resp.content.read()
            return True
    return False


def _reason(exc: BaseException) -> str:
    """What went wrong, in words (aiohttp's class names mean little to a user)."""
    if isinstance(exc, aiohttp.ClientConnectorError):
        return "cannot connect"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError):
        return "connection closed"
    if isinstance(exc, ValueError):
        return "unreadable reply"
    return type(exc).__name__


def _model_ids(raw: bytes) -> list[str]:
    try:
        rows = json.loads(raw).get("data") or []
    except (ValueError, AttributeError):
        return []
    return [m["id"] for m in rows if isinstance(m, dict) and isinstance(m.get("id"), str)]


def _retry_after(resp: aiohttp.ClientResponse) -> float:
    try:
        return max(0.0, float(resp.headers.get("retry-after", "0")))
    except ValueError:
        return 0.0


def _upstream_error(status: int, raw: bytes, key: str | None) -> ApiError:
    """The upstream's OpenAI error, with its status, type and code (key redacted)."""
    try:
        err = json.loads(raw).get("error") or {}
        if isinstance(err, str):
            err = {"message": err}
    except (ValueError, AttributeError):
        err = {}
    message = str(err.get("message") or raw[:300].decode("utf-8", "replace") or "upstream error")
    return ApiError(redact(f"upstream: {message}", key), status=status if status >= 400 else 502,
                    type=str(err.get("type") or "upstream_error"),
                    param=err.get("param") if isinstance(err.get("param"), str) else None,
                    code=str(err["code"]) if err.get("code") is not None else None)
