"""An issuer's signing keys, fetched and cached: OIDC discovery, the JWK Set, rotation and outages.

::

    {issuer}/.well-known/openid-configuration ─▶ jwks_uri ─▶ JWK Set ─▶ KeySet (cached)

- The key set is fetched on first use (or by :meth:`IssuerKeys.prefetch` at start) and kept; after
  ``jwks_ttl`` seconds it is refreshed in the background while the cached keys keep verifying.
- A token naming a ``kid`` the cache does not know (the issuer rotated its keys) triggers one refetch,
  at most once per ``refetch_interval`` per issuer, so a flood of forged ``kid`` values cannot turn
  the gateway into a load generator against the identity provider.
- A failed fetch keeps the last good key set (an outage of the identity provider does not log
  anybody out); failures are retried no more often than ``refetch_interval``. Only while no key set
  was ever fetched is verification impossible: that is a 503, not the caller's fault.

Concurrent requests share one fetch (a lock; whoever waited uses its result). Fetches go through
aiohttp (:class:`HttpJson`), never a synchronous client on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

import aiohttp
import orjson

from interlace.core.errors import AuthenticationError, ServiceUnavailable
from interlace.security.oidc.keys import KeySet

if TYPE_CHECKING:
    from collections.abc import Callable

    from interlace.security.oidc.keys import SigningKey

__all__ = ["FetchError", "HttpJson", "IssuerKeys", "JsonFetcher", "discovery_url"]

log = logging.getLogger("interlace.security.oidc")

_MAX_DOCUMENT_BYTES = 1024 * 1024


class FetchError(Exception):
    """A discovery document or key set could not be fetched or read (kept inside this package)."""


class JsonFetcher(Protocol):
    """GETs a URL and decodes its JSON body; raises :class:`FetchError`."""

    async def __call__(self, url: str) -> Any: ...


class HttpJson:
    """The aiohttp session every issuer's fetches share; created on first use, closed by the verifier."""

    def __init__(self, *, timeout: float) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def __call__(self, url: str) -> Any:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout, headers={"accept": "application/json"}
            )
        try:
            async with self._session.get(url, allow_redirects=False) as response:
                body = await response.content.read(_MAX_DOCUMENT_BYTES + 1)
                if response.status != 200:  # noqa: PLR2004
                    raise FetchError(f"{url} answered HTTP {response.status}")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise FetchError(f"{url}: {type(exc).__name__}: {exc}".rstrip(": ")) from exc
        if len(body) > _MAX_DOCUMENT_BYTES:
            raise FetchError(f"{url} answered more than {_MAX_DOCUMENT_BYTES} bytes")
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise FetchError(f"{url} did not answer JSON: {exc}") from exc

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def discovery_url(issuer: str) -> str:
    """Where ``issuer`` publishes its OpenID Provider metadata."""
    return issuer.rstrip("/") + "/.well-known/openid-configuration"


