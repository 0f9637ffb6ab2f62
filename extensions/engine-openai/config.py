"""Providers: ``<data>/engines/<provider>.json`` files that name an upstream (``base_url`` or
``upstreams``). Other files in ``engines/`` (``llama-cpp.json``) are local engine defaults and
are not providers.

The API key is a reference, never the key: ``env:NAME`` (an environment variable) or
``file:NAME`` (``<data>/secrets/NAME``, which must be mode 0600). A raw key is refused.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError, field_validator

from jan.sdk import InvalidRequest, check_id
from jan.sdk.http import validation_message


class Capabilities(BaseModel):
    tools: bool = True
    embeddings: bool = True
    completions: bool = True
    # llama.cpp-style sampling keys (top_k, min_p, repeat_penalty, grammar): llama-server and
    # jan serve take them, OpenAI does not.
    llama_params: bool = False


class Provider(BaseModel):
    """One provider file, validated."""

    model_config = {"extra": "ignore"}

    id: str = ""
    base_url: str | None = None
    upstreams: list[str] = Field(default_factory=list)
    api_key: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    connect_timeout: float = Field(5.0, gt=0, le=600)
    first_byte_timeout: float = Field(120.0, gt=0, le=3600)
    read_timeout: float = Field(300.0, gt=0, le=3600)
    max_concurrency: int = Field(64, ge=1, le=10000)
    retries: int = Field(2, ge=0, le=10)
    retry_after_cap: float = Field(10.0, ge=0, le=300)
    backoff: float = Field(0.2, ge=0, le=60)
    cooldown: float = Field(5.0, ge=0, le=3600)
    health_interval: float = Field(2.0, ge=0.05, le=3600)
    capabilities: Capabilities = Field(default_factory=Capabilities)
    # Fixed model names; empty = discover them from the upstream's GET /v1/models. Each is
    # listed in /v1/models as ``<provider>/<name>``; ``aliases`` adds short local ids
    # (alias -> upstream name), e.g. {"fast": "qwen2.5-7b"}.
    models: list[str] = Field(default_factory=list)
    aliases: dict[str, str] = Field(default_factory=dict)

    @field_validator("api_key")
    @classmethod
    def _reference(cls, v: str | None) -> str | None:
        if v and not (v.startswith("env:") or v.startswith("file:")):
            # Never echo the value: it may be a real key pasted by mistake.
            raise ValueError("must be a reference ('env:NAME' or 'file:NAME' under secrets/), "
                             "not the key itself")
        return v

    def urls(self) -> list[str]:
        out = [u.rstrip("/") for u in ([self.base_url] if self.base_url else []) + self.upstreams]
        return list(dict.fromkeys(out))


def is_provider_file(data: Any) -> bool:
    return isinstance(data, dict) and bool(data.get("base_url") or data.get("upstreams"))


def load_providers(root: Path) -> tuple[dict[str, Provider], dict[str, str]]:
    """Every provider in ``root/engines``; the second dict holds why a file was refused."""
    providers: dict[str, Provider] = {}
    errors: dict[str, str] = {}
    for path in sorted((root / "engines").glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            errors[path.stem] = f"unreadable: {type(exc).__name__}"
            continue
        if not is_provider_file(data):
            continue
        try:
            provider = Provider.model_validate({**data, "id": check_id(path.stem, what="engine")})
        except (ValidationError, InvalidRequest) as exc:
            errors[path.stem] = (validation_message(exc)[0] if isinstance(exc, ValidationError)
                                 else str(exc))
            continue
        providers[provider.id] = provider
    return providers, errors


def resolve_key(provider: Provider, root: Path) -> str | None:
    """The key a reference points to (read on each use, so a rotated key applies at once)."""
    ref = provider.api_key
    if not ref:
        return None
    kind, _, name = ref.partition(":")
    if kind == "env":
        value = os.environ.get(name)
        if not value:
            raise InvalidRequest(f"engine '{provider.id}': environment variable {name} is not set")
        return value.strip()
    path = root / "secrets" / check_id(name, what="secret")
    try:
        st = path.stat()
    except OSError:
        raise InvalidRequest(f"engine '{provider.id}': secret file secrets/{name} is missing"
                             ) from None
    if stat.S_IMODE(st.st_mode) & 0o077:
        raise InvalidRequest(f"engine '{provider.id}': secrets/{name} must have mode 0600")
    return path.read_text(encoding="utf-8").strip()


def redact(text: str, secret: str | None) -> str:
    return text.replace(secret, "***") if secret else text
