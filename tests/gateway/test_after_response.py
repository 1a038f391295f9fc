"""Work deferred past the response: run once the app returned, in order, whether it answered or failed."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from interlace.gateway.after_response import defer
from interlace.gateway.disconnect import ClientDisconnected
from interlace.gateway.middleware.request_id import RequestIdMiddleware

if TYPE_CHECKING:
    from starlette.types import Message, Receive, Scope, Send


def test_work_deferred_on_a_scope_no_one_runs_it_for_runs_at_once() -> None:
    ran: list[str] = []
    defer({"type": "http"}, lambda: ran.append("now"))
    assert ran == ["now"]


def _scope() -> dict[str, Any]:
    return {"type": "http", "method": "POST", "path": "/v1/chat/completions", "headers": []}


async def _receive() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


async def test_deferred_work_runs_after_the_response_is_sent_in_order() -> None:
    events: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        del receive
        defer(scope, lambda: events.append("first"))
        defer(scope, lambda: events.append("second"))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    async def send(message: Message) -> None:
        events.append(message["type"])

    await RequestIdMiddleware(app)(_scope(), _receive, send)
    assert events == ["http.response.start", "http.response.body", "first", "second"]


@pytest.mark.parametrize("failure", [ClientDisconnected(), RuntimeError("boom")])
async def test_deferred_work_runs_when_the_app_fails_after_deferring(failure: Exception) -> None:
    ran: list[str] = []
    scope = _scope()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        del receive, send
        defer(scope, lambda: ran.append("recorded"))
        raise failure

    async def send(message: Message) -> None:
        del message

    if isinstance(failure, ClientDisconnected):  # ends quietly in the middleware
        await RequestIdMiddleware(app)(scope, _receive, send)
    else:
        with pytest.raises(RuntimeError):
            await RequestIdMiddleware(app)(scope, _receive, send)
    assert ran == ["recorded"]
    assert "interlace.after_response" not in scope  # run once
