"""The runtime owns the lifecycle: build everything from config, start, serve, stop.

Nothing here is global: a :class:`Runtime` is constructed from a :class:`Config` and passed down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING

from interlace.providers.registry import build_provider
from interlace.routing.router import Deployment, ModelRoute, Router
from interlace.store.database import Database, default_database_url

if TYPE_CHECKING:
    from interlace.config.schema import Config
    from interlace.core.provider import Provider
    from interlace.providers.local import SentenceEncoder

__all__ = ["Runtime"]

log = logging.getLogger("interlace.runtime")


class Runtime:
    def __init__(self, config: Config, *, config_source: str = "embedded default") -> None:
        self.config = config
        self.config_source = config_source
        self.started_at = int(time.time())
        self.database = Database(config.state.database_url or default_database_url(config.state.dir))
        self._encoders: dict[str, SentenceEncoder] = {}
        self._loading: list[asyncio.Task[None]] = []
        routes: dict[str, ModelRoute] = {}
        self.providers: list[Provider] = []
        for alias, model in config.models.items():
            deployments = []
            for index, deployment in enumerate(model.deployments):
                provider = build_provider(f"{alias}/{index}", deployment, encoders=self._encoder)
                self.providers.append(provider)
                deployments.append(Deployment(provider=provider, config=deployment))
            operations = frozenset().union(*(d.provider.operations for d in deployments))
            routes[alias] = ModelRoute(
                alias=alias,
                deployments=tuple(deployments),
                description=model.description,
                operations=operations,
            )
        self.router = Router(routes)

    def _encoder(self, model: str) -> SentenceEncoder:
        from interlace.providers.local import build_encoder  # noqa: PLC0415 - torch only when used

        key = model.removeprefix("sentence-transformers/")
        if key not in self._encoders:
            self._encoders[key] = build_encoder(model, self.config.local)
        return self._encoders[key]

    async def start(self, *, wait_for_models: bool = False) -> None:
        """Open the store, start every provider; local models load in the background unless asked."""
        await self.database.start()
        await asyncio.gather(*(p.start() for p in self.providers))
        self._loading = [asyncio.create_task(self._load(name, e)) for name, e in self._encoders.items()]
        if wait_for_models:
            await asyncio.gather(*self._loading)

    async def _load(self, name: str, encoder: SentenceEncoder) -> None:
        began = time.perf_counter()
        await encoder.start()
        log.info("local model %s loaded in %.1fs", name, time.perf_counter() - began)

    async def stop(self) -> None:
        for task in self._loading:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await asyncio.gather(*(p.aclose() for p in self.providers), return_exceptions=True)
        await asyncio.gather(*(e.aclose() for e in self._encoders.values()), return_exceptions=True)
        await self.database.aclose()

    async def readiness(self) -> dict[str, bool]:
        checks = {"config": True, "database": await self.database.ping()}
        for name, encoder in self._encoders.items():
            checks[f"local_model:{name}"] = encoder.ready
        return checks
