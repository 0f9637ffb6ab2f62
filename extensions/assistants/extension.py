"""assistants: the file-based ``assistants`` service and the ``/v1/assistants`` routes.

Routes go through whichever ``assistants`` provider is chosen at request time. The default
assistant ``jan`` is written on activation when missing, and cannot be deleted.
"""

from __future__ import annotations

from typing import Any

from jan.sdk import Context, Extension, hookimpl
from jan.sdk import events as ev
from jan.sdk.http import Request, Response, json_response, page_query, read_body
from jan.sdk.models import new_id
from jan.sdk.openai_requests import (
    AssistantCreateRequest,
    AssistantModifyRequest,
    assistant_changes,
    assistant_from_request,
)
from jan.sdk.openai_shapes import assistant_to_api, page_to_api
from jan.sdk.services import SANDBOX
from jan.sdk.storage import check_id

from . import cli
from .store import FileAssistantStore


class AssistantsExtension(Extension):
    def activate(self, ctx: Context) -> None:
        self.ctx = ctx
        self.store = FileAssistantStore(ctx.data, ctx.events, ctx.log)
        try:
            if self.store.ensure_default():
                ctx.log.info("created the default assistant 'jan'")
        except OSError as exc:  # e.g. a read-only data folder: serve what is there
            ctx.log.warning("cannot create the default assistant 'jan': %s", exc)
        ctx.services.provide("assistants", self.store)
        # Assistants dropped in or edited by hand: forget parsed files when the host says so.
        ctx.events.on(ev.DATA_CHANGED, self._changed)

    def _changed(self, topic: str, data: Any) -> None:
        if isinstance(data, dict) and data.get("area") == "assistants":
            self.store.invalidate()

    def _assistants(self) -> Any:
        return self.ctx.services.get("assistants")

    def _to_api(self, assistant: Any) -> dict[str, Any]:
        """The OpenAI shape, plus ``jan_sandbox`` (isolation level, running, last error) for
        an assistant that carries code, when the sandbox service is there."""
        out = assistant_to_api(assistant)
        services = self.ctx.services
        if services.providers(SANDBOX):
            try:
                status = services.get(SANDBOX).status(assistant.id)
            except Exception as exc:  # noqa: BLE001 - the assistant is still listed
                self.ctx.log.warning("sandbox status of %s: %s", assistant.id, exc)
                status = None
            if status is not None:
                out["jan_sandbox"] = status
        return out

    @hookimpl
    def register_commands(self, register: Any) -> None:
        register("assistants logs", "Show what an assistant's code printed or logged (-f follows)",
                 configure=cli.configure_logs, run=cli.run_logs)
        register("assistants rm", "Delete an assistant and its folder (asks unless --yes)",
                 configure=cli.configure_rm, run=cli.run_rm)

    @hookimpl
    def register_routes(self, register: Any) -> None:
        register("/v1/assistants", self.create, methods=["POST"])
        register("/v1/assistants", self.list, methods=["GET"])
        register("/v1/assistants/{assistant_id}", self.retrieve, methods=["GET"])
        register("/v1/assistants/{assistant_id}", self.modify, methods=["POST"])
        register("/v1/assistants/{assistant_id}", self.delete, methods=["DELETE"])

    async def create(self, request: Request) -> Response:
        body = await read_body(request, AssistantCreateRequest)
        assistant_id = check_id(body.id, what="id") if body.id else new_id("asst")
        store = self._assistants()
        created = await store.create(assistant_from_request(assistant_id, body))
        return json_response(self._to_api(created))

    async def list(self, request: Request) -> Response:
        q = page_query(request)
        page = await self._assistants().list(limit=q.limit, order=q.order, after=q.after,
                                             before=q.before)
        return json_response(page_to_api(page, self._to_api))

    async def retrieve(self, request: Request) -> Response:
        store = self._assistants()
        assistant = await store.get(request.path_params["assistant_id"])
        return json_response(self._to_api(assistant))

    async def modify(self, request: Request) -> Response:
        body = await read_body(request, AssistantModifyRequest, optional=True)
        store = self._assistants()
        assistant_id = request.path_params["assistant_id"]
        changes = assistant_changes(body)
        assistant = await (store.update(assistant_id, changes) if changes
                           else store.get(assistant_id))
        return json_response(self._to_api(assistant))

    async def delete(self, request: Request) -> Response:
        store = self._assistants()
        path_id = request.path_params["assistant_id"]
        assistant = await store.get(path_id)
        await store.delete(path_id)  # the id the client named, resolved the same way as get
        return json_response({"id": assistant.id, "object": "assistant.deleted",
                              "deleted": True})
