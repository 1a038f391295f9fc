"""Callback targets: the resolved addresses are checked, not the name; private ones need listing."""

from __future__ import annotations

import pytest

from interlace.core.errors import RequestError
from interlace.jobs.webhooks.targets import TargetPolicy


async def test_a_name_that_resolves_to_loopback_is_refused_unless_listed() -> None:
    with pytest.raises(RequestError) as raised:
        await TargetPolicy().check("http://localhost:8080/hook")
    assert raised.value.param == "callback_url"
    assert raised.value.code == "callback_not_allowed"
    await TargetPolicy(["127.0.0.0/8", "::1"]).check("http://localhost:8080/hook")
    await TargetPolicy(["localhost"]).check("http://localhost:8080/hook")


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1/",
        "http://192.168.1.1/",
        "http://169.254.169.254/latest/meta-data",
        "http://[fe80::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://0.0.0.0/",
        "http://224.0.0.1/",
    ],
)
async def test_internal_addresses_are_refused(url: str) -> None:
    with pytest.raises(RequestError, match="not an allowed target"):
        await TargetPolicy().check(url)


async def test_public_addresses_are_allowed_unless_turned_off() -> None:
    await TargetPolicy().check("https://8.8.8.8/hook")
    with pytest.raises(RequestError):
        await TargetPolicy(allow_public=False).check("https://8.8.8.8/hook")
    await TargetPolicy(["8.8.8.0/24"], allow_public=False).check("https://8.8.8.8/hook")


@pytest.mark.parametrize("url", ["ftp://example.com/", "http:///x", "https://user:pw@example.com/", "nope"])
async def test_malformed_urls_are_refused(url: str) -> None:
    with pytest.raises(RequestError) as raised:
        await TargetPolicy().check(url)
    assert raised.value.code == "invalid_url"
