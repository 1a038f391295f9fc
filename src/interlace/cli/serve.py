"""``interlace serve``: bind, start the runtime, serve with uvicorn until interrupted.

The ``serve`` command of the command line parses its options and then replaces itself with
``python -m interlace.cli.serve`` (:func:`main`), so the process that serves holds the runtime and
not the command line: typer, click, Rich and pygments are ~7 MiB of a gateway's resident memory,
paid for as long as it runs. Its messages are plain lines on stderr (bold and colour on a terminal).

With ``server.tls`` it serves HTTPS (and, with ``tls.client_ca_file``, requires client certificates);
the certificate and key are loaded before the port is bound, so a bad file stops the start-up.

With ``workers`` > 1 the parent binds the port once and forks that many worker processes, each with
its own :class:`Runtime` and event loop, accepting on the shared socket (the kernel spreads the
connections). Workers start one after another — the first one migrates the database — and the parent
only supervises: SIGTERM or Ctrl-C stops every worker (each drains like a single server), and a worker
that dies stops the others, so a supervisor (systemd, Kubernetes) restarts the whole. State is shared
between workers only through ``redis`` when it is configured; without it, rate limits, budgets'
reservations and breakers are per process (a limit of 600 rpm allows up to N x 600).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import ipaddress
import logging
import os
import signal
import socket
import ssl
import sys
import time
from typing import TYPE_CHECKING, Any

import uvicorn

from interlace import __version__
from interlace.cli.accept import Server
from interlace.cli.allocator import map_large_blocks
from interlace.cli.collector import freeze_start_up, full_collections_held
from interlace.core.errors import ConfigError
from interlace.gateway.app import build_app
from interlace.observability.logs import configure_logging
from interlace.runtime import Runtime

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import TextIO

    from interlace.config.schema import Config
    from interlace.config.tls import ServerTLSConfig

__all__ = ["Say", "bind_socket", "main", "serve_forever", "tls_options"]


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m interlace.cli.serve [--config F] [--host H] [--port P] [--workers N]``.

    What ``interlace serve`` runs once it has parsed its options (see the module's notes); exits 2 with
    the message of a configuration error.
    """
    parser = argparse.ArgumentParser(prog="interlace serve", description="Start the gateway.")
    parser.add_argument("--config")
    parser.add_argument("--host")
    parser.add_argument("--port", type=int)
    parser.add_argument("--workers", type=int, default=1)
    options = parser.parse_args(argv)
    say = Say(sys.stderr)
    map_large_blocks()  # before the runtime allocates (and before workers fork: they inherit it)
    # what follows loads the runtime: no full garbage collection until it serves (cli.collector)
    with full_collections_held():
        from interlace.config.defaults import embedded_default  # noqa: PLC0415 - inside the hold
        from interlace.config.loader import load_config  # noqa: PLC0415

        try:
            settings = load_config(options.config) if options.config else embedded_default()
            source = options.config or "embedded default"
            serve_forever(
                settings,
                source=source,
                host=options.host,
                port=options.port,
                say=say,
                workers=options.workers,
            )
        except ConfigError as exc:
            say(f"{say.error('error:')} {exc}")
            raise SystemExit(2) from None


