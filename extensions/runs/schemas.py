"""Run requests and the stored run (OpenAI's ``thread.run`` shape, which is also the file).

Runs have no Jan file format, so ``threads/<thread_id>/runs/<run_id>.json`` holds exactly the
API object: whatever a client retrieves is what is on disk.
"""

from __future__ import annotations

import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from jan.sdk.inference import Usage
from jan.sdk.openai_requests import MessageCreateRequest, Metadata, ThreadCreateRequest

Status = Literal["queued", "in_progress", "requires_action", "cancelling", "cancelled", "failed",
                 "completed", "incomplete", "expired"]
TERMINAL = ("cancelled", "failed", "completed", "incomplete", "expired")


class RunCreateRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    assistant_id: str = Field(min_length=1, max_length=200)
    model: str | None = None
    instructions: str | None = Field(default=None, max_length=256_000)
    additional_instructions: str | None = Field(default=None, max_length=256_000)
    additional_messages: list[MessageCreateRequest] | None = Field(default=None, max_length=32)
    metadata: Metadata = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    max_prompt_tokens: int | None = Field(default=None, ge=1)
    tools: list[dict[str, Any]] | None = Field(default=None, max_length=128)
    tool_choice: Any = None
    parallel_tool_calls: bool | None = None
    max_tool_calls: int | None = Field(default=None, ge=1, le=1000)
    """Jan's extension: how many server-side tool calls the run may make (else the
    assistant's ``metadata.max_tool_calls``)."""
    stream: bool = False


class ToolOutput(BaseModel):
    model_config = ConfigDict(extra="ignore")

    tool_call_id: str = Field(min_length=1, max_length=200)
    output: str | None = Field(default="", max_length=1_000_000)


class SubmitToolOutputsRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    tool_outputs: list[ToolOutput] = Field(max_length=128)
    stream: bool = False


class ThreadRunRequest(RunCreateRequest):
    thread: ThreadCreateRequest | None = None


class LastError(BaseModel):
    code: Literal["server_error", "rate_limit_exceeded", "invalid_prompt"] = "server_error"
    message: str


class RunUsage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0

    @classmethod
    def of(cls, usage: Usage) -> RunUsage:
        return cls(prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens,
                   total_tokens=usage.total_tokens)


class Run(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str
    object: Literal["thread.run"] = "thread.run"
    created_at: int = Field(default_factory=lambda: int(time.time()))
    thread_id: str
    assistant_id: str
    status: Status = "queued"
    required_action: dict[str, Any] | None = None
    last_error: LastError | None = None
    expires_at: int | None = None
    started_at: int | None = None
    cancelled_at: int | None = None
    failed_at: int | None = None
    completed_at: int | None = None
    incomplete_details: dict[str, Any] | None = None
    model: str = ""
    instructions: str = ""
    tools: list[Any] = Field(default_factory=list)
    metadata: dict[str, str] = Field(default_factory=dict)
    usage: RunUsage | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_prompt_tokens: int | None = None
    max_completion_tokens: int | None = None
    truncation_strategy: dict[str, Any] = Field(
        default_factory=lambda: {"type": "auto", "last_messages": None})
    response_format: Any = "auto"
    tool_choice: Any = "auto"
    parallel_tool_calls: bool = True

    @property
    def done(self) -> bool:
        return self.status in TERMINAL

    def to_api(self) -> dict[str, Any]:
        return self.model_dump(mode="json")
