"""``/admin/v1/keys``: create, list, read, rotate and revoke virtual API keys (the operator only).

::

    POST   /admin/v1/keys                 create; the answer's ``key`` is the secret, shown this once
    GET    /admin/v1/keys                 ?tenant=&team=&include_revoked=true; never hashes or secrets
    GET    /admin/v1/keys/{id}
    POST   /admin/v1/keys/{id}/rotate     {"grace": "1h"}: a new secret; the old one works 1 h longer
    DELETE /admin/v1/keys/{id}            revoke, at once on this instance (others: within a refresh)

The caller must be the operator: the admin key, the master key, or anyone on a gateway without
authentication (which binds loopback only). A tenant's key or token gets 403. Bodies are validated
with :mod:`interlace.security.keys.spec`: a 400 names the field that is wrong.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError
from starlette.responses import Response

from interlace.core.errors import PermissionDenied, RequestError
from interlace.gateway.errors import validation_error
from interlace.gateway.identity import principal_of
from interlace.security.keys.spec import KeySpec, RotateSpec

if TYPE_CHECKING:
    from starlette.requests import Request

    from interlace.security.keys.cache import KeyCache
    from interlace.security.keys.model import ApiKey
    from interlace.security.keys.store import KeyStore

__all__ = ["AdminKeyRoutes"]

_MAX_BODY = 64 * 1024
ModelT = TypeVar("ModelT", bound=BaseModel)


class AdminKeyRoutes:
    def __init__(self, store: KeyStore, cache: KeyCache | None) -> None:
        self.store = store
        self.cache = cache
        """Updated at once with every change made here (revocation is immediate on this instance)."""

    async def create(self, request: Request) -> Response:
        _operator_only(request)
        spec = await _body(request, KeySpec)
        issued = await self.store.create(spec)
        self._remember(issued.key)
        return _json(issued.public(), status=201)

    async def list(self, request: Request) -> Response:
        _operator_only(request)
        params = request.query_params
        include = params.get("include_revoked", "false").lower()
        if include not in {"true", "false", "1", "0"}:
            raise RequestError(
                f"'include_revoked' must be true or false, not {include!r}",
                param="include_revoked",
                code="invalid_value",
            )
        keys = await self.store.list_keys(
            tenant=params.get("tenant") or None,
            team=params.get("team") or None,
            include_revoked=include in {"true", "1"},
        )
        return _json({"object": "list", "data": [key.public() for key in keys]})

    async def retrieve(self, request: Request) -> Response:
        _operator_only(request)
        key = await self.store.require(request.path_params["key_id"])
        return _json(key.public())

    async def rotate(self, request: Request) -> Response:
        _operator_only(request)
        spec = await _body(request, RotateSpec, empty_ok=True)
        issued = await self.store.rotate(request.path_params["key_id"], grace=spec.grace_period())
        self._remember(issued.key)
        return _json(issued.public())

    async def revoke(self, request: Request) -> Response:
        _operator_only(request)
        key = await self.store.revoke(request.path_params["key_id"])
        self._remember(key)
        return _json(key.public())

    def _remember(self, key: ApiKey) -> None:
        if self.cache is not None:
            self.cache.put(key)


def _operator_only(request: Request) -> None:
    principal = principal_of(request.scope)
    if not principal.is_operator:
        raise PermissionDenied(
            f"credential '{principal.id}' may not manage API keys: use the admin key or the master key",
            code="permission_denied",
        )


async def _body(request: Request, model: type[ModelT], *, empty_ok: bool = False) -> ModelT:
    raw = await request.body()
    if len(raw) > _MAX_BODY:
        raise RequestError(f"the body is larger than {_MAX_BODY} bytes", code="request_too_large")
    if not raw.strip() and empty_ok:
        return model.model_validate({})
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise RequestError("the body is not valid JSON", code="invalid_json") from None
    if not isinstance(data, dict):
        raise RequestError("the body must be a JSON object", code="invalid_json")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc) from None


def _json(body: dict[str, Any], *, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")
