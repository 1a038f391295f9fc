"""``/v1/files``: the OpenAI Files API (upload, list, retrieve, content, delete).

Uploads are ``multipart/form-data`` with a ``file`` part and a ``purpose`` field, as the openai SDK
sends them; a ``batch`` file is validated line by line before it is stored (400 naming the line).
Reads are scoped to the caller's tenant; another tenant's file is a 404. ``GET /v1/files`` pages as
OpenAI's (``purpose``, ``limit`` 1-10000, ``order`` asc|desc, ``after`` a file id); deleting a file
an unfinished batch reads is a 409.
"""

from __future__ import annotations

from email import policy
from email.parser import BytesParser
from typing import TYPE_CHECKING

from starlette.responses import Response

from interlace.core.errors import NotFound, PayloadTooLarge, RequestError
from interlace.gateway.routes._base import json_response
from interlace.gateway.routes.jobs import allowed, page
from interlace.jobs.principals import tenant_key, tenant_scope

if TYPE_CHECKING:
    from starlette.requests import Request

    from interlace.jobs.files import Files
    from interlace.jobs.system import JobSystem

__all__ = ["FileRoutes", "parse_form"]

_MAX_LIMIT = 10_000


class FileRoutes:
    def __init__(self, jobs: JobSystem, *, max_body_bytes: int) -> None:
        self.jobs = jobs
        self.max_body_bytes = max_body_bytes

    @property
    def files(self) -> Files:
        """The files store: built, and SQLAlchemy imported, by the first file request."""
        return self.jobs.files

    async def create(self, request: Request) -> Response:
        principal = allowed(request, "files")
        raw = bytearray()
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > self.max_body_bytes:
                raise PayloadTooLarge(
                    f"The upload is larger than the configured limit of {self.max_body_bytes} bytes "
                    "(server.max_body_bytes in interlace.yaml)."
                )
        fields, uploads = parse_form(request.headers.get("content-type", ""), bytes(raw))
        if "file" not in uploads:
            raise RequestError("The upload has no 'file' part.", param="file")
        purpose = fields.get("purpose")
        if not purpose:
            raise RequestError("'purpose' is required.", param="purpose")
        filename, content = uploads["file"]
        answer = await self.files.create(
            tenant_key(principal), purpose=purpose, filename=filename, content=content
        )
        return json_response(answer)

    async def retrieve(self, request: Request) -> Response:
        principal = allowed(request, "files")
        found = await self.files.get(request.path_params["file_id"], tenant_scope(principal))
        if found is None:
            raise _not_found(request)
        return json_response(found)

    async def list(self, request: Request) -> Response:
        principal = allowed(request, "files")
        params = request.query_params
        raw = params.get("limit", str(_MAX_LIMIT))
        if not raw.isdigit() or not 1 <= int(raw) <= _MAX_LIMIT:
            raise RequestError(f"limit must be an integer from 1 to {_MAX_LIMIT}.", param="limit")
        order = params.get("order", "desc")
        if order not in {"asc", "desc"}:
            raise RequestError("order must be 'asc' or 'desc'.", param="order")
        limit = int(raw)
        found = await self.files.list(
            tenant_scope(principal),
            purpose=params.get("purpose") or None,
            after=params.get("after") or None,
            limit=limit + 1,
            ascending=order == "asc",
        )
        return json_response(page(found, limit))

    async def delete(self, request: Request) -> Response:
        principal = allowed(request, "files")
        file_id = request.path_params["file_id"]
        if not await self.files.delete(file_id, tenant_scope(principal)):
            raise _not_found(request)
        return json_response({"id": file_id, "object": "file", "deleted": True})

    async def content(self, request: Request) -> Response:
        principal = allowed(request, "files")
        content = await self.files.content(request.path_params["file_id"], tenant_scope(principal))
        if content is None:
            raise _not_found(request)
        return Response(content, media_type="application/jsonl")


def parse_form(content_type: str, body: bytes) -> tuple[dict[str, str], dict[str, tuple[str, bytes]]]:
    """The text fields and the file parts (filename, bytes) of a ``multipart/form-data`` body."""
    if not content_type.lower().startswith("multipart/form-data"):
        raise RequestError("Upload files as multipart/form-data.", param="file")
    message = BytesParser(policy=policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    if not message.is_multipart():
        raise RequestError("The multipart body cannot be read.", param="file")
    fields: dict[str, str] = {}
    uploads: dict[str, tuple[str, bytes]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        filename = part.get_filename()
        if filename is not None:
            uploads[name] = (filename, data)
        else:
            fields[name] = data.decode("utf-8", errors="replace")
    return fields, uploads


def _not_found(request: Request) -> NotFound:
    return NotFound(
        f"No file with id '{request.path_params['file_id']}'.", param="file_id", code="file_not_found"
    )
