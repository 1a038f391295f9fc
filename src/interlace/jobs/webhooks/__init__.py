"""Signed webhooks for jobs: the outbox, Standard Webhooks signing, target checks and delivery.

The names below are imported on first use (the module's ``__getattr__``): the target policy and the
signing helpers must not import the SQLAlchemy stores (outbox, secrets, delivery) with them (see
:mod:`interlace.jobs.stores`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from interlace.core.lazy import lazy_attributes

if TYPE_CHECKING:
    from interlace.jobs.webhooks.delivery import Deliverer
    from interlace.jobs.webhooks.outbox import add_message, webhook_payload
    from interlace.jobs.webhooks.secret_store import WebhookSecrets
    from interlace.jobs.webhooks.signing import new_secret, sign, signed_headers
    from interlace.jobs.webhooks.targets import TargetPolicy

__all__ = [
    "Deliverer",
    "TargetPolicy",
    "WebhookSecrets",
    "add_message",
    "new_secret",
    "sign",
    "signed_headers",
    "webhook_payload",
]

__getattr__ = lazy_attributes(
    __name__,
    {
        "Deliverer": "interlace.jobs.webhooks.delivery",
        "TargetPolicy": "interlace.jobs.webhooks.targets",
        "WebhookSecrets": "interlace.jobs.webhooks.secret_store",
        "add_message": "interlace.jobs.webhooks.outbox",
        "new_secret": "interlace.jobs.webhooks.signing",
        "sign": "interlace.jobs.webhooks.signing",
        "signed_headers": "interlace.jobs.webhooks.signing",
        "webhook_payload": "interlace.jobs.webhooks.outbox",
    },
)
