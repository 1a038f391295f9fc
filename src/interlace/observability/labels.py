"""Metric label values, bounded by configuration: never a raw user id, API key or free-form string.

Every label value a :class:`~interlace.observability.metrics.Metrics` writes comes from here:

- a model is a configured alias, else ``other`` (a client asking for 10,000 made-up names adds one
  series, not 10,000); ``none`` when the request failed before it named one;
- a deployment is a configured deployment name (``alias/index``), else ``other``; ``none`` when no
  deployment answered;
- a status is its class (``2xx`` … ``5xx``);
- an error code is one of :data:`KNOWN_ERROR_CODES` (the codes Interlace itself answers with), else
  ``other`` — an upstream's own error code passed through to the client never becomes a label.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = [
    "KNOWN_ERROR_CODES",
    "NONE",
    "OPERATIONS",
    "OTHER",
    "LabelPolicy",
    "operation_of",
    "status_class",
]

OTHER: Final = "other"
"""Any value outside the configured or known set."""
NONE: Final = "none"
"""No value (no model named yet, no deployment reached)."""

OPERATIONS: Final = frozenset({"chat", "embeddings", "classify", "infer", "function"})

_OPERATION_PATHS: Final = (
    ("/v1/chat/", "chat"),
    ("/v1/messages", "chat"),
    ("/v1/embeddings", "embeddings"),
    ("/v1/classify", "classify"),
    ("/v2/", "infer"),
)

KNOWN_ERROR_CODES: Final = frozenset(
    {
        # the default codes of interlace.core.errors
        "invalid_config",
        "invalid_request",
        "request_too_large",
        "method_not_allowed",
        "context_length_exceeded",
        "content_policy_violation",
        "invalid_api_key",
        "permission_denied",
        "not_found",
        "model_not_found",
        "unsupported_operation",
        "not_ready",
        "capacity_exceeded",
        "upstream_error",
        "rate_limit_exceeded",
        "upstream_timeout",
        "upstream_unavailable",
        "upstream_protocol_error",
        "upstream_rejected",
        "stream_interrupted",
        "internal_error",
        # specific codes the gateway raises
        "invalid_json",
        "invalid_value",
        "connect_timeout",
        "first_byte_timeout",
        "first_token_timeout",
        "idle_timeout",
        "total_timeout",
        "upstream_misconfigured",
        "no_matching_deployment",
        "deployments_unavailable",
        # the gateway's recording of a request the client abandoned
        "client_disconnected",
        # AI functions (interlace.functions)
        "function_not_found",
        "function_output_invalid",
        "invalid_function_input",
        "template_error",
        "prompt_too_large",
        # authentication (interlace.security.authn) and the key store
        "missing_api_key",
        "malformed_api_key",
        "unknown_api_key",
        "revoked_api_key",
        "expired_api_key",
        "database_unavailable",
    }
)

_STATUS_CLASSES: Final = ("1xx", "2xx", "3xx", "4xx", "5xx")


def operation_of(path: str) -> str:
    """The operation a request path asks for (a request refused before its route); ``other`` if none."""
    for prefix, operation in _OPERATION_PATHS:
        if path.startswith(prefix):
            return operation
    return OTHER


def status_class(status: int) -> str:
    """``2xx`` for 200, ``4xx`` for 499, ``other`` outside 100-599."""
    index = status // 100 - 1
    return _STATUS_CLASSES[index] if 0 <= index < len(_STATUS_CLASSES) else OTHER


class LabelPolicy:
    """Maps a record's free-form values onto the bounded label sets of one configuration."""

    __slots__ = ("_deployments", "_models")

    def __init__(self, *, models: Iterable[str], deployments: Iterable[str]) -> None:
        self._models = frozenset(models)
        self._deployments = frozenset(deployments)

    def model(self, name: str | None) -> str:
        if name is None:
            return NONE
        return name if name in self._models else OTHER

    def deployment(self, name: str | None) -> str:
        if name is None:
            return NONE
        return name if name in self._deployments else OTHER

    @staticmethod
    def error_code(code: str | None) -> str:
        if code is None:
            return NONE
        return code if code in KNOWN_ERROR_CODES else OTHER

    @staticmethod
    def operation(name: str) -> str:
        return name if name in OPERATIONS else OTHER
