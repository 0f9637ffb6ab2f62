"""Turn what a worker's handler returned (untrusted) into a ``SandboxResult``.

``{"content": str, "metadata": {...}}`` is the structured reply; its metadata must fit OpenAI's
limits (at most 15 keys: 16 less the run's own ``sandbox`` key; keys up to 64 characters,
string values up to 512). Metadata that does not fit is dropped with a warning: the reply text
is still good, the run should not fail for it.
Any other value becomes the reply text (JSON for dicts and lists).
"""

from __future__ import annotations

import json
import logging
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from jan.sdk.sandbox import SandboxResult

MAX_KEYS = 15  # OpenAI allows 16; the run adds its own "sandbox" key
Key = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Value = Annotated[str, StringConstraints(max_length=512)]


class _Metadata(BaseModel):
    model_config = ConfigDict(strict=True)

    metadata: Annotated[dict[Key, Value], Field(max_length=MAX_KEYS)]


def valid_metadata(raw: Any) -> tuple[dict[str, str], str | None]:
    """(metadata, None) if ``raw`` fits OpenAI's limits, else ({}, why not)."""
    if raw is None:
        return {}, None
    try:
        return _Metadata(metadata=raw).metadata, None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = (".".join(str(p) for p in first["loc"][1:]) or "metadata")[:80]
        return {}, f"{where}: {first['msg']}"


def apply_reply(result: SandboxResult, value: Any, assistant_id: str,
                log: logging.Logger) -> None:
    if isinstance(value, dict) and isinstance(value.get("content"), str):
        result.content = value["content"]
        result.metadata, why = valid_metadata(value.get("metadata"))
        if why:
            log.warning("assistant %s replied with invalid metadata (dropped): %s",
                        assistant_id, why)
    elif isinstance(value, dict | list):
        result.content = json.dumps(value, ensure_ascii=False)
    elif value is not None:
        result.content = str(value)
