"""``GET /v1/models`` and ``GET /v1/models/{id}``: the aliases this gateway serves."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from starlette.responses import Response

from interlace.core.errors import ModelNotFound

if TYPE_CHECKING:
    from starlette.requests import Request

    from interlace.routing.deployment import ModelRoute
    from interlace.routing.router import Router

__all__ = ["ModelRoutes"]


class ModelRoutes:
    def __init__(self, router: Router, *, created: int) -> None:
        self.router = router
        self.created = created

    def _describe(self, route: ModelRoute) -> dict[str, Any]:
        return {
            "id": route.alias,
            "object": "model",
            "created": self.created,
            "owned_by": "interlace",
            "description": route.description,
            "capabilities": sorted(route.operations),
            "ready": route.ready,
        }

    async def list(self, request: Request) -> Response:
        del request
        data = [self._describe(route) for route in self.router.routes.values()]
        return Response(orjson.dumps({"object": "list", "data": data}), media_type="application/json")

    async def retrieve(self, request: Request) -> Response:
        alias = request.path_params["model"]
        route = self.router.routes.get(alias)
        if route is None:
            raise ModelNotFound(alias, list(self.router.routes))
        return Response(orjson.dumps(self._describe(route)), media_type="application/json")
