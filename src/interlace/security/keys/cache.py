"""Every key in memory, so authentication never waits for the database.

The cache loads the whole ``api_keys`` table at start, then every ``refresh_interval`` seconds reloads
the rows written since its high-water mark (the newest ``updated_at`` it has seen, less
:data:`OVERLAP` so a write committed late is not missed), and the whole table every
:data:`FULL_RELOAD_EVERY` refreshes (clocks of other instances that run behind). Verifying a key is a
dict lookup and a hash compare.

A key id the cache does not know (one just created on another instance) may trigger one on-demand
lookup: at most ``lookups_per_second`` across all ids, one at a time per id, and an id found missing
is not looked up again for ``refresh_interval`` seconds — a flood of made-up ids cannot reach the
database.

When the database is down the last snapshot keeps serving: valid keys stay valid, revoked ones stay
revoked, unknown ones are rejected. The failure is logged once (and its recovery), and
:meth:`KeyCache.details` reports it for ``/readyz``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from interlace.core.errors import ServiceUnavailable
from interlace.security.keys.model import is_key_id
from interlace.store.database import is_database_error

if TYPE_CHECKING:
    from collections.abc import Callable

    from interlace.core.principal import Principal
    from interlace.security.keys.model import ApiKey
    from interlace.security.keys.store import KeyStore

__all__ = ["FULL_RELOAD_EVERY", "OVERLAP", "CachedKey", "KeyCache"]

log = logging.getLogger("interlace.security.keys")

OVERLAP: Final = timedelta(seconds=30)
"""Each incremental refresh re-reads the rows written this long before the newest one seen."""
FULL_RELOAD_EVERY: Final = 120
"""Every this many refreshes the whole table is read again."""
_MAX_MISSES: Final = 10_000


@dataclass(frozen=True, slots=True)
class CachedKey:
    key: ApiKey
    principal: Principal
    """Built once per load, handed to every request the key authenticates."""


class KeyCache:
    def __init__(
        self,
        store: KeyStore,
        *,
        refresh_interval: float = 5.0,
        lookups_per_second: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.refresh_interval = refresh_interval
        self._rate = lookups_per_second
        self._clock = clock
        self._keys: dict[str, CachedKey] = {}
        self._since: datetime | None = None
        self._refreshes = 0
        self._loaded_at: float | None = None
        self._error: str | None = None
        self._tokens = max(1.0, lookups_per_second)
        self._tokens_at = clock()
        self._misses: dict[str, float] = {}
        self._lookups: dict[str, asyncio.Task[CachedKey | None]] = {}
        self._task: asyncio.Task[None] | None = None

    # --- lifecycle ---
    async def start(self) -> None:
        """Load every key (a failure is logged, not raised), then refresh in the background."""
        await self.refresh()
        self._task = asyncio.create_task(self._run(), name="interlace-key-cache")

    async def aclose(self) -> None:
        tasks = [t for t in (self._task, *self._lookups.values()) if t is not None]
        for task in tasks:
            task.cancel()
        # their cancellations and failures are results here; a cancellation of the caller still propagates
        await asyncio.gather(*tasks, return_exceptions=True)
        self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_interval)
            await self.refresh()

    async def refresh(self) -> bool:
        """Reload the keys changed since the last refresh (all of them, now and then); False on failure."""
        since = self._since
        if since is not None and self._refreshes % FULL_RELOAD_EVERY != 0:
            since -= OVERLAP
        else:
            since = None
        try:
            keys = await self.store.changed_since(since)
        except Exception as exc:
            if not is_database_error(exc) and not isinstance(exc, RuntimeError):
                raise
            self._failed(exc)
            return False
        self._refreshes += 1
        for key in keys:
            self.put(key)
            if self._since is None or key.updated_at > self._since:
                self._since = key.updated_at
        if self._since is None:  # an empty table: later refreshes are incremental from now on
            self._since = datetime.now(UTC)
        self._loaded_at = self._clock()
        if self._error is not None:
            log.warning("API key cache: the database is back; %d keys loaded", len(self._keys))
            self._error = None
        return True

    def _failed(self, exc: BaseException) -> None:
        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".strip()
        if self._error is None:  # logged once per outage
            log.error(
                "API key cache: cannot refresh from the database (%s); serving the last snapshot "
                "of %d keys until it is back",
                reason,
                len(self._keys),
            )
        self._error = reason

    # --- reads ---
    def put(self, key: ApiKey) -> None:
        """Take ``key`` as it is now (a refresh, or a change made through this instance)."""
        current = self._keys.get(key.id)
        if current is None or key.updated_at >= current.key.updated_at:
            self._keys[key.id] = CachedKey(key, key.principal())
        self._misses.pop(key.id, None)

    def get(self, key_id: str) -> CachedKey | None:
        return self._keys.get(key_id)

    async def find(self, key_id: str) -> CachedKey | None:
        """The key from the snapshot, else from one rate-limited database lookup."""
        cached = self._keys.get(key_id)
        if cached is not None or not is_key_id(key_id):
            return cached
        now = self._clock()
        if self._misses.get(key_id, 0.0) > now:
            return None
        running = self._lookups.get(key_id)
        if running is None:
            if not self._take_token(now):
                return None
            running = asyncio.create_task(self._lookup(key_id))
            self._lookups[key_id] = running
            running.add_done_callback(lambda _: self._lookups.pop(key_id, None))
        return await asyncio.shield(running)

    async def _lookup(self, key_id: str) -> CachedKey | None:
        try:
            key = await self.store.get(key_id)
        except ServiceUnavailable:
            key = None
        if key is None:
            if len(self._misses) >= _MAX_MISSES:
                self._misses.clear()
            self._misses[key_id] = self._clock() + self.refresh_interval
            return None
        self.put(key)
        return self._keys[key_id]

    def _take_token(self, now: float) -> bool:
        capacity = max(1.0, self._rate)
        self._tokens = min(capacity, self._tokens + (now - self._tokens_at) * self._rate)
        self._tokens_at = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True

    # --- health ---
    @property
    def loaded(self) -> bool:
        """A snapshot was loaded at least once: keys can be verified."""
        return self._loaded_at is not None

    def details(self) -> dict[str, Any]:
        age = None if self._loaded_at is None else round(self._clock() - self._loaded_at, 1)
        return {"keys": len(self._keys), "snapshot_age_s": age, "error": self._error}
