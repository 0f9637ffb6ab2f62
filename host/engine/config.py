"""The ``engine`` section of settings.json (see ``jan.host.engine.create_service``)."""

from __future__ import annotations

import os

from pydantic import BaseModel, ConfigDict, Field


class EngineSettings(BaseModel):
    model_config = ConfigDict(extra="ignore")

    keep_alive: float = Field(300.0, description="idle seconds before a model is unloaded; "
                              "negative: never")
    memory_budget_mb: int | None = Field(None, ge=1, description="memory for loaded models; "
                                         "default 75% of physical memory")
    queue_size: int = Field(64, ge=0, description="requests that may wait per model beyond "
                            "its n_parallel running ones")
    prompt_chunk: int = Field(64, ge=1, description="prompt tokens per step while other "
                              "sequences generate, until step_ms can be measured")
    step_ms: float = Field(200.0, ge=0, description="while sequences generate, prompt tokens "
                           "per step are about this much decode time (0: prompt_chunk always)")
    share_min_tokens: int = Field(16, ge=0, description="a prompt prefix at least this long "
                                  "held by another sequence is copied, not processed; 0: off")
    load_timeout: float = Field(120.0, gt=0, description="seconds a model may take to load")
    retry_after: int = Field(2, ge=1, description="Retry-After seconds when overloaded")
    kv_cache_mb: int = Field(2048, ge=0, description="cap of the on-disk KV state cache "
                             "(<data>/cache/kv); 0 turns it off")
    kv_cache_min_tokens: int = Field(128, ge=1, description="only conversations of at least "
                                     "this many tokens are saved to / restored from disk")

    def budget_bytes(self) -> int:
        if self.memory_budget_mb is not None:
            return self.memory_budget_mb * 2**20
        try:
            total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError):
            total = 8 * 2**30
        return int(total * 0.75)
