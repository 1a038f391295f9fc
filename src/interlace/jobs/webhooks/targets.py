"""Which callback URLs a job may name: no requests to arbitrary internal addresses.

A target's host is resolved and every address it resolves to is checked, not the name: an address
in a listed CIDR, or a host named in the list, is allowed; otherwise only public (globally routable)
addresses are, when ``allow_public`` is on. Private, loopback, link-local, multicast and reserved
addresses are refused unless listed. The check runs when the job is submitted (a 400 naming
``callback_url``) and again before every delivery, so a name re-pointed at an internal address later
is refused then.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from interlace.core.errors import RequestError

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["TargetPolicy"]

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class TargetPolicy:
    def __init__(self, allow: Sequence[str] = (), *, allow_public: bool = True) -> None:
        self.networks: list[_Network] = []
        self.hosts: set[str] = set()
        for entry in allow:
            try:
                self.networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                self.hosts.add(entry.lower().rstrip("."))
        self.allow_public = allow_public

    async def check(self, url: str, *, param: str = "callback_url") -> None:
        """Raise a 400 naming ``param`` unless ``url`` is an http(s) URL to an allowed target."""
        parts = urlsplit(url)
        host = (parts.hostname or "").lower().rstrip(".")
        if parts.scheme not in {"http", "https"} or not host:
            raise RequestError(f"'{url}' is not an http or https URL.", param=param, code="invalid_url")
        if parts.username or parts.password:
            raise RequestError("A callback URL must not carry credentials.", param=param, code="invalid_url")
        if host in self.hosts:
            return
        for address in await _resolve(host, parts.port, param):
            if not self._allowed(address):
                raise RequestError(
                    f"callback host '{host}' resolves to {address}, which is not an allowed target — "
                    "add the host or its network to jobs.webhooks.allow",
                    param=param,
                    code="callback_not_allowed",
                )

    def _allowed(self, address: _Address) -> bool:
        if any(address in network for network in self.networks):
            return True
        return self.allow_public and address.is_global and not address.is_multicast


async def _resolve(host: str, port: int | None, param: str) -> list[_Address]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port or 443, type=socket.SOCK_STREAM)
    except OSError:
        raise RequestError(
            f"callback host '{host}' does not resolve.", param=param, code="invalid_url"
        ) from None
    addresses: list[_Address] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        addresses.append(address)
    return addresses
