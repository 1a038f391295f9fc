"""The serving socket's acceptor: every waiting connection in one turn of a uvloop event loop."""

from __future__ import annotations

import asyncio
import errno
import socket
from typing import TYPE_CHECKING

import uvloop

from interlace.cli.accept import BatchAcceptor

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

WAITING = 200


class _Counted(asyncio.Protocol):
    def __init__(self, made: list[asyncio.BaseTransport]) -> None:
        self.made = made

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.made.append(transport)


def _on_uvloop(test: Callable[[], Awaitable[None]]) -> None:
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(test())


def _listening() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    return sock


def _connect_all(address: tuple[str, int]) -> list[socket.socket]:
    # the kernel completes each handshake itself: they wait in the accept queue
    return [socket.create_connection(address) for _ in range(WAITING)]


def test_every_waiting_connection_is_accepted_within_a_few_loop_turns() -> None:
    async def scenario() -> None:
        made: list[asyncio.BaseTransport] = []
        with _listening() as sock:
            acceptor = BatchAcceptor(sock, lambda: _Counted(made))
            clients = _connect_all(sock.getsockname())
            try:
                # uvloop's own server accepts one connection per turn: 6 turns would have made 6
                for _ in range(6):
                    await asyncio.sleep(0)
                assert len(made) == WAITING
            finally:
                acceptor.close()
                await acceptor.wait_closed()
                for transport in made:
                    transport.close()
                for client in clients:
                    client.close()

    _on_uvloop(scenario)


def test_a_closed_acceptor_accepts_nothing_more() -> None:
    async def scenario() -> None:
        made: list[asyncio.BaseTransport] = []
        with _listening() as sock:
            acceptor = BatchAcceptor(sock, lambda: _Counted(made))
            acceptor.close()
            await acceptor.wait_closed()
            with socket.create_connection(sock.getsockname()):
                await asyncio.sleep(0.05)
                assert made == []
            acceptor.close()  # closing twice is harmless

    _on_uvloop(scenario)


class _OutOfFiles(socket.socket):
    """A listening socket whose first accept fails as a process out of file descriptors does."""

    failed = False

    def accept(self) -> tuple[socket.socket, object]:
        if not self.failed:
            self.failed = True
            raise OSError(errno.EMFILE, "Too many open files")
        return super().accept()


def test_running_out_of_file_descriptors_pauses_accepting_then_it_resumes() -> None:
    async def scenario() -> None:
        made: list[asyncio.BaseTransport] = []
        with _OutOfFiles() as sock:
            sock.bind(("127.0.0.1", 0))
            sock.listen(16)
            acceptor = BatchAcceptor(sock, lambda: _Counted(made))
            with socket.create_connection(sock.getsockname()):
                for _ in range(6):
                    await asyncio.sleep(0)
                assert sock.failed
                assert made == []  # backing off, not spinning on the error
                await asyncio.sleep(0.3)
                assert len(made) == 1
            acceptor.close()
            await acceptor.wait_closed()
            for transport in made:
                transport.close()

    _on_uvloop(scenario)
