"""``GET /v1/audit``: the caller's tenant's audit entries, oldest first, page by page.

Query parameters: ``since`` (inclusive) and ``until`` (exclusive; a date means the end of that day),
each an ISO date or date-time, UTC unless it says otherwise; ``limit`` (1-1000, default 100);
``cursor`` (the ``next_cursor`` of the previous page).

Each entry carries its chain fields (``seq``, ``alg``, ``prev_hash``, ``hash``), so a client can check
each entry's hash (and, with ``audit.hmac_key``, nobody without the key can forge one).

Tenant scoping: a caller sees only its own tenant's entries (a caller without a tenant, those without
one). The operator (:attr:`~interlace.core.principal.Principal.is_operator`) sees every tenant's, or
one tenant's with ``?tenant=``; anyone else naming another tenant is refused (403).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

import orjson
from starlette.responses import Response

from interlace.core.errors import PermissionDenied, RequestError
from interlace.gateway.identity import principal_of
from interlace.security.audit.store import ALL_TENANTS, AuditFilter, export_line, page, parse_bound

if TYPE_CHECKING:
    from datetime import datetime

    from starlette.datastructures import QueryParams
    from starlette.requests import Request

    from interlace.store.database import Database

__all__ = ["AuditRoutes"]

_DEFAULT_LIMIT: Final = 100
_MAX_LIMIT: Final = 1000


class AuditRoutes:
    def __init__(self, database: Database) -> None:
        self.database = database

    async def list(self, request: Request) -> Response:
        params = request.query_params
        since, until = _bound(params, "since"), _bound(params, "until", end=True)
        if since is not None and until is not None and since >= until:
            raise RequestError("'since' must be before 'until'", param="since", code="invalid_value")
        limit = _integer(params, "limit", _DEFAULT_LIMIT, 1, _MAX_LIMIT)
        after = _integer(params, "cursor", 0, 0, None)
        principal = principal_of(request.scope)
        asked = params.get("tenant")
        tenant: Any = principal.tenant
        if principal.is_operator:
            tenant = asked or ALL_TENANTS
        elif asked is not None and asked != principal.tenant:
            raise PermissionDenied(
                f"credential '{principal.id}' may read only its own tenant's audit entries",
                code="tenant_not_allowed",
                param="tenant",
            )
        found, more = await page(
            self.database, AuditFilter(tenant=tenant, since=since, until=until), limit=limit, after=after
        )
        body = {
            "object": "list",
            "data": [export_line(row) for row in found],
            "has_more": more,
            "next_cursor": str(found[-1].position) if more and found else None,
        }
        return Response(orjson.dumps(body), media_type="application/json")


def _bound(params: QueryParams, name: str, *, end: bool = False) -> datetime | None:
    value = params.get(name)
    if not value:
        return None
    try:
        return parse_bound(value, end=end)
    except ValueError:
        raise RequestError(
            f"'{name}' must be an ISO date or date-time (2026-11-27 or 2026-11-27T10:00:00Z), not {value!r}",
            param=name,
            code="invalid_value",
        ) from None


def _integer(params: QueryParams, name: str, default: int, low: int, high: int | None) -> int:
    value = params.get(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        number = low - 1
    if number < low or (high is not None and number > high):
        limits = f"from {low} to {high}" if high is not None else f"{low} or more"
        raise RequestError(
            f"'{name}' must be an integer {limits}, not {value!r}", param=name, code="invalid_value"
        )
    return number
