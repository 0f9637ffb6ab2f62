"""``/v1/models``: OpenAI's list / retrieve / delete, plus Jan's ``start`` and ``stop``.

The registry and the engine are looked up on every request (``ctx.services``), so a provider
swapped while serving is used at once. Ids may contain ``/`` (Hugging Face style), hence the
``:path`` converters; ids never become paths here, the registry maps them to folders.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from jan.sdk import ApiError, Context
from jan.sdk.http import Request, Response, json_response, read_body, sse_response
from jan.sdk.openai_shapes import model_to_api

from . import catalog
from .jobs import PullJobs, PullRequest


class StartBody(BaseModel):
    """Optional load-time overrides for ``POST /v1/models/{id}/start``."""

    model_config = ConfigDict(extra="forbid")

    ctx_len: int | None = None
    n_parallel: int | None = None
    ngl: int | None = None
    cpu_threads: int | None = None
    embedding: bool | None = None
    chat_template: str | None = None
    prompt_template: str | None = None
    stop: list[str] | None = None


class ModelRoutes:
    def __init__(self, owner: Any) -> None:
        self.owner = owner  # the extension: its ``ctx`` is read per request (set on activate)

    @property
    def ctx(self) -> Context:
        return self.owner.ctx

    def register(self, register: Any) -> None:
        register("/v1/models", self.list_models, methods=["GET"])
        # Literal paths win over ``{model_id:path}`` whoever registered first (host router).
        register("/v1/models/catalog", self.list_catalog, methods=["GET"])
        register("/v1/models/pull", self.start_pull, methods=["POST"])
        register("/v1/models/pull", self.list_pulls, methods=["GET"])
        register("/v1/models/pull/{job_id}", self.get_pull, methods=["GET"])
        register("/v1/models/pull/{job_id}", self.cancel_pull, methods=["DELETE"])
        register("/v1/models/{model_id:path}/start", self.start, methods=["POST"])
        register("/v1/models/{model_id:path}/stop", self.stop, methods=["POST"])
        register("/v1/models/{model_id:path}", self.retrieve, methods=["GET"])
        register("/v1/models/{model_id:path}", self.delete, methods=["DELETE"])

    @property
    def pulls(self) -> PullJobs:
        return self.owner.pulls  # owned by the extension: survives route-table rebuilds

    @property
    def registry(self) -> Any:
        return self.ctx.services.get("models")

    def _loaded(self) -> set[str]:
        """Ids the engine has loaded now: the documented extra field ``loaded``."""
        try:
            return {m.model_id for m in self.ctx.services.get("inference").loaded()}
        except (ApiError, AttributeError):
            return set()

    async def list_models(self, request: Request) -> Response:
        entries = await self.registry.list()
        loaded = self._loaded()
        data = [model_to_api(e, downloaded=e.downloaded) | {"loaded": e.id in loaded}
                for e in entries]
        return json_response({"object": "list", "data": data})

    async def retrieve(self, request: Request) -> Response:
        entry = await self.registry.get(request.path_params["model_id"])
        return json_response(model_to_api(entry, downloaded=entry.downloaded)
                             | {"loaded": entry.id in self._loaded()})

    async def delete(self, request: Request) -> Response:
        model_id = request.path_params["model_id"]
        entry = await self.registry.get(model_id)
        await self.registry.delete(entry.id)
        return json_response({"id": entry.id, "object": "model", "deleted": True})

    async def start(self, request: Request) -> Response:
        body = await read_body(request, StartBody, optional=True)
        registry = self.registry
        entry = await registry.get(request.path_params["model_id"])
        spec = registry.load_spec(entry, body.model_dump(exclude_none=True))
        loaded = await self.ctx.services.get("inference").load(spec)
        return json_response({"id": entry.id, "object": "model", "status": "running",
                              "loaded": loaded.model_dump(mode="json")})

    async def stop(self, request: Request) -> Response:
        entry = await self.registry.get(request.path_params["model_id"])
        stopped = await self.ctx.services.get("inference").unload(entry.id)
        return json_response({"id": entry.id, "object": "model", "status": "stopped",
                              "stopped": bool(stopped)})

    # ------------------------------------------------------------------ catalogue and pulls
    async def list_catalog(self, request: Request) -> Response:
        """The catalogue (every ``register_model_catalog`` entry) with what is already here."""
        local = {e.id: e for e in await self.registry.list()}
        data = []
        for model in catalog.entries(self.ctx):
            entry = local.get(model.id)
            item = model_to_api(model, downloaded=bool(entry and entry.downloaded))
            item["size"] = sum(s.size or 0 for s in model.sources) or None
            data.append(item)
        return json_response({"object": "list", "data": data})

    async def start_pull(self, request: Request) -> Response:
        body = await read_body(request, PullRequest)
        job = self.pulls.start(body.model.strip())
        return json_response(job.model_dump(mode="json"), status=202)

    async def list_pulls(self, request: Request) -> Response:
        return json_response({"object": "list",
                              "data": [j.model_dump(mode="json") for j in self.pulls.list()]})

    async def get_pull(self, request: Request) -> Response:
        job_id = request.path_params["job_id"]
        if request.query_params.get("stream") in ("true", "1"):
            self.pulls.get(job_id)  # a 404 before the stream starts, not inside it
            return sse_response(self.pulls.watch(job_id))
        return json_response(self.pulls.get(job_id).model_dump(mode="json"))

    async def cancel_pull(self, request: Request) -> Response:
        job = await self.pulls.cancel(request.path_params["job_id"])
        return json_response(job.model_dump(mode="json"))
