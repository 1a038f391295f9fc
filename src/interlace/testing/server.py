"""Run a fake upstream for real: uvicorn on 127.0.0.1, in a background thread or as a process.

:class:`UpstreamServer` serves one :class:`~interlace.testing.exchange.UpstreamApp` (an honest fake of
the upstream boundary, see :mod:`interlace.testing.faults`) on an ephemeral port, so tests point
deployments at ``server.url`` and the gateway's real HTTP client, pool and timeouts are exercised::

    with UpstreamServer("openai") as upstream:
        upstream.script.push(Fault(kind="status", status=429, retry_after=1), times=2)
        ...  # call the gateway
        assert upstream.requests[-1].headers["authorization"] == "Bearer sk-test"

With ``certfile``/``keyfile`` it serves HTTPS (``url`` is then ``https://…``), and with ``client_ca_file``
it also requires a client certificate signed by that CA (mTLS) — for testing the gateway's upstream TLS::

    ca = trustme.CA(); cert = ca.issue_cert("127.0.0.1")
    with UpstreamServer("openai", certfile=..., keyfile=...) as upstream: ...

``start()`` returns once the port accepts connections; ``stop()`` drops connections still mid-response
(a stalled stream cannot hold shutdown up) and joins the thread, leaving no socket or loop unclosed.

As a process, for benchmarks and manual drills (``--fault`` applies a directive to every model request,
e.g. ``--fault latency_ms=50``)::

    python -m interlace.testing.server --protocol openai --port 9000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import ssl
import sys
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal, Self

import uvicorn
from uvicorn.config import LOGGING_CONFIG

from interlace.testing.anthropic_upstream import AnthropicUpstream
from interlace.testing.faults import (
    DIRECTIVE_PREFIX,
    NORMAL,
    Fault,
    FaultDirectiveError,
    RequestJournal,
    parse_fault_directive,
)
from interlace.testing.inference_v2_upstream import InferenceV2Upstream
from interlace.testing.openai_upstream import OpenAIUpstream

if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import TracebackType

    from interlace.testing.exchange import UpstreamApp
    from interlace.testing.faults import FaultScript, RecordedRequest

__all__ = ["PROTOCOLS", "UpstreamServer", "main", "make_upstream"]

Protocol = Literal["openai", "anthropic", "inference_v2"]
PROTOCOLS: Final[tuple[Protocol, ...]] = ("openai", "anthropic", "inference_v2")
LoopName = Literal["asyncio", "uvloop", "auto"]


def make_upstream(protocol: str, *, default_fault: Fault = NORMAL) -> UpstreamApp:
    """A fresh fake upstream app for ``protocol`` (one of :data:`PROTOCOLS`)."""
    if protocol == "openai":
        return OpenAIUpstream(default_fault=default_fault)
    if protocol == "anthropic":
        return AnthropicUpstream(default_fault=default_fault)
    if protocol == "inference_v2":
        return InferenceV2Upstream(default_fault=default_fault)
    raise ValueError(f"unknown protocol {protocol!r}; expected one of {', '.join(PROTOCOLS)}")


class _Server(uvicorn.Server):
    """uvicorn, dropping the app's in-flight responses once it stops accepting connections."""

    def __init__(self, config: uvicorn.Config, app: UpstreamApp) -> None:
        super().__init__(config)
        self.upstream = app

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        self.upstream.abort_inflight()
        await super().shutdown(sockets)


@dataclass(frozen=True, slots=True, kw_only=True)
class _TLS:
    certfile: str
    keyfile: str | None = None
    client_ca_file: str | None = None

    def options(self) -> dict[str, Any]:
        """uvicorn's ssl settings."""
        return {
            "ssl_certfile": self.certfile,
            "ssl_keyfile": self.keyfile,
            "ssl_ca_certs": self.client_ca_file,
            "ssl_cert_reqs": ssl.CERT_REQUIRED if self.client_ca_file else ssl.CERT_NONE,
        }


def _config(app: UpstreamApp, loop: str, *, quiet_logs: bool, tls: _TLS | None = None) -> uvicorn.Config:
    # In a thread, leave logging alone (records propagate to the test's handlers); as a process,
    # uvicorn's own configuration prints warnings and errors to stderr.
    return uvicorn.Config(
        app,
        log_config=None if quiet_logs else LOGGING_CONFIG,
        loop=loop,
        http="httptools",
        ws="none",
        lifespan="off",
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=2,
        **(tls.options() if tls is not None else {}),
    )


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


