"""``GET /metrics``: Prometheus text exposition of the runtime's metrics (open, like ``/healthz``).

Label values are configured names only (see :mod:`interlace.observability.labels`), so the page
reveals nothing a caller sent. Breaker states are read from their store just before each scrape.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.responses import Response

from interlace.observability.metrics import CONTENT_TYPE

if TYPE_CHECKING:
    from starlette.requests import Request

    from interlace.observability.metrics import Metrics

__all__ = ["MetricsRoutes"]


class MetricsRoutes:
    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    async def scrape(self, request: Request) -> Response:
        del request
        await self.metrics.refresh()
        return Response(self.metrics.exposition(), headers={"content-type": CONTENT_TYPE})
