"""The record of one finished request: what every observability sink (metrics, logs, event log) reads.

The gateway produces exactly one :class:`RequestRecord` per request when its answer is complete — after
the last byte of a stream, or when it failed — and hands it to the runtime's observers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from interlace.core.ids import sortable_hex

__all__ = ["AttemptOutcome", "RequestRecord", "Usage"]


@dataclass(slots=True, kw_only=True)
class Usage:
    """Token counts of one answer (OpenAI's usage, normalised)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    """Of ``prompt_tokens``, those served from the provider's prompt cache."""
    reasoning_tokens: int = 0
    """Of ``completion_tokens``, those spent on hidden reasoning."""
    estimated: bool = False
    """True when the provider reported nothing and the gateway counted."""

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @classmethod
    def from_openai(cls, usage: dict[str, Any] | None) -> Usage:
        if not usage:
            return cls()
        prompt_details = usage.get("prompt_tokens_details") or {}
        completion_details = usage.get("completion_tokens_details") or {}
        return cls(
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            cached_tokens=int(prompt_details.get("cached_tokens") or 0),
            reasoning_tokens=int(completion_details.get("reasoning_tokens") or 0),
            estimated=bool(usage.get("estimated")),
        )


@dataclass(slots=True, kw_only=True)
class RequestRecord:
    request_id: str
    operation: str
    """``chat``, ``embeddings``, ``classify``, ``infer`` (``/v1/messages`` is ``chat``)."""
    endpoint: str
    started_at: float
    """Wall-clock time the request arrived (``time.time()``)."""
    duration_s: float
    status: int
    """The HTTP status answered. A stream that ended with an error event has that error's status (its
    response line said 200); a request the client abandoned before its answer was complete has 499."""
    error_code: str | None = None
    trace_id: str | None = None
    api_key_id: str | None = None
    tenant: str | None = None
    requested_model: str | None = None
    served_model: str | None = None
    deployment: str | None = None
    provider: str | None = None
    upstream_model: str | None = None
    stream: bool = False
    partial: bool = False
    """A stream that ended before its answer was complete: billed for what was produced."""
    recovered: int = 0
    """How many times a cut stream was continued on another attempt."""
    attempts: int = 0
    fallback: bool = False
    rule: str | None = None
    usage: Usage = field(default_factory=Usage)
    cost_usd: float = 0.0
    ttft_s: float | None = None
    """Time to the first token of a stream."""
    chunk_gaps_s: list[float] = field(default_factory=list)
    """Gaps between consecutive chunks of a stream (bounded sample)."""
    decisions: list[str] = field(default_factory=list)
    """What the admission policies decided (:mod:`interlace.security.gate`), for the audit log."""
    confidence: float | None = None
    """From logprobs (mean token probability) or a classifier's top score, when available."""
    shadow: bool = False
    """A mirrored shadow call: never billed to the caller."""
    attempt_log: list[AttemptOutcome] = field(default_factory=list)
    """Each upstream attempt, in order (``attempts`` is how many there were)."""
    prompt: Any = None
    """The request's messages or inputs as received — only with ``observability.logs.include_content``."""
    completion: str | None = None
    """The answer's text — only with ``observability.logs.include_content``."""
    # --- audit (interlace.security.audit) ---
    principal_kind: str | None = None
    """``master``, ``key``, ``token`` or ``anonymous`` (:class:`~interlace.core.principal.Principal`)."""
    team: str | None = None
    subject: str | None = None
    """The end user of the credential, when it names one."""
    prompt_sha256: str | None = None
    """SHA-256 of the request's messages or inputs — only with ``audit.content: hash``."""
    completion_sha256: str | None = None
    """SHA-256 of the answer's text — only with ``audit.content: hash``."""
    # --- end audit ---
    event_id: str = field(default_factory=sortable_hex)
    """This record's own id, unique: the event log's key. ``request_id`` is a correlation id that a
    client may send (``x-request-id``) and reuse; two requests are two events however they are named."""


@dataclass(slots=True, frozen=True)
class AttemptOutcome:
    """One call to one deployment, as the metrics count it."""

    model: str
    """The alias whose deployment was called."""
    deployment: str
    outcome: str
    """``ok``, or the error code the attempt failed with."""
    seconds: float
