"""Fake upstream servers for tests and benchmarks: honest fakes of the upstream boundary.

Real HTTP servers on 127.0.0.1 speaking the OpenAI (and Azure OpenAI), Anthropic Messages and Open
Inference Protocol v2 wire protocols, with a deterministic echo model, per-request recording and
configurable latency and faults (:mod:`interlace.testing.faults` has the directive grammar). They fake
the upstreams, never Interlace itself: the gateway under test talks to them over real sockets.
"""

import importlib
from typing import TYPE_CHECKING, Any

from interlace.testing.anthropic_upstream import AnthropicUpstream
from interlace.testing.exchange import Exchange, RejectionError, Route, UpstreamApp
from interlace.testing.faults import (
    DIRECTIVE_PREFIX,
    NORMAL,
    Fault,
    FaultDirectiveError,
    FaultKind,
    FaultScript,
    RecordedRequest,
    RequestJournal,
    parse_fault_directive,
)
from interlace.testing.inference_v2_upstream import InferenceV2Upstream
from interlace.testing.openai_upstream import OpenAIUpstream
from interlace.testing.replies import ReplyScript

if TYPE_CHECKING:
    from interlace.testing.server import PROTOCOLS, UpstreamServer, make_upstream

__all__ = [
    "DIRECTIVE_PREFIX",
    "NORMAL",
    "PROTOCOLS",
    "AnthropicUpstream",
    "Exchange",
    "Fault",
    "FaultDirectiveError",
    "FaultKind",
    "FaultScript",
    "InferenceV2Upstream",
    "OpenAIUpstream",
    "RecordedRequest",
    "RejectionError",
    "ReplyScript",
    "RequestJournal",
    "Route",
    "UpstreamApp",
    "UpstreamServer",
    "make_upstream",
    "parse_fault_directive",
]

_FROM_SERVER = frozenset({"PROTOCOLS", "UpstreamServer", "make_upstream"})


def __getattr__(name: str) -> Any:
    # server.py loads on first use, so `python -m interlace.testing.server` does not import it twice.
    if name in _FROM_SERVER:
        return getattr(importlib.import_module("interlace.testing.server"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
