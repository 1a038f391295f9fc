"""What every HTTP provider shares: one pooled upstream client per deployment, started and closed."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Protocol

from interlace.core.provider import Provider
from interlace.providers._http import UpstreamClient

if TYPE_CHECKING:
    from collections.abc import Mapping

    from interlace.config.schema import DeploymentConfig
    from interlace.core.errors import InterlaceError

__all__ = ["DeploymentErrorMapper", "HttpProvider"]


class DeploymentErrorMapper(Protocol):
    """A protocol's translation of an upstream error answer, given the deployment's name."""

    def __call__(self, name: str, status: int, body: bytes, headers: Mapping[str, str]) -> InterlaceError: ...


class HttpProvider(Provider):
    """A provider that reaches its deployment over HTTP through an :class:`UpstreamClient`."""

    def __init__(
        self,
        *,
        name: str,
        deployment: DeploymentConfig,
        base_url: str,
        headers: Mapping[str, str],
        error_mapper: DeploymentErrorMapper,
    ) -> None:
        super().__init__(name=name)
        self.upstream_model = deployment.model
        self.client = UpstreamClient(
            name=name,
            base_url=base_url,
            headers={**headers, **deployment.headers},
            timeouts=deployment.timeouts,
            max_connections=deployment.max_connections,
            error_mapper=functools.partial(error_mapper, name),
            tls=deployment.tls,
        )

    async def start(self) -> None:
        await self.client.start()

    async def aclose(self) -> None:
        await self.client.aclose()
