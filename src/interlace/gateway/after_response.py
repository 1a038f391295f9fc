"""Work a request leaves for after its response is written.

Recording an answered request feeds the metrics, the request log, the event and audit logs' queues
and the settlement of its quota reservations: ~40 µs that need not delay the answer. A route
:func:`defer`\\ s such work on the request's ASGI scope, and the gateway's outermost middleware
(:class:`~interlace.gateway.middleware.request_id.RequestIdMiddleware`) calls :func:`run_deferred`
once the app has returned — the response has been written by then — whether it returned or raised.
The work runs in the request's own task, before the server reads the connection's next request, so a
client that sends its next request after reading this answer finds it done.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Callable

    from starlette.types import Scope

__all__ = ["AFTER_RESPONSE_SCOPE_KEY", "defer", "run_deferred"]

AFTER_RESPONSE_SCOPE_KEY: Final = "interlace.after_response"
"""The ASGI scope key of the request's deferred work (a list of callables)."""


def defer(scope: Scope, work: Callable[[], None]) -> None:
    """Run ``work`` (which must not raise) once the request's response has been written."""
    scope.setdefault(AFTER_RESPONSE_SCOPE_KEY, []).append(work)


def run_deferred(scope: Scope) -> None:
    """Run the request's deferred work, in the order it was deferred (once)."""
    for work in scope.pop(AFTER_RESPONSE_SCOPE_KEY, ()):
        work()
