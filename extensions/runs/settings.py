"""The runs extension's settings; the defaults are in extension.toml [contributes.settings]."""

from __future__ import annotations

from pydantic import BaseModel, Field


class RunsSettings(BaseModel):
    history_limit: int = Field(ge=1, le=100_000)
    """How many of the thread's latest messages a plain assistant sees."""
    run_timeout: float = Field(gt=0)
    """Seconds a run may take before it fails with a timeout."""
    tool_time_budget: float = Field(default=300, gt=0)
    """Seconds the server-side tool loop of one run may spend before it ends ``incomplete``."""
