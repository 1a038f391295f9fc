"""Signed webhooks for jobs: the outbox, Standard Webhooks signing, target checks and delivery.

The names below are imported on first use (the module's ``__getattr__``): the target policy and the
signing helpers must not import the SQLAlchemy stores (outbox, secrets, delivery) with them (see
:mod:`interlace.jobs.stores`).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any, Final

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

_MODULES: Final = {
    "Deliverer": "delivery",
    "TargetPolicy": "targets",
    "WebhookSecrets": "secret_store",
    "add_message": "outbox",
    "new_secret": "signing",
    "sign": "signing",
    "signed_headers": "signing",
    "webhook_payload": "outbox",
}


def __getattr__(name: str) -> Any:
    if name not in _MODULES:
        msg = f"module {__name__!r} has no attribute {name!r}"
        raise AttributeError(msg)
    return getattr(import_module(f"{__name__}.{_MODULES[name]}"), name)
