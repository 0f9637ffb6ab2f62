"""The built-in catalogue: popular small GGUF chat models that ``jan models pull`` can fetch.

Entries are plain ``model.json`` documents (Jan's format) whose ``sources`` point at public
Hugging Face files; pulling one writes exactly that document into ``models/<id>/``.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from jan.sdk.models import ModelFile

CATALOG_FILE = Path(__file__).with_name("catalog.json")


@lru_cache(maxsize=1)
def _load() -> tuple[ModelFile, ...]:
    raw = json.loads(CATALOG_FILE.read_text(encoding="utf-8"))
    return tuple(ModelFile.model_validate(item) for item in raw)


def entries(ctx: Any = None) -> list[ModelFile]:
    """Copies of the catalogue entries (callers may change them freely).

    With a ``ctx``, the catalogue is what every active extension registers through the
    ``register_model_catalog`` hook (this extension registers the built-in entries there).
    """
    if ctx is None:
        return [m.model_copy(deep=True) for m in _load()]
    return [ModelFile.model_validate(item) for item in ctx.collect("register_model_catalog")]


def find(model_id: str, ctx: Any = None) -> ModelFile | None:
    for model in entries(ctx):
        if model.id == model_id:
            return model
    return None


def is_url(ref: str) -> bool:
    return ref.startswith(("http://", "https://"))


def direct_url(url: str) -> str:
    """Hugging Face page links (``/blob/``) become download links (``/resolve/``)."""
    parts = urlsplit(url)
    if parts.netloc.endswith("huggingface.co") and "/blob/" in parts.path:
        return url.replace("/blob/", "/resolve/", 1)
    return url


def filename_from_url(url: str) -> str:
    """The last path segment of ``url`` (query and fragment dropped), percent-decoded."""
    name = unquote(urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1])
    return Path(name).name