class UpstreamServer:
    """A fake upstream served by uvicorn in a background thread; a context manager (sync and async)."""

    def __init__(
        self,
        app: UpstreamApp | str = "openai",
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        loop: LoopName = "asyncio",
        startup_timeout: float = 30.0,
        certfile: str | None = None,
        keyfile: str | None = None,
        client_ca_file: str | None = None,
    ) -> None:
        """``certfile`` (PEM chain, its key too unless ``keyfile``): serve HTTPS; ``client_ca_file``: mTLS."""
        if certfile is None and (keyfile or client_ca_file):
            raise ValueError("keyfile and client_ca_file need certfile")
        self.app = make_upstream(app) if isinstance(app, str) else app
        self._tls = (
            _TLS(certfile=certfile, keyfile=keyfile, client_ca_file=client_ca_file) if certfile else None
        )
        self.host = host
        self._requested_port = port
        self._loop_name = loop
        self._startup_timeout = startup_timeout
        self._port: int | None = None
        self._thread: threading.Thread | None = None
        self._server: _Server | None = None
        self._socket: socket.socket | None = None
        self._failure: BaseException | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the upstream server is not running; call start() first")
        return self._port

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (``https://`` with TLS), without a trailing slash."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self._tls else 'http'}://{host}:{self.port}"

    @property
    def script(self) -> FaultScript:
        return self.app.script

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, oldest first (a snapshot)."""
        return self.app.journal.requests

    @property
    def disconnects(self) -> int:
        """How many clients went away mid-response."""
        return self.app.journal.disconnects

    def wait_for_requests(self, count: int, timeout: float = 2.0) -> list[RecordedRequest]:
        return self.app.journal.wait_for_requests(count, timeout)

    def wait_for_disconnects(self, count: int, timeout: float = 2.0) -> int:
        return self.app.journal.wait_for_disconnects(count, timeout)

    def reset(self) -> None:
        """Clear the script, the recorded requests and the disconnect count."""
        self.app.script.clear()
        self.app.journal.clear()

    def start(self) -> Self:
        """Serve in a background thread; returns once the port accepts connections."""
        if self._thread is not None:
            raise RuntimeError("the upstream server is already running")
        sock = _bind(self.host, self._requested_port)
        config = _config(self.app, self._loop_name, quiet_logs=True, tls=self._tls)
        server = _Server(config, self.app)
        self._socket, self._server, self._failure = sock, server, None
        self._port = int(sock.getsockname()[1])
        self._thread = threading.Thread(
            target=self._run,
            args=(server, sock, config),
            name=f"upstream-{self.app.protocol}-{self._port}",
            daemon=True,
        )
        self._thread.start()
        try:
            self._await_ready(server)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving, dropping responses in progress; idempotent."""
        thread, server = self._thread, self._server
        if thread is None or server is None:
            return
        server.should_exit = True  # uvicorn polls it every 0.1 s
        thread.join(timeout)
        if thread.is_alive():
            server.force_exit = True
            thread.join(timeout)
        if self._socket is not None:
            self._socket.close()
        self._thread = self._server = self._socket = None
        self._port = None
        if thread.is_alive():
            raise RuntimeError(f"the upstream server thread did not stop within {2 * timeout}s")

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        return await asyncio.to_thread(self.start)

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        await asyncio.to_thread(self.stop)

    def _run(self, server: _Server, sock: socket.socket, config: uvicorn.Config) -> None:
        try:
            with asyncio.Runner(loop_factory=config.get_loop_factory()) as runner:
                runner.run(server.serve(sockets=[sock]))
        except BaseException as exc:  # uvicorn exits with SystemExit on startup failure
            self._failure = exc

    def _await_ready(self, server: _Server) -> None:
        deadline = time.monotonic() + self._startup_timeout
        while not server.started:
            if self._thread is None or not self._thread.is_alive():
                raise RuntimeError(f"the upstream server failed to start: {self._failure!r}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the upstream server did not start within {self._startup_timeout}s")
            time.sleep(0.002)
        while True:
            try:
                with socket.create_connection((self.host, self.port), timeout=1.0):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.002)


def main(argv: Sequence[str] | None = None) -> int:
    """Serve one fake upstream in the foreground until interrupted."""
    parser = argparse.ArgumentParser(
        prog="python -m interlace.testing.server", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--protocol", choices=PROTOCOLS, default="openai")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000, help="0 picks a free port")
    parser.add_argument("--loop", choices=("auto", "asyncio", "uvloop"), default="auto")
    parser.add_argument(
        "--fault", default=None, help="a fault directive for every model request, e.g. latency_ms=50"
    )
    parser.add_argument("--certfile", default=None, help="serve HTTPS with this PEM certificate chain")
    parser.add_argument("--keyfile", default=None, help="the certificate's PEM key (if not in --certfile)")
    parser.add_argument("--client-ca-file", default=None, help="require client certificates from this CA")
    args = parser.parse_args(argv)
    if args.certfile is None and (args.keyfile or args.client_ca_file):
        parser.error("--keyfile and --client-ca-file need --certfile")
    tls = (
        _TLS(certfile=args.certfile, keyfile=args.keyfile, client_ca_file=args.client_ca_file)
        if args.certfile
        else None
    )
    default = NORMAL
    if args.fault:
        directive = args.fault if args.fault.startswith(DIRECTIVE_PREFIX) else DIRECTIVE_PREFIX + args.fault
        try:
            default = parse_fault_directive(directive) or NORMAL
        except FaultDirectiveError as exc:
            parser.error(str(exc))
    app = make_upstream(args.protocol, default_fault=default)
    app.journal = RequestJournal(limit=0)  # nobody reads it here: count, keep nothing
    sock = _bind(args.host, args.port)
    host = f"[{args.host}]" if ":" in args.host else args.host
    scheme = "https" if tls else "http"
    sys.stderr.write(f"interlace {args.protocol} upstream on {scheme}://{host}:{sock.getsockname()[1]}\n")
    sys.stderr.flush()
    server = _Server(_config(app, args.loop, quiet_logs=False, tls=tls), app)
    with contextlib.suppress(KeyboardInterrupt):
        server.run(sockets=[sock])
    sock.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
