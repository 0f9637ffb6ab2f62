"""Where the data folder is and what ``settings.json`` says.

``settings.json`` is user-owned and optional. Unknown keys are kept; a broken file is reported
and treated as empty rather than stopping the server.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from jan.sdk.storage import atomic_write_json

log = logging.getLogger("jan.host.config")


class ServerSettings(BaseModel):
    model_config = ConfigDict(extra="allow")

    api_key: str | None = None
    cors_origins: list[str] = Field(default_factory=list)
    allowed_hosts: list[str] = Field(default_factory=list)
    """Host names served besides localhost/127.0.0.1/[::1] (DNS-rebinding defence); also
    ``JAN_ALLOWED_HOSTS`` (comma-separated). ``"*"`` turns the check off."""
    max_body_bytes: int = 8 * 1024 * 1024


class Settings(BaseModel):
    """The parsed ``settings.json``."""

    model_config = ConfigDict(extra="allow")

    modules: dict[str, str] = Field(default_factory=dict)
    """Service name → extension id providing it, when several could."""
    extensions: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """Per-extension settings, overlaid on the manifest's ``contributes.settings``."""
    disabled_extensions: list[str] = Field(default_factory=list)
    server: ServerSettings = Field(default_factory=ServerSettings)
    engine: dict[str, Any] = Field(default_factory=dict)
    sandbox: dict[str, Any] = Field(default_factory=dict)
    default_model: str | None = None


def allowed_hosts(server: ServerSettings) -> list[str]:
    extra = [h.strip() for h in os.environ.get("JAN_ALLOWED_HOSTS", "").split(",") if h.strip()]
    return [*server.allowed_hosts, *extra]


def default_data_folder() -> Path:
    return Path(os.environ.get("JAN_DATA_FOLDER") or Path.home() / "jan")


def resolve_data_folder(value: str | os.PathLike[str] | None) -> Path:
    path = Path(value) if value else default_data_folder()
    path = path.expanduser().resolve()
    for sub in ("models", "threads", "assistants", "extensions", "engines", "logs"):
        (path / sub).mkdir(parents=True, exist_ok=True)
    return path


def settings_path(data_folder: Path) -> Path:
    return data_folder / "settings.json"


class SettingsError(Exception):
    """``settings.json`` exists but cannot be used; it must not be overwritten."""


def load_settings(data_folder: Path, *, strict: bool = False) -> Settings:
    """The parsed settings; a broken file is reported and ignored (or raises, if ``strict``)."""
    path = settings_path(data_folder)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return Settings.model_validate(raw)
    except FileNotFoundError:
        return Settings()
    except (ValueError, ValidationError) as exc:
        if strict:
            raise SettingsError(f"{path} is not valid ({exc}); fix it first") from None
        log.error("Ignoring %s: %s", path, exc)
        return Settings()


def save_settings(data_folder: Path, settings: Settings) -> None:
    atomic_write_json(settings_path(data_folder), settings.model_dump(mode="json"))
