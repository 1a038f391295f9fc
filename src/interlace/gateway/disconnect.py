"""Tie upstream work to the client's connection: when the client goes away, the work is cancelled.

Both helpers race the work against the ASGI ``http.disconnect`` message, so an upstream request
(which holds a pooled connection and costs tokens) never outlives the client that asked for it.

The watch starts :data:`WATCH_AFTER` seconds into the work, not at once. Watching takes a task that
waits on ``receive()`` and is cancelled afterwards: ~40 µs of CPU, a fifth of what the gateway adds to
a fast call. An answer ready sooner never pays it; a client gone meanwhile is seen when the watch
starts (the server remembers the disconnect), so at most that long of upstream work is wasted.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, TypeVar

from starlette.responses import Response

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Mapping

    from starlette.types import Receive, Scope, Send

__all__ = ["ClientDisconnected", "EventStreamResponse", "cancel_on_disconnect"]

T = TypeVar("T")


class ClientDisconnected(Exception):
    """The client closed the connection before the answer was ready."""


WATCH_AFTER = 0.005
"""Seconds of work before the client's connection is watched (see the module's notes)."""


class _Watcher:
    """Cancels the task running the work when the client disconnects (one helper task, no polling).

    The helper task is created :data:`WATCH_AFTER` seconds after the watcher, by a timer that
    ``stop()`` cancels when the work ended first.
    """

    __slots__ = ("fired", "owner", "receive", "task", "timer")

    def __init__(self, receive: Receive) -> None:
        self.fired = False
        owner = asyncio.current_task()
        assert owner is not None
        self.owner = owner
        self.receive = receive
        self.task: asyncio.Task[None] | None = None
        self.timer = asyncio.get_running_loop().call_later(WATCH_AFTER, self._start)

    def _start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._watch())

    async def _watch(self) -> None:
        while (await self.receive())["type"] != "http.disconnect":
            pass
        self.fired = True
        self.owner.cancel()

    def stop(self) -> None:
        self.timer.cancel()
        if self.task is not None:
            self.task.cancel()


async def _race(work: Awaitable[T], receive: Receive) -> T:
    """Await ``work`` in this task; a disconnect cancels it and becomes :class:`ClientDisconnected`."""
    watcher = _Watcher(receive)
    try:
        return await work
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if watcher.fired and current is not None and current.uncancel() == 0:
            raise ClientDisconnected from None
        raise
    finally:
        watcher.stop()


async def cancel_on_disconnect(work: Awaitable[T], receive: Receive) -> T:
    """Await ``work``; cancel it and raise :class:`ClientDisconnected` if the client leaves first."""
    return await _race(work, receive)


class EventStreamResponse(Response):
    """``text/event-stream`` written event by event as the iterator yields, without buffering.

    The iterator is closed (and the upstream with it) as soon as the client disconnects; ``on_close``
    is then called once, however the stream ended (the request record is made there).
    """

    media_type = "text/event-stream"

    def __init__(
        self,
        events: AsyncIterator[bytes],
        headers: Mapping[str, str] | None = None,
        *,
        on_close: Callable[[], None] | None = None,
    ) -> None:
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
        self.on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self._stream(scope, receive, send)
        finally:
            if self.on_close is not None:
                self.on_close()

    async def _stream(self, scope: Scope, receive: Receive, send: Send) -> None:
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
