"""Tie upstream work to the client's connection: when the client goes away, the work is cancelled.

Both helpers race the work against the ASGI ``http.disconnect`` message, so an upstream request
(which holds a pooled connection and costs tokens) never outlives the client that asked for it.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any, TypeVar

from starlette.responses import Response

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Mapping

    from starlette.types import Receive, Scope, Send

__all__ = ["ClientDisconnected", "EventStreamResponse", "cancel_on_disconnect"]

T = TypeVar("T")


class ClientDisconnected(Exception):
    """The client closed the connection before the answer was ready."""


async def _disconnected(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


async def _race(work: Awaitable[T], receive: Receive) -> T:
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_disconnected(receive))
    try:
        await asyncio.wait((task, watcher), return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        task.cancel()
        raise
    finally:
        watcher.cancel()
    if not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        raise ClientDisconnected
    return task.result()


async def cancel_on_disconnect(work: Awaitable[T], receive: Receive) -> T:
    """Await ``work``; cancel it and raise :class:`ClientDisconnected` if the client leaves first."""
    return await _race(work, receive)


class EventStreamResponse(Response):
    """``text/event-stream`` written event by event as the iterator yields, without buffering.

    The iterator is closed (and the upstream with it) as soon as the client disconnects.
    """

    media_type = "text/event-stream"

    def __init__(self, events: AsyncIterator[bytes], headers: Mapping[str, str] | None = None) -> None:
        self.status_code = 200
        self.background = None
        merged = {
            "content-type": "text/event-stream; charset=utf-8",
            "cache-control": "no-cache",
            "x-accel-buffering": "no",
            **(headers or {}),
        }
        self.raw_headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in merged.items()]
        self.events = events

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        del scope
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        try:
            await _race(self._pump(send), receive)
        except (ClientDisconnected, OSError):
            pass
        finally:
            aclose: Any = getattr(self.events, "aclose", None)
            if aclose is not None:
                await aclose()

    async def _pump(self, send: Send) -> None:
        async for event in self.events:
            await send({"type": "http.response.body", "body": event, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
