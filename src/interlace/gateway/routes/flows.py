"""``POST /v1/flows/{name}/events``: a webhook event into a flow's inbox, ``202`` once it is durable.

The caller is authenticated like every gateway call and needs the ``flows`` endpoint family; a
tenant's key may post only into flows of its own tenant (or flows without one). The event id is the
``Idempotency-Key`` header, else the body's string ``id``, else a new one: posting the same id twice
queues the event once (the second answer says ``"duplicate": true``). ``traceparent``/``tracestate``
are kept with the event, so the flow continues the producer's trace.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any, Final

import orjson
from starlette.responses import Response

from interlace.core.errors import NotFound, PermissionDenied, RequestError
from interlace.flows.connectors.webhook.config import WebhookSourceConfig
from interlace.gateway.bodies import read_json
from interlace.gateway.identity import principal_of

if TYPE_CHECKING:
    from starlette.requests import Request

    from interlace.config.flows import FlowConfig
    from interlace.flows.connectors.webhook.inbox import Inbox
    from interlace.store.database import Database

__all__ = ["ENDPOINT", "FlowEventRoutes"]

ENDPOINT: Final = "flows"
_KEPT_HEADERS: Final = ("traceparent", "tracestate")
_MAX_ID: Final = 255


class FlowEventRoutes:
    def __init__(self, database: Database, flows: dict[str, FlowConfig]) -> None:
        self._database = database
        self._inbox: Inbox | None = None
        self.flows = {
            name: (flow, flow.source)
            for name, flow in flows.items()
            if isinstance(flow.source, WebhookSourceConfig)
        }

    def inbox(self) -> Inbox:
        """The webhook inbox, made with the first event (a gateway without webhook flows never loads it)."""
        if self._inbox is None:
            from interlace.flows.connectors.webhook.inbox import Inbox  # noqa: PLC0415 - SQLAlchemy's

            self._inbox = Inbox(self._database)
        return self._inbox

    async def post(self, request: Request) -> Response:
        name = request.path_params["name"]
        principal = principal_of(request.scope)
        if not principal.may_call(ENDPOINT):
            raise PermissionDenied(
                f"credential '{principal.id}' may not call {ENDPOINT} endpoints", code="endpoint_not_allowed"
            )
        found = self.flows.get(name)
        if found is None:
            known = ", ".join(sorted(self.flows)) or "none"
            raise NotFound(f"No flow '{name}' has a webhook source (webhook flows: {known}).", param="name")
        flow, source = found
        tenant = flow.principal.tenant
        if tenant is not None and not principal.is_operator and principal.tenant != tenant:
            raise PermissionDenied(
                f"credential '{principal.id}' may not post into flow '{name}' of another tenant",
                code="tenant_not_allowed",
            )
        body = await read_json(request, source.max_event_bytes)
        event_id = self._event_id(request, body)
        key = body.get(source.key_field) if source.key_field else None
        headers = {h: request.headers[h] for h in _KEPT_HEADERS if h in request.headers}
        accepted = await self.inbox().accept(
            name,
            event_id,
            body,
            headers=headers,
            key=str(key) if key is not None else None,
            principal=principal.id,
            tenant=principal.tenant,
        )
        answer: dict[str, Any] = {
            "object": "flow.event",
            "id": event_id,
            "flow": name,
            "duplicate": not accepted,
        }
        return Response(orjson.dumps(answer), status_code=202, media_type="application/json")

    @staticmethod
    def _event_id(request: Request, body: dict[str, Any]) -> str:
        given = request.headers.get("idempotency-key")
        param = "Idempotency-Key"
        if given is None and isinstance(body.get("id"), str):
            given, param = body["id"], "id"
        if given is None:
            return f"evt_{uuid.uuid4().hex}"
        if not given or len(given) > _MAX_ID:
            raise RequestError(f"The event id must be 1-{_MAX_ID} characters.", param=param)
        return given
