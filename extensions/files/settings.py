"""The files extension's settings (``[contributes.settings]`` defaults < settings.json)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from jan.sdk.settings import read_settings


class FilesSettings(BaseModel):
    model_config = ConfigDict(extra="ignore")

    embedding_model: str = ""  # empty: the server's default model
    max_file_bytes: int = Field(512 * 1024 * 1024, ge=1)
    attach_timeout: float = Field(300.0, gt=0)  # seconds a run waits for attachments' indexing
    backend: Literal["files", "postgresql"] = "files"
    dsn: str = ""  # for "postgresql"; JAN_POSTGRES_DSN wins
    db_timeout: float = Field(5.0, gt=0)  # seconds a request waits for PostgreSQL, then 503


def files_settings(ctx: Any) -> FilesSettings:
    """Validated settings; a bad value is an error naming the setting."""
    return read_settings(ctx, FilesSettings)
