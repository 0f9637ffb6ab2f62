"""An extension's settings as a typed object: ``settings = read_settings(ctx, MySettings)``.

The defaults live in one place, the manifest's ``[contributes.settings]``; the pydantic model
next to it declares the types and bounds (no defaults of its own), and ``settings.json``
``"extensions": {"<id>": {...}}`` overrides. A bad value fails the extension's activation with
a message naming the setting, shown by ``/health`` and ``jan extensions list``.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


class SettingsError(ValueError):
    """An extension setting that does not fit its declared type."""


def read_settings(ctx: Any, model: type[M]) -> M:
    """``ctx.settings`` (manifest defaults < settings.json) validated by ``model``."""
    values = getattr(ctx, "settings", ctx)
    try:
        return model.model_validate(dict(values or {}))
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err.get("loc", ())) or "?"
        owner = getattr(ctx, "id", None) or "extension"
        raise SettingsError(
            f"extension '{owner}': setting '{where}': {err.get('msg')} (check settings.json "
            f"\"extensions\" → \"{owner}\" or the manifest's [contributes.settings])") from None
