"""``/v1/files``: upload (multipart), list, retrieve, content, delete."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from starlette.datastructures import UploadFile

from jan.sdk import Context
from jan.sdk.errors import InvalidRequest
from jan.sdk.http import Request, Response, json_response, page_query
from jan.sdk.openai_shapes import page_to_api

from .backend import Files
from .retrieval import Retrieval
from .store import PURPOSES, check_id


class FileRoutes:
    def __init__(self, ctx: Context, files: Files, retrieval: Retrieval) -> None:
        self.ctx, self.files, self.retrieval = ctx, files, retrieval

    def table(self) -> list[tuple[str, Any, list[str]]]:
        return [
            ("/v1/files", self.upload, ["POST"]),
            ("/v1/files", self.list, ["GET"]),
            ("/v1/files/{file_id}", self.retrieve, ["GET"]),
            ("/v1/files/{file_id}", self.delete, ["DELETE"]),
            ("/v1/files/{file_id}/content", self.content, ["GET"]),
        ]

    async def upload(self, request: Request) -> Response:
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            raise InvalidRequest("Upload a file as multipart/form-data with fields 'file' and "
                                 "'purpose'", param="file")
        try:
            form = await request.form(max_files=1, max_fields=16)
        except Exception as exc:  # noqa: BLE001 - any multipart parse error is the client's
            raise InvalidRequest(f"Malformed multipart body: {exc}", param="file") from None
        try:
            upload, purpose = form.get("file"), form.get("purpose")
            if not isinstance(upload, UploadFile):
                raise InvalidRequest("Missing required parameter: 'file'", param="file")
            if not isinstance(purpose, str) or not purpose:
                raise InvalidRequest("Missing required parameter: 'purpose'", param="purpose")
            limit = self.files.max_bytes
            data = await upload.read(limit + 1)
            record = self.files.create(upload.filename or "upload", data, purpose)
        finally:
            await form.close()
        await self.ctx.events.emit("file.created", record.to_api())
        return json_response(record.to_api())

    async def list(self, request: Request) -> Response:
        q = page_query(request, max_limit=10_000)
        purpose = request.query_params.get("purpose") or None
        if purpose is not None and purpose not in PURPOSES:
            raise InvalidRequest(f"Invalid 'purpose': must be one of {', '.join(PURPOSES)}",
                                 param="purpose")
        page = self.files.list(purpose=purpose, limit=q.limit, order=q.order, after=q.after,
                               before=q.before)
        return json_response(page_to_api(page, lambda r: r.to_api()))

    async def retrieve(self, request: Request) -> Response:
        return json_response(self.files.get(request.path_params["file_id"]).to_api())

    async def content(self, request: Request) -> Response:
        file_id = check_id(request.path_params["file_id"])
        record = self.files.get(file_id)
        data = self.files.read(file_id)
        ascii_name = record.filename.encode("ascii", "replace").decode().replace('"', "_")
        disposition = (f"attachment; filename=\"{ascii_name}\"; "
                       f"filename*=UTF-8''{quote(record.filename)}")
        return Response(data, media_type="application/octet-stream", headers={
            "Content-Disposition": disposition,
            "X-Content-Type-Options": "nosniff"})

    async def delete(self, request: Request) -> Response:
        file_id = check_id(request.path_params["file_id"])
        await self.retrieval.delete_file(file_id)
        return json_response({"id": file_id, "object": "file", "deleted": True})
