"""Where the authenticated caller lives on a request: the ASGI scope, set by the auth middleware."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from interlace.core.principal import ANONYMOUS, Principal

if TYPE_CHECKING:
    from starlette.types import Scope

__all__ = ["PRINCIPAL_SCOPE_KEY", "principal_of"]

PRINCIPAL_SCOPE_KEY: Final = "interlace.principal"


def principal_of(scope: Scope) -> Principal:
    """The request's caller; :data:`~interlace.core.principal.ANONYMOUS` on a gateway without auth."""
    principal = scope.get(PRINCIPAL_SCOPE_KEY)
    return principal if isinstance(principal, Principal) else ANONYMOUS
