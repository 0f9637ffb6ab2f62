"""engine-openai: models whose model.json ``engine`` names a provider in
``<data>/engines/<provider>.json`` are generated on that OpenAI-compatible upstream (another
``jan serve``, llama.cpp's ``llama-server``, vLLM, Ollama, OpenAI). Only generation goes
upstream: threads, runs, responses and tool loops stay local.

The host's ``inference`` service hands every remote ``LoadSpec`` to the ``remote-inference``
service provided here.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from jan.sdk import Context, Extension, Unavailable, hookimpl
from jan.sdk.inference import (
    REMOTE_INFERENCE,
    Delta,
    Done,
    Embeddings,
    GenerationRequest,
    LoadedModel,
    LoadSpec,
    ToolCallDelta,
)
from jan.sdk.services import HealthReport, ModelEntry

from . import cli
from .config import load_providers
from .metrics import render

if TYPE_CHECKING:
    from .client import ProviderClient


class RemoteInference:
    """Implements ``InferenceEngine`` for remote specs, one client per provider."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.clients: dict[str, ProviderClient] = {}
        self.errors: dict[str, str] = {}
        self.reload()

    def reload(self) -> None:
        providers, self.errors = load_providers(self.ctx.data.root)
        for pid, why in self.errors.items():
            self.ctx.log.warning("engine %s ignored: %s", pid, why)
        self.clients = {}
        if providers:  # aiohttp (the client's import) costs ~0.1 s of every start-up otherwise
            from .client import ProviderClient

            self.clients = {pid: ProviderClient(p, self.ctx.data.root, self.ctx.log)
                            for pid, p in providers.items()}

    def client(self, spec: LoadSpec) -> ProviderClient:
        found = self.clients.get(spec.engine)
        if found is None:
            why = self.errors.get(spec.engine,
                                  f"no file engines/{spec.engine}.json with a base_url")
            raise Unavailable(f"model {spec.model_id!r}: engine {spec.engine!r} is not "
                              f"configured ({why})")
        return found

    def generate(self, spec: LoadSpec, request: GenerationRequest
                 ) -> AsyncIterator[Delta | ToolCallDelta | Done]:
        return self.client(spec).generate(spec, request)

    async def embed(self, spec: LoadSpec, inputs: list[str]) -> Embeddings:
        return await self.client(spec).embed(spec, inputs)

    async def load(self, spec: LoadSpec) -> LoadedModel:
        return self.client(spec).loaded(spec)

    async def unload(self, model_id: str) -> bool:
        return False

    def loaded(self) -> list[LoadedModel]:
        return []

    def catalog(self) -> list[ModelEntry]:
        """``<provider>/<name>`` for every model a provider serves, plus its aliases."""
        out: list[ModelEntry] = []
        for pid, c in self.clients.items():
            named = {f"{pid}/{name}": name for name in c.model_names()}
            named.update(c.provider.aliases)
            out += [ModelEntry(id=mid, name=mid, engine=pid, owned_by=pid, format="api",
                               metadata={"remote_model": upstream})
                    for mid, upstream in named.items()]
        return out

    def health_report(self) -> HealthReport:
        """Per-upstream health, counts and latency; a provider with no usable upstream, or a
        provider file that was refused, is a problem."""
        details = {pid: {"upstreams": ups} for pid, ups in self.describe().items()}
        problems = [f"engine '{pid}' has no healthy upstream" for pid, ups in details.items()
                    if not any(u["healthy"] for u in ups["upstreams"])]
        for pid, why in self.errors.items():
            details[pid] = {"error": why}
            problems.append(f"engine '{pid}' ignored: {why}")
        return HealthReport(details=details, problems=problems)

    def metrics_text(self) -> str:
        """``jan.sdk.services.ReportsMetrics``: per-upstream counters for ``GET /metrics``."""
        return render(self.describe())

    def describe(self) -> dict[str, Any]:
        return {pid: [u.describe() for u in c.fleet.upstreams] for pid, c in self.clients.items()}

    async def watch(self) -> None:
        """Health checks: every provider's upstreams, each at its own interval."""
        due: dict[str, float] = {}
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            for pid, c in list(self.clients.items()):
                if now >= due.get(pid, 0.0):
                    due[pid] = now + c.provider.health_interval
                    try:
                        await c.check()
                    except Exception as exc:  # noqa: BLE001 - a bad key reference etc.
                        self.ctx.log.warning("engine %s health check: %s", pid, exc)
            await asyncio.sleep(0.05)

    async def close(self) -> None:
        for c in self.clients.values():
            await c.aclose()


class EngineOpenAIExtension(Extension):
    def activate(self, ctx: Context) -> None:
        self.ctx = ctx
        self.service = RemoteInference(ctx)
        ctx.services.provide(REMOTE_INFERENCE, self.service)
        if self.service.clients:
            ctx.spawn(self.service.watch(), name="engine-openai-health")

    async def deactivate(self) -> None:
        await self.service.close()

    @hookimpl
    def register_routes(self, register: Any) -> None:
        register("/v1/engines", self._engines, methods=["GET"])

    async def _engines(self, request: Any) -> Any:
        from jan.sdk.http import json_response

        return json_response({"object": "list", "data": [
            {"id": pid, "object": "engine", "upstreams": ups}
            for pid, ups in self.service.describe().items()]})

    @hookimpl
    def register_commands(self, register: Any) -> None:
        for name, help_text, configure, run in cli.COMMANDS:
            register(name, help_text, configure=configure, run=run)
