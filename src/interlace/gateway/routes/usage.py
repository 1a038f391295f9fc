"""``GET /v1/usage``: the caller's tenant's usage and cost, from the ``usage_daily`` read model.

Query parameters: ``start`` and ``end`` (UTC days ``YYYY-MM-DD``, both included; default the last 30
days to today) and ``group_by`` (``day``, the default, ``model`` or ``api_key``).

Tenant scoping: the tenant is the authenticated caller's (:func:`~interlace.gateway.identity.principal_of`).
A caller without a tenant (the master key, or a gateway without authentication) sees the requests
that had no tenant, or — being the operator — any one tenant's with ``?tenant=ID``. A tenant never
sees another's usage: its ``?tenant=`` may only name itself (403 otherwise).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import orjson
from starlette.responses import Response

from interlace.core.errors import PermissionDenied, RequestError
from interlace.gateway.identity import principal_of
from interlace.observability.events import GROUP_BY, GroupBy, UsageRow, usage

if TYPE_CHECKING:
    from starlette.requests import Request

    from interlace.store.database import Database

__all__ = ["UsageRoutes"]

_DEFAULT_DAYS = 30
_MAX_DAYS = 3660
_KEY_NAMES: dict[GroupBy, str] = {"day": "day", "model": "model", "api_key": "api_key_id"}


class UsageRoutes:
    def __init__(self, database: Database) -> None:
        self.database = database

    async def get(self, request: Request) -> Response:
        params = request.query_params
        today = datetime.now(UTC).date()
        end = _day(params, "end", today)
        # the default window ends at 'end' and never reaches before the first day of the calendar
        start = _day(params, "start", date.fromordinal(max(1, end.toordinal() - (_DEFAULT_DAYS - 1))))
        if start > end:
            raise RequestError("'start' must not be after 'end'", param="start", code="invalid_value")
        if (end - start).days >= _MAX_DAYS:
            raise RequestError(
                f"the window from 'start' to 'end' is longer than {_MAX_DAYS} days",
                param="start",
                code="invalid_value",
            )
        group_by = params.get("group_by", "day")
        if group_by not in GROUP_BY:
            raise RequestError(
                f"'group_by' must be one of {', '.join(GROUP_BY)}, not {group_by!r}",
                param="group_by",
                code="invalid_value",
            )
        tenant = _tenant(request, params.get("tenant") or None)
        rows = await usage(self.database, tenant=tenant, start=start, end=end, group_by=group_by)
        body = {
            "object": "usage",
            "tenant": tenant,
            "start": start.isoformat(),
            "end": end.isoformat(),
            "group_by": group_by,
            "data": [_row(_KEY_NAMES[group_by], row) for row in rows],
            "total": _figures(UsageRow.combined(rows)),
        }
        return Response(orjson.dumps(body), media_type="application/json")


def _tenant(request: Request, asked: str | None) -> str | None:
    """The caller's own tenant, or (the operator only) the one ``?tenant=`` names."""
    principal = principal_of(request.scope)
    if asked is None or asked == principal.tenant:
        return principal.tenant
    if principal.is_operator:
        return asked
    raise PermissionDenied(
        f"credential '{principal.id}' may read only its own tenant's usage", param="tenant"
    )


def _day(params: Any, name: str, default: date) -> date:
    value = params.get(name)
    if value is None or value == "":
        return default
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise RequestError(
            f"'{name}' must be a date as YYYY-MM-DD, not {value!r}", param=name, code="invalid_value"
        ) from None


def _figures(row: UsageRow) -> dict[str, Any]:
    return {
        "requests": row.requests,
        "errors": row.errors,
        "partial": row.partial,
        "estimated": row.estimated,
        "prompt_tokens": row.prompt_tokens,
        "completion_tokens": row.completion_tokens,
        "cached_tokens": row.cached_tokens,
        "reasoning_tokens": row.reasoning_tokens,
        "total_tokens": row.total_tokens,
        "cost_usd": row.cost_usd,
        "shadow_requests": row.shadow_requests,
        "shadow_cost_usd": row.shadow_cost_usd,
    }


def _row(key_name: str, row: UsageRow) -> dict[str, Any]:
    return {key_name: row.key, **_figures(row)}
