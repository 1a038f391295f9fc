"""Work a request leaves for after its response is written.

Recording an answered request feeds the metrics, the request log, the event and audit logs' queues
and the settlement of its quota reservations: ~40 µs that need not delay the answer. The gateway's
outermost middleware (:class:`~interlace.gateway.middleware.request_id.RequestIdMiddleware`) opens a
list of deferred work on the request's ASGI scope (:func:`accept_deferred`) and calls
:func:`run_deferred` once the app has returned — the response has been written by then — whether it
returned or raised. The work runs in the request's own task, before the server reads the connection's
next request, so a client that sends its next request after reading this answer finds it done.

A scope nobody opened — a flow step's or a job's call, recorded without an HTTP response to wait
for — runs the work at once: :func:`defer` never leaves work behind that no one will run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Callable

    from starlette.types import Scope

__all__ = ["AFTER_RESPONSE_SCOPE_KEY", "accept_deferred", "defer", "run_deferred"]

AFTER_RESPONSE_SCOPE_KEY: Final = "interlace.after_response"
"""The ASGI scope key of the request's deferred work (a list of callables), once accepted."""


def accept_deferred(scope: Scope) -> None:
    """Let routes defer work on this request's scope; the caller must :func:`run_deferred` it."""
    scope[AFTER_RESPONSE_SCOPE_KEY] = []


def defer(scope: Scope, work: Callable[[], None]) -> None:
    """Run ``work`` (which must not raise) once the response has been written, or now when no one
    accepted deferred work for this scope."""
    pending = scope.get(AFTER_RESPONSE_SCOPE_KEY)
    if pending is None:
        work()
    else:
        pending.append(work)


def run_deferred(scope: Scope) -> None:
    """Run the request's deferred work, in the order it was deferred (once)."""
    for work in scope.pop(AFTER_RESPONSE_SCOPE_KEY, ()):
        work()
