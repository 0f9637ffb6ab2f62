"""The inference engine: one llama-cpp-python runner subprocess per loaded model.

``create_service(settings=..., events=..., log=...)`` builds the host's ``inference`` service.
``settings`` is the ``engine`` section of settings.json; every key is optional:

- ``keep_alive`` (seconds, default 300): unload a model idle this long; negative = never.
- ``memory_budget_mb`` (default 75% of RAM): loaded models must fit; least recently used idle
  models are unloaded to make room (estimate: file size x 1.2 + 64 MiB, then measured RSS).
- ``queue_size`` (default 64): requests that may wait per model beyond its ``n_parallel``
  running ones; beyond that ``Overloaded`` (503 + Retry-After).
- ``step_ms`` (default 200): while sequences generate, a step holds about this much decode
  time of prompt tokens (the cost per token is measured as steps run), so a long prompt never
  stalls the other streams for long; ``prompt_chunk`` (default 64) tokens until it is measured.
- ``share_min_tokens`` (default 16; 0 = off): a prompt start at least this long that another
  sequence holds (a shared system prompt, an assistant's instructions) is copied from it
  instead of being processed again.
- ``load_timeout`` (seconds, default 120) and ``retry_after`` (seconds, default 2).
- ``kv_cache_mb`` (default 2048; 0 = off): cap of the on-disk KV state cache in
  ``<data>/cache/kv`` (needs ``data``): a conversation whose slot was taken, or whose model was
  unloaded or server stopped, resumes from there instead of re-processing its history.
- ``kv_cache_min_tokens`` (default 128): shorter conversations are not worth a file.

Load-time settings per model come in the ``LoadSpec``: ``ctx_len`` is the context of *each*
of the ``n_parallel`` sequences (the runner's context is ``ctx_len * n_parallel``).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from .config import EngineSettings
from .manager import EngineManager

__all__ = ["EngineManager", "EngineSettings", "create_service"]


def create_service(*, settings: dict[str, Any] | None, events: Any = None,
                   log: logging.Logger | None = None, data: Any = None) -> EngineManager:
    """The ``inference`` service; call ``await service.close()`` on shutdown. ``data`` (the
    data folder: a path or a ``jan.sdk.Folder``) holds the KV state cache; None: no cache."""
    return EngineManager(EngineSettings.model_validate(settings or {}), events=events, log=log,
                         kv_dir=_kv_dir(data))


def _kv_dir(data: Any) -> Path | None:
    if data is None:
        return None
    root = data if isinstance(data, str | os.PathLike) else getattr(data, "root", None)
    return Path(root) / "cache" / "kv" if root is not None else None
