"""What the audit log keeps of a request: a :class:`RequestRecord` as an audit entry's body.

The body holds who (principal kind and id, tenant, team, subject), when (``time``, RFC 3339 UTC with
microseconds), what (endpoint, operation, requested and served model, deployment, provider), what the
admission policies decided (``decisions``), and how it ended (status, error code, tokens, cost in
whole nano-dollars, duration in milliseconds). Content follows ``audit.content``:

* ``hash`` (the default): ``prompt_sha256`` and ``completion_sha256`` — proof of what was sent and
  answered, without keeping it;
* ``full``: ``prompt`` (the messages or inputs as sorted-key JSON text) and ``completion``;
* ``none``: no content at all.

Every body gets an ``entry_id`` of its own (32 random hex digits): the writer skips one it already
appended, so replaying a spool twice never logs a request twice (request ids come from clients and
need not be unique).
The body has no floats (see :func:`interlace.security.audit.chain.canonical`); ``seq`` and ``alg``
are added when it is chained.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

import orjson

from interlace.core.ids import sortable_hex
from interlace.observability.cost import usd_to_nanos
from interlace.security.audit.chain import content_digest

if TYPE_CHECKING:
    from interlace.observability.record import RequestRecord

__all__ = ["ContentMode", "audit_body", "format_time"]

ContentMode = Literal["hash", "full", "none"]


def format_time(timestamp: float) -> str:
    """``time.time()`` as RFC 3339 UTC with microseconds: ``2026-11-27T11:11:01.123456Z``."""
    moment = datetime.fromtimestamp(timestamp, UTC)
    if moment.year < 1000:  # noqa: PLR2004 - isoformat pads the year, strftime does not
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return moment.isoformat(timespec="microseconds")[:26] + "Z"


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


def audit_body(record: RequestRecord, content: ContentMode = "hash") -> dict[str, Any]:
    """The record as an audit entry body (not yet chained: no ``seq``, ``alg``)."""
    kind = record.principal_kind or ("key" if record.api_key_id else "anonymous")
    body: dict[str, Any] = {
        "entry_id": sortable_hex(128),
        "time": format_time(float(record.started_at)),
        "request_id": record.request_id,
        "trace_id": record.trace_id,
        "principal_kind": kind,
        "principal_id": record.api_key_id or (kind if kind == "anonymous" else None),
        "tenant": record.tenant,
        "team": record.team,
        "subject": record.subject,
        "endpoint": record.endpoint,
        "operation": record.operation,
        "requested_model": record.requested_model,
        "served_model": record.served_model,
        "deployment": record.deployment,
        "provider": record.provider,
        "decisions": [str(decision) for decision in record.decisions],
        "status": _int(record.status),
        "error_code": record.error_code,
        "prompt_tokens": _int(record.usage.prompt_tokens),
        "completion_tokens": _int(record.usage.completion_tokens),
        "tokens_estimated": bool(record.usage.estimated),
        "cost_nanos": usd_to_nanos(float(record.cost_usd)) if record.cost_usd else 0,
        "duration_ms": round(float(record.duration_s) * 1000),
        "stream": bool(record.stream),
        "partial": bool(record.partial),
        "shadow": bool(record.shadow),
        "content": content,
    }
    if content == "hash":
        body["prompt_sha256"] = record.prompt_sha256 or content_digest(record.prompt)
        body["completion_sha256"] = record.completion_sha256 or content_digest(record.completion)
    elif content == "full":
        prompt = record.prompt
        body["prompt"] = (
            None if prompt is None else orjson.dumps(prompt, option=orjson.OPT_SORT_KEYS).decode()
        )
        body["completion"] = record.completion
    return body
