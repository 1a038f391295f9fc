"""The one error tree of Interlace.

Every error the runtime raises on purpose is an :class:`InterlaceError`. HTTP-facing errors carry a
class-level ``status_code``, an OpenAI-style ``type`` and a stable ``code``; the gateway encodes them
as ``{"error": {"message", "type", "param", "code"}}``. Third-party exceptions (aiohttp, provider
SDKs, the YAML parser) are translated into this tree once, at the adapter boundary.

    InterlaceError
    ├── ConfigError                   configuration is invalid (file, line, what to write instead)
    ├── RequestError                  400  the client's request is wrong (names the field)
    │   ├── PayloadTooLarge           413
    │   ├── MethodNotAllowed          405
    │   ├── ContextWindowExceeded     400  input does not fit the model's context window
    │   └── ContentPolicyViolation    400  the provider refused on content policy
    ├── AuthenticationError           401
    ├── PermissionDenied              403
    ├── NotFound                      404
    │   ├── ModelNotFound             404  lists the available models
    │   └── FunctionNotFound          404  lists the available AI functions (and versions)
    ├── Conflict                      409  the resource is not in a state that allows it (a finished job)
    ├── IdempotencyConflict           422  an Idempotency-Key reused with a different request body
    ├── MessageRejected               422  a flow step or sink refused a message for good: dead-letter it
    ├── UnsupportedOperation          400  the model cannot do what was asked (e.g. chat on minilm)
    ├── RateLimitExceeded             429  a key, tenant or model rpm/tpm limit (Retry-After, x-ratelimit-*)
    │   └── BudgetExceeded            429  insufficient_quota: a key's or tenant's hard budget is spent
    ├── ServiceUnavailable            503  the gateway itself is not ready (model still loading)
    │   ├── CapacityExceeded          503  every candidate's bulkhead is full (with Retry-After)
    │   └── QuotaStoreUnavailable     503  the quota store failed and on_store_error is 'closed'
    └── UpstreamError                 502  an upstream failed in a way that is not the client's fault
        ├── UpstreamRateLimited       429  passed through with its Retry-After
        ├── UpstreamTimeout           504  connect, first byte or total deadline passed
        ├── UpstreamUnavailable       502  connection refused / reset before a response
        ├── UpstreamProtocolError     502  malformed body, wrong content type
        ├── UpstreamRejected          4xx  the upstream rejected the request (its status is passed through)
        ├── StreamInterrupted         502  a stream ended without its terminator or broke mid-way
        └── FunctionOutputInvalid     502  an AI function's output stayed invalid after its re-asks
                                           (carries the last raw output and the violations)
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any, ClassVar, Self

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "AuthenticationError",
    "BudgetExceeded",
    "CapacityExceeded",
    "ConfigError",
    "Conflict",
    "ContentPolicyViolation",
    "ContextWindowExceeded",
    "FunctionNotFound",
    "FunctionOutputInvalid",
    "IdempotencyConflict",
    "InterlaceError",
    "MessageRejected",
    "MethodNotAllowed",
    "ModelNotFound",
    "NotFound",
    "PayloadTooLarge",
    "PermissionDenied",
    "QuotaStoreUnavailable",
    "RateLimitExceeded",
    "RequestError",
    "ServiceUnavailable",
    "StreamInterrupted",
    "UnsupportedOperation",
    "UpstreamError",
    "UpstreamProtocolError",
    "UpstreamRateLimited",
    "UpstreamRejected",
    "UpstreamTimeout",
    "UpstreamUnavailable",
]


class InterlaceError(Exception):
    """Root of every error Interlace raises on purpose."""

    status_code: ClassVar[int] = 500
    error_type: ClassVar[str] = "server_error"
    default_code: ClassVar[str] = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code or self.default_code
        self.headers: dict[str, str] = dict(headers or {})

    @property
    def status(self) -> int:
        """The HTTP status this error is answered with (instances may refine the class default)."""
        return self.status_code

    def with_message(self, message: str) -> Self:
        """The same error (class, status, code, headers) with another message."""
        clone = copy.copy(self)
        clone.message = message
        clone.args = (message,)
        clone.headers = dict(self.headers)
        return clone

    def to_openai(self) -> dict[str, Any]:
        """The OpenAI-style error body."""
        return {
            "error": {
                "message": self.message,
                "type": self.error_type,
                "param": self.param,
                "code": self.code,
            }
        }


class ConfigError(InterlaceError):
    """The configuration is invalid. ``str()`` reads ``file:line: problem — fix``."""

    error_type = "configuration_error"
    default_code = "invalid_config"

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None) -> None:
        where = file or "<config>"
        if line is not None:
            where = f"{where}:{line}"
        super().__init__(f"{where}: {message}")
        self.file = file
        self.line = line


class RequestError(InterlaceError):
    status_code = 400
    error_type = "invalid_request_error"
    default_code = "invalid_request"


class PayloadTooLarge(RequestError):
    status_code = 413
    default_code = "request_too_large"


class MethodNotAllowed(RequestError):
    status_code = 405
    default_code = "method_not_allowed"


class ContextWindowExceeded(RequestError):
    default_code = "context_length_exceeded"


class ContentPolicyViolation(RequestError):
    default_code = "content_policy_violation"


class AuthenticationError(InterlaceError):
    status_code = 401
    error_type = "authentication_error"
    default_code = "invalid_api_key"


class PermissionDenied(InterlaceError):
    status_code = 403
    error_type = "permission_error"
    default_code = "permission_denied"


class NotFound(InterlaceError):
    status_code = 404
    error_type = "not_found_error"
    default_code = "not_found"


class ModelNotFound(NotFound):
    default_code = "model_not_found"

    def __init__(self, model: str, available: list[str], *, param: str = "model") -> None:
        listed = ", ".join(sorted(available)) or "none configured"
        super().__init__(
            f"The model '{model}' does not exist. Available models: {listed}.",
            param=param,
        )
        self.available = sorted(available)


class Conflict(InterlaceError):
    status_code = 409
    error_type = "invalid_request_error"
    default_code = "conflict"


class IdempotencyConflict(InterlaceError):
    status_code = 422
    error_type = "invalid_request_error"
    default_code = "idempotency_key_reused"


class MessageRejected(InterlaceError):
    """A flow step or sink refused one message for a reason retrying cannot cure (a filter's type error,
    no route matching, a sink's 4xx): the flow dead-letters it at once (:mod:`interlace.flows.engine`)."""

    status_code = 422
    error_type = "invalid_request_error"
    default_code = "message_rejected"


class FunctionNotFound(NotFound):
    default_code = "function_not_found"


class UnsupportedOperation(InterlaceError):
    status_code = 400
    error_type = "invalid_request_error"
    default_code = "unsupported_operation"


class RateLimitExceeded(InterlaceError):
    """A rate limit of the caller's key, its tenant or the model was reached (OpenAI's 429).

    As OpenAI does, the body's ``type`` names what ran out (``requests`` or ``tokens``) and ``code`` is
    ``rate_limit_exceeded``; ``Retry-After`` says when enough of the window frees up.
    """

    status_code = 429
    error_type = "rate_limit_error"
    default_code = "rate_limit_exceeded"

    def __init__(
        self, message: str, *, kind: str | None = None, retry_after: float | None = None, **kwargs: Any
    ) -> None:
        headers = dict(kwargs.pop("headers", None) or {})
        if retry_after is not None:
            headers["retry-after"] = _format_seconds(retry_after)
        super().__init__(message, headers=headers, **kwargs)
        self.kind = kind
        self.retry_after = retry_after

    def to_openai(self) -> dict[str, Any]:
        body = super().to_openai()
        if self.kind is not None:
            body["error"]["type"] = self.kind
        return body


class BudgetExceeded(RateLimitExceeded):
    """A hard budget is spent: OpenAI's ``insufficient_quota`` (429, type and code alike)."""

    error_type = "insufficient_quota"
    default_code = "insufficient_quota"


class ServiceUnavailable(InterlaceError):
    status_code = 503
    error_type = "server_error"
    default_code = "not_ready"


class CapacityExceeded(ServiceUnavailable):
    default_code = "capacity_exceeded"


class QuotaStoreUnavailable(ServiceUnavailable):
    default_code = "quota_store_unavailable"


class UpstreamError(InterlaceError):
    status_code = 502
    error_type = "upstream_error"
    default_code = "upstream_error"

    #: Whether another attempt (same or another deployment) may succeed.
    retryable: ClassVar[bool] = True


class UpstreamRateLimited(UpstreamError):
    status_code = 429
    error_type = "rate_limit_error"
    default_code = "rate_limit_exceeded"

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        headers = dict(kwargs.pop("headers", None) or {})
        if retry_after is not None:
            headers["retry-after"] = _format_seconds(retry_after)
        super().__init__(message, headers=headers, **kwargs)
        self.retry_after = retry_after


class UpstreamTimeout(UpstreamError):
    status_code = 504
    error_type = "timeout_error"
    default_code = "upstream_timeout"


class UpstreamUnavailable(UpstreamError):
    default_code = "upstream_unavailable"


class UpstreamProtocolError(UpstreamError):
    default_code = "upstream_protocol_error"


class UpstreamRejected(UpstreamError):
    """The upstream answered 4xx for a reason that is the request's: its status is passed through."""

    error_type = "invalid_request_error"
    default_code = "upstream_rejected"
    retryable = False

    def __init__(self, message: str, *, upstream_status: int, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.upstream_status = upstream_status

    @property
    def status(self) -> int:
        return self.upstream_status


class StreamInterrupted(UpstreamError):
    default_code = "stream_interrupted"
    retryable = False


class FunctionOutputInvalid(UpstreamError):
    """The model's answer never matched the function's output schema, re-asks included.

    The body carries ``raw_output`` (the last answer, as the model wrote it) and ``violations``
    (``{"path", "message"}`` per schema error, or the JSON parse error), never the invalid data as output.
    """

    default_code = "function_output_invalid"
    retryable = False

    def __init__(
        self, message: str, *, raw_output: str, violations: list[dict[str, str]], attempts: int, **kwargs: Any
    ) -> None:
        super().__init__(message, **kwargs)
        self.raw_output = raw_output
        self.violations = violations
        self.attempts = attempts

    def to_openai(self) -> dict[str, Any]:
        body = super().to_openai()
        body["error"] |= {
            "raw_output": self.raw_output,
            "violations": self.violations,
            "attempts": self.attempts,
        }
        return body


def _format_seconds(seconds: float) -> str:
    whole = int(seconds)
    return str(whole if whole == seconds else whole + 1)
