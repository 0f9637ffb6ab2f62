"""The runner's request error (its own module so prompts, sampling and tools share it)."""

from __future__ import annotations


class RequestError(Exception):
    """A request the runner refuses; becomes a ``Failed`` event (status 400 = client's fault)."""

    def __init__(self, message: str, *, status: int = 400, code: str | None = None,
                 param: str | None = None) -> None:
        super().__init__(message)
        self.message, self.status, self.code, self.param = message, status, code, param
