"""The HTTP endpoint sink: one request per message, confirmed by a 2xx; retried with backoff.

408, 425, 429 and 5xx answers and connection errors are retried (``Retry-After`` honoured up to the
backoff cap); any other 4xx is a permanent refusal (:class:`~interlace.core.errors.MessageRejected`):
the flow dead-letters the message. Each request carries ``Idempotency-Key: <message id>`` and the
message's ``traceparent``.
"""

from __future__ import annotations

import asyncio
import random
from typing import TYPE_CHECKING

import httpx
import orjson

from interlace.core.errors import MessageRejected, UpstreamUnavailable
from interlace.flows.connectors.files.sink import envelope
from interlace.flows.retry import RETRYABLE_STATUSES, with_retries

if TYPE_CHECKING:
    from collections.abc import Sequence

    from interlace.flows.connectors.http.config import HttpSinkConfig
    from interlace.flows.message import Message
    from interlace.flows.services import FlowServices

__all__ = ["HttpSink"]

_TRACE_HEADERS = ("traceparent", "tracestate")


class HttpSink:
    def __init__(self, config: HttpSinkConfig, services: FlowServices | None = None) -> None:
        del services
        self.config = config
        self.name = f"http:{config.url}"
        self._client: httpx.AsyncClient | None = None
        self._rng = random.Random()  # noqa: S311 - backoff jitter

    async def start(self) -> None:
        self._client = httpx.AsyncClient(timeout=self.config.timeout)

    async def write(self, messages: Sequence[Message]) -> None:
        await asyncio.gather(*(self._send(m) for m in messages))

    async def _send(self, message: Message) -> None:
        await with_retries(lambda: self._attempt(message), self.config.retry, rng=self._rng)

    async def _attempt(self, message: Message) -> None:
        client = self._client
        if client is None:
            msg = "HttpSink used before start()"
            raise RuntimeError(msg)
        body = envelope(message) if self.config.body == "envelope" else message.payload
        headers = {
            "content-type": "application/json",
            "idempotency-key": message.id,
            **{h: message.headers[h] for h in _TRACE_HEADERS if h in message.headers},
            **self.config.headers,
        }
        try:
            response = await client.request(
                self.config.method, self.config.url, content=orjson.dumps(body), headers=headers
            )
        except httpx.HTTPError as exc:
            raise UpstreamUnavailable(f"{self.config.url}: {type(exc).__name__}: {exc}") from exc
        status = response.status_code
        if status < 300:  # noqa: PLR2004
            return
        detail = f"{self.config.method} {self.config.url} answered {status}: {response.text[:200]}"
        if status in RETRYABLE_STATUSES or status >= 500:  # noqa: PLR2004
            raise UpstreamUnavailable(detail)
        raise MessageRejected(detail)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
