"""``GET /openapi.json``: every route the host serves right now, extension routes included.

Request and response bodies come from pydantic models: the ones a route declared when it was
registered (``register(path, endpoint, methods, request_model=..., response_model=...,
query_model=...)``), else the sdk's OpenAI request models for the standard routes. A route that
declares nothing is still listed (with a free-form JSON body), so clients and fuzzers see every
path, method and path parameter; every error is OpenAI's ``{"error": {...}}``.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel

from jan.sdk import openai_requests as req
from jan.sdk.http import PageQuery, json_response

from . import __version__
from .hooks import RouteSpec

_PARAM = re.compile(r"{([A-Za-z_][A-Za-z0-9_]*)(?::[a-z]+)?}")

# Routes of the bundled extensions whose request models live in the sdk.
KNOWN_BODIES: dict[tuple[str, str], type[BaseModel]] = {
    ("POST", "/v1/threads"): req.ThreadCreateRequest,
    ("POST", "/v1/threads/{thread_id}"): req.ThreadModifyRequest,
    ("PATCH", "/v1/threads/{thread_id}"): req.ThreadModifyRequest,
    ("POST", "/v1/threads/{thread_id}/messages"): req.MessageCreateRequest,
    ("POST", "/v1/threads/{thread_id}/messages/{message_id}"): req.MessageModifyRequest,
    ("POST", "/v1/assistants"): req.AssistantCreateRequest,
    ("POST", "/v1/assistants/{assistant_id}"): req.AssistantModifyRequest,
}
LIST_SUFFIXES = ("/threads", "/messages", "/assistants", "/runs", "/steps")


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None
    code: str | None


class ErrorResponse(BaseModel):
    error: ErrorDetail


def _ref(model: type[BaseModel], schemas: dict[str, Any]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, sub in schema.pop("$defs", {}).items():
        schemas.setdefault(name, sub)
    schemas.setdefault(model.__name__, schema)
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _operation(spec: RouteSpec, method: str, path: str, schemas: dict[str, Any]
               ) -> dict[str, Any]:
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _PARAM.findall(spec.path)]
    query = getattr(spec, "query_model", None) or (
        PageQuery if method == "GET" and path.endswith(LIST_SUFFIXES) else None)
    if query is not None:
        for name, field in query.model_fields.items():
            params.append({"name": name, "in": "query", "required": field.is_required(),
                           "schema": _field_schema(query, name)})
    op: dict[str, Any] = {
        "operationId": f"{spec.owner}_{method.lower()}_{_slug(path)}",
        "tags": [spec.owner],
        "parameters": params,
        "responses": {
            "200": {"description": "OK", "content": {"application/json": {"schema": (
                _ref(spec.response_model, schemas) if getattr(spec, "response_model", None)
                else {"type": "object"})}}},
            "default": {"description": "An OpenAI-shaped error", "content": {
                "application/json": {"schema": _ref(ErrorResponse, schemas)}}},
        },
    }
    if method in ("POST", "PUT", "PATCH"):
        model = getattr(spec, "request_model", None) or KNOWN_BODIES.get((method, path))
        body = _ref(model, schemas) if model is not None else {"type": "object"}
        op["requestBody"] = {"required": False, "content": {"application/json": {
            "schema": body}}}
    return op


def _field_schema(model: type[BaseModel], name: str) -> dict[str, Any]:
    props = model.model_json_schema().get("properties", {})
    return {k: v for k, v in props.get(name, {"type": "string"}).items() if k != "title"}


def _slug(path: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", path).strip("_") or "root"


def build_openapi(routes: list[RouteSpec]) -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    paths: dict[str, dict[str, Any]] = {}
    builtin = [RouteSpec(path, lambda r: None, ["GET"], "host") for path in ("/health", "/metrics")]
    for spec in [*builtin, *routes]:
        path = _PARAM.sub(r"{\1}", spec.path)
        for method in spec.methods:
            if method in ("HEAD", "OPTIONS"):
                continue
            paths.setdefault(path, {})[method.lower()] = _operation(spec, method, path, schemas)
    return {
        "openapi": "3.1.0",
        "info": {"title": "jan", "version": __version__,
                 "description": "A local, private OpenAI-compatible API."},
        "servers": [{"url": "/"}],
        "paths": dict(sorted(paths.items())),
        "components": {"schemas": schemas},
    }


def openapi_endpoint(host: Any):  # noqa: ANN201 - a Starlette endpoint
    async def openapi(request: Any) -> Any:
        # Extensions that activate on their first request would be missing: wake them.
        for rec in list(host.records.values()):
            if rec.state == "inactive" and any(
                    e.startswith("onRoute:") for e in rec.manifest.activation_events):
                await host.activate(rec.id)
        return json_response(build_openapi(list(host.routes())))

    return openapi