class IssuerKeys:
    """The cached signing keys of one issuer."""

    def __init__(
        self,
        *,
        issuer: str,
        jwks_url: str | None,
        fetch: JsonFetcher,
        ttl: float,
        refetch_interval: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.issuer = issuer
        self._configured_jwks_url = jwks_url
        self._jwks_url = jwks_url
        self._fetch = fetch
        self._ttl = ttl
        self._refetch_interval = refetch_interval
        self._clock = clock
        self._keys: KeySet | None = None
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._generation = 0
        self.last_error: str | None = None
        self.fetches = 0
        """Fetch attempts of the key set so far (discovery not counted)."""
        self._lock = asyncio.Lock()
        self._background: asyncio.Task[None] | None = None

    @property
    def keys(self) -> KeySet | None:
        """The last good key set, ``None`` before the first successful fetch."""
        return self._keys

    @property
    def background_refresh(self) -> asyncio.Task[None] | None:
        """The refresh running in the background (the cached set went stale), if any."""
        return self._background

    async def prefetch(self) -> bool:
        """Fetch the key set now (at start); never raises. Whether a key set is now cached."""
        await self._refresh()
        return self._keys is not None

    async def signing_key(self, kid: str | None, alg: str) -> SigningKey:
        """The key that verifies a token with ``kid`` and ``alg``; 401 when there is none, 503 while
        the issuer's keys were never fetched."""
        keys = self._keys
        if keys is None:
            await self._refresh()
            keys = self._keys
            if keys is None:
                raise self._unavailable()
        elif self._stale():
            self._refresh_in_background()
        key = keys.find(kid, alg)
        if key is None and kid is not None and not keys.has_kid(kid) and await self._refresh():
            keys = self._keys or keys
            key = keys.find(kid, alg)
        if key is None:
            raise _no_key(keys, kid, alg)
        return key

    async def aclose(self) -> None:
        task, self._background = self._background, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _stale(self) -> bool:
        return self._fetched_at is not None and self._clock() - self._fetched_at >= self._ttl

    def _may_fetch(self) -> bool:
        return self._attempted_at is None or self._clock() - self._attempted_at >= self._refetch_interval

    def _refresh_in_background(self) -> None:
        if (self._background is None or self._background.done()) and self._may_fetch():
            self._background = asyncio.create_task(self._refresh_quietly(), name=f"jwks {self.issuer}")

    async def _refresh_quietly(self) -> None:
        try:
            await self._refresh()
        except Exception:  # a background refresh must never end in an unretrieved task error
            log.exception("refreshing the signing keys of %s failed", self.issuer)

    async def _refresh(self) -> bool:
        """Fetch the key set unless another caller just did or the rate limit says not yet.
        Whether a key set newer than the caller's is now cached."""
        generation = self._generation
        async with self._lock:
            if self._generation != generation:
                return True  # fetched while this caller waited for the lock
            if not self._may_fetch():
                return False
            self._attempted_at = self._clock()
            self.fetches += 1
            try:
                keys = await self._fetch_keys()
            except FetchError as exc:
                self.last_error = str(exc)
                self._jwks_url = self._configured_jwks_url  # rediscover next time: the uri may have moved
                kept = "keeping the last good key set" if self._keys is not None else "no key set yet"
                log.warning("could not fetch the signing keys of %s (%s): %s", self.issuer, kept, exc)
                return False
            self._keys, self._fetched_at, self.last_error = keys, self._clock(), None
            self._generation += 1
            log.info("fetched %d signing keys of %s", len(keys), self.issuer)
            return True

    async def _fetch_keys(self) -> KeySet:
        if self._jwks_url is None:
            self._jwks_url = await self._discover()
        document = await self._fetch(self._jwks_url)
        try:
            return KeySet.from_jwks(document, source=self._jwks_url)
        except ValueError as exc:
            raise FetchError(str(exc)) from exc

    async def _discover(self) -> str:
        url = discovery_url(self.issuer)
        metadata = await self._fetch(url)
        if not isinstance(metadata, dict):
            raise FetchError(f"{url} is not an OpenID Provider metadata object")
        if metadata.get("issuer") != self.issuer:
            raise FetchError(f"{url} names issuer {metadata.get('issuer')!r}, not {self.issuer!r}")
        jwks_uri = metadata.get("jwks_uri")
        if not isinstance(jwks_uri, str) or not _same_security(jwks_uri, self.issuer):
            raise FetchError(f"{url} has no usable jwks_uri ({jwks_uri!r})")
        return jwks_uri

    def _unavailable(self) -> ServiceUnavailable:
        wait = self._refetch_interval
        if self._attempted_at is not None:
            wait = max(1.0, self._attempted_at + self._refetch_interval - self._clock())
        return ServiceUnavailable(
            f"Tokens from '{self.issuer}' cannot be verified yet: its signing keys could not be "
            f"fetched ({self.last_error or 'not attempted'}).",
            code="identity_provider_unavailable",
            headers={"retry-after": str(math.ceil(wait))},
        )


def _same_security(url: str, issuer: str) -> bool:
    """A key set URL is https, or plain http only for an issuer that is itself plain http (loopback)."""
    scheme = urlsplit(url).scheme
    return scheme == "https" or (scheme == "http" and urlsplit(issuer).scheme == "http")


def _shown(kid: str) -> str:
    """A caller-chosen ``kid`` as quoted in an error: printable and short."""
    printable = "".join(ch if ch.isprintable() else "?" for ch in kid[:64])
    return printable + ("…" if len(kid) > 64 else "")  # noqa: PLR2004


def _no_key(keys: KeySet, kid: str | None, alg: str) -> AuthenticationError:
    if kid is None:
        return AuthenticationError(
            f"Invalid token: it names no signing key ('kid') and the issuer has no single {alg} key.",
            code="unknown_signing_key",
        )
    if keys.has_kid(kid):
        return AuthenticationError(
            f"Invalid token: its algorithm {alg} does not match the type of signing key '{_shown(kid)}'.",
            code="algorithm_mismatch",
        )
    return AuthenticationError(
        f"Invalid token: its signing key '{_shown(kid)}' is not one of the issuer's keys.",
        code="unknown_signing_key",
    )
