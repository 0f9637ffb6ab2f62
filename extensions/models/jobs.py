"""Server-side pulls for the UI and any client: start, watch progress, cancel, resume.

``POST /v1/models/pull {"model": ID-or-URL}`` starts (or joins) a background pull and answers
202 with the job; ``GET /v1/models/pull`` lists jobs; ``GET /v1/models/pull/{job_id}`` returns
one, or with ``?stream=true`` streams it as Server-Sent Events (one ``pull.progress`` event per
change, sampled every quarter second, ending with the terminal state);
``DELETE /v1/models/pull/{job_id}`` cancels. A cancelled or failed pull keeps its partial file,
so starting the same pull again resumes it (``pull.py`` / ``download.py`` do the resuming).
Progress is also announced on the event bus as ``model.download.progress``.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator
from typing import Any, Literal

from pydantic import BaseModel, Field

from jan.sdk import ApiError, NotFound

from .pull import pull

PROGRESS_EVENT = "model.download.progress"
Status = Literal["downloading", "completed", "failed", "cancelled"]
MAX_FINISHED = 50  # finished jobs kept for late readers; the oldest are forgotten


class PullRequest(BaseModel):
    model: str = Field(min_length=1, max_length=2048)


class PullJob(BaseModel):
    id: str
    object: Literal["model.pull"] = "model.pull"
    model: str
    status: Status = "downloading"
    downloaded_bytes: int = 0
    total_bytes: int | None = None
    files: dict[str, list[int | None]] = Field(default_factory=dict)  # name: [have, total]
    model_id: str | None = None
    error: dict[str, Any] | None = None
    created_at: int = Field(default_factory=lambda: int(time.time()))

    @property
    def done(self) -> bool:
        return self.status != "downloading"


def job_id(ref: str) -> str:
    """The same reference always maps to the same job id (so a second POST joins it)."""
    return "pull_" + hashlib.sha256(ref.encode()).hexdigest()[:16]


class PullJobs:
    def __init__(self, owner: Any) -> None:
        self.owner = owner  # the extension: ``ctx`` and ``registry`` are read at call time
        self.jobs: dict[str, PullJob] = {}
        self.tasks: dict[str, asyncio.Task[Any]] = {}

    def start(self, ref: str) -> PullJob:
        jid = job_id(ref)
        job = self.jobs.get(jid)
        if job is not None and not job.done:
            return job  # already running: join it
        job = PullJob(id=jid, model=ref)
        self.jobs[jid] = job
        self._trim()
        self.tasks[jid] = self.owner.ctx.spawn(self._run(job), name=f"pull {ref}")
        return job

    def get(self, jid: str) -> PullJob:
        job = self.jobs.get(jid)
        if job is None:
            raise NotFound(f"No pull '{jid}'", param="job_id", code="pull_not_found")
        return job

    def list(self) -> list[PullJob]:
        return sorted(self.jobs.values(), key=lambda j: j.created_at, reverse=True)

    async def cancel(self, jid: str) -> PullJob:
        job = self.get(jid)
        task = self.tasks.get(jid)
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=10)
        return job

    def _trim(self) -> None:
        finished = [j for j in self.list() if j.done]
        for job in finished[MAX_FINISHED:]:
            self.jobs.pop(job.id, None)
            self.tasks.pop(job.id, None)

    def _progress_for(self, job: PullJob):  # noqa: ANN202 - pull.ProgressFactory
        def factory(filename: str):  # noqa: ANN202 - download.Progress
            def progress(have: int, total: int | None) -> None:
                job.files[filename] = [have, total]
                job.downloaded_bytes = sum(f[0] or 0 for f in job.files.values())
                totals = [f[1] for f in job.files.values()]
                job.total_bytes = None if None in totals else sum(totals)  # type: ignore[arg-type]
            return progress
        return factory

    async def _run(self, job: PullJob) -> None:
        ctx = self.owner.ctx
        try:
            entry, _ = await pull(self.owner.registry, job.model,
                                  progress=self._progress_for(job), ctx=ctx)
            job.model_id, job.status = entry.id, "completed"
            if job.total_bytes is None:
                job.total_bytes = job.downloaded_bytes
        except asyncio.CancelledError:
            job.status = "cancelled"
        except ApiError as exc:
            job.status, job.error = "failed", exc.body()["error"]
        except Exception as exc:  # noqa: BLE001 - a failed pull is a job state, not a crash
            ctx.log.exception("pull of %s failed", job.model)
            job.status = "failed"
            job.error = {"message": f"Internal error while pulling: {type(exc).__name__}",
                         "type": "server_error", "param": None, "code": "download_failed"}
        finally:
            try:
                await ctx.events.emit(PROGRESS_EVENT, job.model_dump(mode="json"))
            except Exception:  # noqa: BLE001 - the bus must not undo a finished download
                pass

    async def watch(self, jid: str, interval: float = 0.25) -> AsyncIterator[tuple[str, Any]]:
        """SSE items for one job: its state now, then on every change, until it ends."""
        job = self.get(jid)
        last: dict[str, Any] | None = None
        while True:
            snapshot = job.model_dump(mode="json")
            if snapshot != last:
                last = snapshot
                yield "pull.progress", snapshot
            if job.done:
                return
            # Sampling, not one event per received block: a fast download stays cheap.
            await asyncio.sleep(interval)
