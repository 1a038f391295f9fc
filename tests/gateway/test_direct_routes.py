"""Fixed model paths reach their handler directly, with the same answers as through the router."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
from starlette.applications import Starlette
from starlette.endpoints import HTTPEndpoint
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.responses import JSONResponse
from starlette.routing import Route

from interlace.core.errors import RequestError
from interlace.gateway.errors import handle_exception
from interlace.gateway.middleware.direct_routes import DirectRoutes

if TYPE_CHECKING:
    from starlette.requests import Request


async def _answer(request: Request) -> JSONResponse:
    route = request.scope.get("route")
    return JSONResponse({"route": getattr(route, "path", None), "params": dict(request.path_params)})


async def _refuse(request: Request) -> JSONResponse:
    del request
    raise RequestError("no", param="x", code="bad")


async def _crash(request: Request) -> JSONResponse:
    del request
    raise RuntimeError("boom")


def _client() -> httpx.AsyncClient:
    routes = [
        Route("/fixed", _answer, methods=["POST"]),
        Route("/items/{name}", _answer, methods=["GET"]),
        Route("/refuse", _refuse, methods=["POST"]),
        Route("/crash", _crash, methods=["POST"]),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(DirectRoutes, routes=routes)],
        exception_handlers={
            RequestError: handle_exception,
            HTTPException: handle_exception,
            Exception: handle_exception,
        },
    )
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://gateway")


class _Endpoint(HTTPEndpoint):
    async def get(self, request: Request) -> JSONResponse:
        del request
        return JSONResponse({})


def test_the_table_holds_fixed_paths_of_request_handlers_with_their_methods_only() -> None:
    routes = [
        Route("/fixed", _answer, methods=["POST"]),
        Route("/items/{name}", _answer, methods=["GET"]),
        Route("/endpoint-class", _Endpoint, methods=["GET"]),
    ]
    table = DirectRoutes(_answer, routes=routes).table  # type: ignore[arg-type]
    assert set(table) == {("POST", "/fixed")}


async def test_a_fixed_path_is_served_with_its_route_in_the_scope() -> None:
    async with _client() as client:
        response = await client.post("/fixed")
    assert response.status_code == 200
    assert response.json() == {"route": "/fixed", "params": {}}


async def test_other_paths_and_methods_go_through_the_router() -> None:
    async with _client() as client:
        with_params = await client.get("/items/a")
        wrong_method = await client.get("/fixed")
        unknown = await client.post("/nowhere")
    assert with_params.json() == {"route": "/items/{name}", "params": {"name": "a"}}
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"]["type"] == "invalid_request_error"
    assert unknown.status_code == 404


async def test_errors_are_answered_as_the_router_answers_them() -> None:
    async with _client() as client:
        refused = await client.post("/refuse")
        crashed = await client.post("/crash")
    assert refused.status_code == 400
    assert refused.json()["error"] == {
        "message": "no",
        "type": "invalid_request_error",
        "param": "x",
        "code": "bad",
    }
    assert crashed.status_code == 500
    assert "reference" in crashed.json()["error"]["message"]
