"""Resumable HTTP downloads into ``<file>.download``, renamed to ``<file>`` only when verified.

An interrupted download keeps its partial file; the next attempt asks for the rest with an
HTTP ``Range`` request and appends (a server that ignores ranges just sends everything again).
Size and sha256 are checked when known before the file gets its real name.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from pathlib import Path

import httpx

from jan.sdk import ApiError
from jan.sdk.storage import fsync_path

Progress = Callable[[int, "int | None"], None]
CHUNK = 1 << 20
_RANGE = re.compile(r"bytes\s+(\d+|\*)(?:-(\d+))?/(\d+|\*)")


class DownloadFailed(ApiError):
    """A download could not complete; the message is meant for the user."""

    status = 502
    code = "download_failed"


def partial_path(target: Path) -> Path:
    return target.with_name(target.name + ".download")


def _content_range(value: str | None) -> tuple[int | None, int | None]:
    """``(first byte, total size)`` from a ``Content-Range`` header."""
    match = _RANGE.match(value or "")
    if not match:
        return None, None
    start = None if match.group(1) == "*" else int(match.group(1))
    total = None if match.group(3) == "*" else int(match.group(3))
    return start, total


def _hash_file(path: Path, hasher: hashlib._Hash) -> None:
    with path.open("rb") as f:
        while block := f.read(CHUNK):
            hasher.update(block)


async def _attempt(client: httpx.AsyncClient, url: str, partial: Path, size: int | None,
                   hasher: hashlib._Hash | None, progress: Progress | None) -> int | None:
    """One request: append what the server sends. Returns the total size (if known)."""
    have = partial.stat().st_size if partial.exists() else 0
    headers = {"Accept-Encoding": "identity"}
    if have:
        headers["Range"] = f"bytes={have}-"
    async with client.stream("GET", url, headers=headers) as resp:
        if resp.status_code == 416 and have:
            _, total = _content_range(resp.headers.get("content-range"))
            if total == have:  # we already had every byte
                return total
            raise _Restart
        if resp.status_code == 206 and have:
            start, total = _content_range(resp.headers.get("content-range"))
            if start != have:
                raise _Restart
            mode = "ab"
        elif resp.status_code == 200:
            have, mode = 0, "wb"  # no range support: start over
            if hasher is not None and partial.exists():
                raise _Restart
            length = resp.headers.get("content-length")
            total = int(length) if length and length.isdigit() else None
        else:
            raise DownloadFailed(f"{url}: HTTP {resp.status_code} {resp.reason_phrase}")
        if size is not None and total is not None and total != size:
            raise DownloadFailed(f"{url}: the server offers {total} bytes, expected {size}")
        total = total if total is not None else size
        if progress:
            progress(have, total)
        with partial.open(mode) as f:
            try:
                async for block in resp.aiter_bytes():  # as it arrives: nothing lost if cut
                    f.write(block)
                    if hasher is not None:
                        hasher.update(block)
                    have += len(block)
                    if progress:
                        progress(have, total)
            finally:
                f.flush()
        if progress and total is None:
            progress(have, have)  # an unknown size is known now: let the bar finish
        return total


class _Restart(Exception):
    """The partial file cannot be continued: drop it and download from the start."""


async def download(url: str, target: Path, *, size: int | None = None,
                   sha256: str | None = None, progress: Progress | None = None,
                   client: httpx.AsyncClient | None = None) -> Path:
    """Fetch ``url`` into ``target`` (resuming ``target.download``); returns ``target``."""
    partial = partial_path(target)
    own = client is None
    client = client or httpx.AsyncClient(
        follow_redirects=True, timeout=httpx.Timeout(60.0, connect=30.0))
    try:
        for _ in range(2):
            hasher = hashlib.sha256() if sha256 else None
            if size is not None and partial.exists() and partial.stat().st_size > size:
                partial.unlink()
            if hasher is not None and partial.exists():
                _hash_file(partial, hasher)
            try:
                total = await _attempt(client, url, partial, size, hasher, progress)
                break
            except _Restart:
                partial.unlink(missing_ok=True)
        else:
            raise DownloadFailed(f"{url}: the server keeps refusing to resume")
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
        raise DownloadFailed(
            f"{url}: the network is unreachable ({exc or type(exc).__name__}). Without a "
            "network, copy the .gguf file here another way and run `jan models import FILE`"
        ) from None
    except httpx.HTTPError as exc:
        got = partial.stat().st_size if partial.exists() else 0
        if not got:
            raise DownloadFailed(f"{url}: cannot download ({exc or type(exc).__name__})") from None
        raise DownloadFailed(f"{url}: download interrupted after {got} bytes ({exc}); "
                             "run the same command again to resume") from None
    except OSError as exc:
        raise DownloadFailed(f"{url}: cannot write {partial}: {exc.strerror or exc}") from None
    finally:
        if own:
            await client.aclose()
    _verify(url, partial, size if size is not None else total, sha256, hasher)
    fsync_path(partial)
    os.replace(partial, target)
    return target


def _verify(url: str, partial: Path, size: int | None, sha256: str | None,
            hasher: hashlib._Hash | None) -> None:
    got = partial.stat().st_size if partial.exists() else 0
    if size is not None and got != size:
        if got > size:
            partial.unlink(missing_ok=True)
        raise DownloadFailed(f"{url}: got {got} of {size} bytes; run the same command again "
                             "to resume")
    if sha256 and hasher is not None and hasher.hexdigest().lower() != sha256.lower():
        partial.unlink(missing_ok=True)
        raise DownloadFailed(f"{url}: sha256 mismatch (expected {sha256}, got "
                             f"{hasher.hexdigest()}); the partial file was removed")
