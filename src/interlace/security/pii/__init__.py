"""Reversible PII and secret masking (or blocking) of prompts, streamed answers included.

- :mod:`~interlace.security.pii.policy`: the admission policy (:class:`PiiPolicy`) and its hold;
- :mod:`~interlace.security.pii.detector`: presidio's pattern recognisers plus secret recognisers,
  offline (imported only when a policy is configured);
- :mod:`~interlace.security.pii.masker`: placeholders and the request's value ⇄ placeholder mapping;
- :mod:`~interlace.security.pii.restore`: restoring answers and streams, split placeholders included.
"""

from interlace.security.pii.masker import PLACEHOLDER, Masker
from interlace.security.pii.policy import PiiHold, PiiPolicy, Rule
from interlace.security.pii.restore import StreamRestorer, restore_answer, restore_stream

__all__ = [
    "PLACEHOLDER",
    "Masker",
    "PiiHold",
    "PiiPolicy",
    "Rule",
    "StreamRestorer",
    "restore_answer",
    "restore_stream",
]