class Say:
    """A line for the operator on a stream: bold and colour when it is a terminal and NO_COLOR is unset."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._styled = stream.isatty() and not os.environ.get("NO_COLOR")

    def __call__(self, line: str) -> None:
        print(line, file=self._stream, flush=True)

    def _style(self, text: str, code: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self._styled else text

    def bold(self, text: str) -> str:
        return self._style(text, "1")

    def name(self, text: str) -> str:
        return self._style(text, "32")

    def address(self, text: str) -> str:
        return self._style(text, "36")

    def error(self, text: str) -> str:
        return self._style(text, "1;31")


def serve_forever(
    config: Config,
    *,
    source: str,
    host: str | None,
    port: int | None,
    say: Say,
    workers: int = 1,
) -> None:
    host = host or config.server.host
    port = config.server.port if port is None else port
    if (
        not _is_loopback(host)
        and not config.auth.enabled
        and not config.server.allow_unauthenticated_public_bind
    ):
        raise ConfigError(
            f"refusing to serve on {host} without authentication — set auth.master_key "
            "(e.g. `master_key: ${INTERLACE_MASTER_KEY}`) or auth.virtual_keys: true, bind 127.0.0.1, or set "
            "server.allow_unauthenticated_public_bind: true if this network is trusted",
            file=source if source != "embedded default" else None,
        )
    if workers < 1:
        raise ConfigError(f"--workers must be at least 1, not {workers}")
    tls = tls_options(config.server.tls, source=source)
    sock = bind_socket(host, port)
    if workers == 1:
        _worker(config, source, sock, host=host, tls=tls, say=say)
        return
    try:
        _supervise(
            workers,
            lambda ready: _worker(config, source, sock, host=host, tls=tls, say=say, ready=ready),
        )
    finally:
        sock.close()
    say("stopped")


def _worker(
    config: Config,
    source: str,
    sock: socket.socket,
    *,
    host: str,
    tls: dict[str, Any],
    say: Say,
    ready: Callable[[], None] | None = None,
) -> None:
    """One server process: its own Runtime and event loop on the (possibly shared) bound socket."""
    # every log line rendered in observability.logs.format (observability.log_format), off the event loop
    output = configure_logging(config.observability.logs)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # a database behind the code is migrated by a child process: this one never holds Alembic
    runtime = Runtime(config, config_source=source, migrate_in_child=True)
    bound_port = sock.getsockname()[1]
    scheme = "https" if tls else "http"
    url = f"{scheme}://{host if ':' not in host else f'[{host}]'}:{bound_port}"
    worker = f" · worker {os.getpid()}" if ready is not None else ""
    say(f"{say.bold(f'Interlace {__version__}')} · {source} · listening on {say.address(url)}{worker}")
    for alias, route in runtime.router.routes.items():
        say(f"  model {say.name(alias)} · {', '.join(sorted(route.operations))}")
    say(f"  OpenAI base URL {url}/v1 · Anthropic base URL {url}")
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runner.run(_serve(runtime, sock, host, bound_port, tls=tls, ready=ready))
    except KeyboardInterrupt:
        pass  # the interrupt uvicorn re-raises after its graceful shutdown (none when SIGINT was ignored)
    finally:
        signal.signal(signal.SIGTERM, previous)
        output.close()
    say("stopped")


_STOP_GRACE = 20.0


def _supervise(workers: int, run_worker: Callable[[Callable[[], None]], None]) -> None:
    """Fork ``workers`` processes one after another (each once the previous one is serving); wait.

    SIGTERM/SIGINT to the parent stop every worker with SIGTERM (SIGKILL after a grace period); a
    worker that exits on its own stops the others. The parent never starts an event loop or a thread,
    so forking is safe.
    """
    pids: list[int] = []
    stopping = False

    def stop(signum: int, frame: object) -> None:
        del signum, frame
        nonlocal stopping
        stopping = True
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        for _ in range(workers):
            if stopping:
                break
            read_fd, write_fd = os.pipe()
            pid = os.fork()
            if pid == 0:  # the worker
                os.close(read_fd)
                for sig, handler in previous.items():
                    signal.signal(sig, handler)
                code = 0
                try:
                    run_worker(functools.partial(_signal_ready, write_fd))
                except BaseException:  # reported; the worker exits non-zero
                    logging.getLogger(__name__).exception("worker %d failed", os.getpid())
                    code = 1
                finally:
                    os._exit(code)
            pids.append(pid)
            os.close(write_fd)
            with os.fdopen(read_fd, "rb") as pipe:
                started = pipe.read(1)  # b"" when the worker died before serving
            if not started and not stopping:
                raise ConfigError("a worker exited during start-up (see its error above)")
        _wait_any(pids)
    finally:
        stop(signal.SIGTERM, None)
        _reap(pids)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _signal_ready(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.write(fd, b"1")
        os.close(fd)


def _wait_any(pids: list[int]) -> None:
    """Block until one worker exits (then the caller stops the rest)."""
    while pids:
        try:
            pid, _ = os.wait()
        except ChildProcessError:
            return
        except InterruptedError:
            continue
        if pid in pids:
            pids.remove(pid)
            return


def _reap(pids: list[int]) -> None:
    deadline = time.monotonic() + _STOP_GRACE
    while pids:
        for pid in list(pids):
            with contextlib.suppress(ChildProcessError):
                done, _ = os.waitpid(pid, os.WNOHANG)
                if not done:
                    continue
            pids.remove(pid)
        if pids and time.monotonic() > deadline:
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            deadline = float("inf")
        time.sleep(0.05)


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM ends the server like Ctrl-C: drain, stop the runtime, exit 0."""
    del signum, frame
    raise KeyboardInterrupt


