"""Run a real Interlace gateway (runtime + uvicorn) on an ephemeral 127.0.0.1 port in a thread."""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING, Self

import uvicorn

from interlace.cli.accept import Server
from interlace.cli.serve import bind_socket, tls_options
from interlace.gateway.app import build_app
from interlace.runtime import Runtime

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter

    from interlace.config.schema import Config


class GatewayServer:
    def __init__(
        self, config: Config, *, wait_for_models: bool = True, span_exporter: SpanExporter | None = None
    ) -> None:
        self.config = config
        self.runtime = Runtime(config, config_source="test", span_exporter=span_exporter)
        self._wait_for_models = wait_for_models
        self._sock = bind_socket("127.0.0.1", 0)
        self.port = self._sock.getsockname()[1]
        self._tls = tls_options(config.server.tls)  # server.tls: HTTPS (and mTLS) like `interlace serve`
        self.url = f"{'https' if self._tls else 'http'}://127.0.0.1:{self.port}"
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="gateway", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout=120):
            msg = "gateway did not start within 120 s"
            raise RuntimeError(msg)
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # surfaced to the test thread
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        await self.runtime.start(wait_for_models=self._wait_for_models)
        config = uvicorn.Config(
            build_app(self.runtime),
            lifespan="off",
            access_log=False,
            log_level="warning",
            loop="none",
            **self._tls,
        )
        self._server = Server(config)  # as `interlace serve` runs it
        task = asyncio.create_task(self._server.serve(sockets=[self._sock]))
        while not self._server.started and not task.done():
            await asyncio.sleep(0.01)
        self._ready.set()
        try:
            await task
        finally:
            await self.runtime.stop()

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=30)
        self._sock.close()
