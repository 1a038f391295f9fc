"""Signed webhooks for jobs: the outbox, Standard Webhooks signing, target checks and delivery."""

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