async def _serve(
    runtime: Runtime,
    sock: socket.socket,
    host: str,
    port: int,
    *,
    tls: dict[str, Any],
    ready: Callable[[], None] | None = None,
) -> None:
    await runtime.start()
    await runtime.database.record_instance(host=host, port=port, config_source=runtime.config_source)
    app = build_app(runtime)
    # start-up leaves ~100k long-lived objects (SQLAlchemy, pydantic, the app); moving them out
    # of the collector's generations keeps full collections from stalling every request in flight
    freeze_start_up()
    server = Server(
        uvicorn.Config(
            app,
            loop="none",
            http="httptools",
            lifespan="off",
            access_log=False,
            proxy_headers=False,  # nothing reads the client's address: don't rewrite it per request
            log_level="warning",
            log_config=None,  # uvicorn's records go to the root handler of configure_logging
            timeout_graceful_shutdown=10,
            **tls,
        )
    )
    if ready is not None:
        asyncio.get_running_loop().call_soon(ready)  # the previous worker serves: start the next one
    try:
        await server.serve(sockets=[sock])
    finally:
        await _stop_completely(runtime)


async def _stop_completely(runtime: Runtime) -> None:
    """``runtime.stop()`` to its end, even if this task is cancelled meanwhile, then the cancellation.

    uvicorn re-raises the SIGINT it caught once it has shut down; asyncio's runner turns that into a
    cancellation of this task, which would otherwise cut the runtime's stop short at its first await
    (queued events and audit entries then go to the spool instead of the database).
    """
    stopping = asyncio.ensure_future(runtime.stop())
    cancelled = False
    while not stopping.done():
        try:
            await asyncio.shield(stopping)
        except asyncio.CancelledError:
            cancelled = True
    if cancelled and not stopping.cancelled() and stopping.exception() is None:
        raise asyncio.CancelledError
    stopping.result()  # a failed stop is worth more than the cancellation


def tls_options(tls: ServerTLSConfig | None, *, source: str | None = None) -> dict[str, Any]:
    """uvicorn's ssl settings for ``server.tls`` (empty without it), after checking the files load."""
    if tls is None:
        return {}
    try:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(tls.cert_file, tls.key_file)
        if tls.client_ca_file is not None:
            context.load_verify_locations(cafile=tls.client_ca_file)
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(
            f"server.tls: cannot load {tls.cert_file} / {tls.key_file}"
            f"{f' / {tls.client_ca_file}' if tls.client_ca_file else ''}: {exc} — cert_file must be a PEM "
            "certificate chain and key_file its unencrypted PEM private key",
            file=source if source not in {None, "embedded default"} else None,
        ) from None
    return {
        "ssl_certfile": tls.cert_file,
        "ssl_keyfile": tls.key_file,
        "ssl_ca_certs": tls.client_ca_file,
        "ssl_cert_reqs": ssl.CERT_REQUIRED if tls.client_ca_file is not None else ssl.CERT_NONE,
    }


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop  # noqa: PLC0415 - optional speed-up
    except ImportError:
        return None
    return uvloop.new_event_loop


def bind_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"cannot bind {host}:{port} ({exc.strerror}) — is another server running there? "
            "Pass --port to choose another port"
        ) from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


if __name__ == "__main__":
    main()
