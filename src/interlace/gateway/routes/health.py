"""``GET /healthz`` (the process is alive) and ``GET /readyz`` (it can serve)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import orjson
from starlette.responses import Response

if TYPE_CHECKING:
    from starlette.requests import Request

__all__ = ["HealthRoutes", "ReadinessProbe"]


class ReadinessProbe(Protocol):
    async def readiness(self) -> dict[str, bool]:
        """Each dependency's name and whether it is ready."""
        ...

    def readiness_details(self) -> dict[str, object]:
        """Degraded-but-serving states (e.g. the key cache serving its last snapshot); may be empty."""
        ...


class HealthRoutes:
    def __init__(self, probe: ReadinessProbe) -> None:
        self.probe = probe

    async def alive(self, request: Request) -> Response:
        del request
        return Response(b'{"status":"ok"}', media_type="application/json")

    async def ready(self, request: Request) -> Response:
        del request
        checks = await self.probe.readiness()
        ok = all(checks.values())
        body: dict[str, object] = {"status": "ready" if ok else "not_ready", "checks": checks}
        details = self.probe.readiness_details()
        if details:
            body["details"] = details
        return Response(orjson.dumps(body), status_code=200 if ok else 503, media_type="application/json")
