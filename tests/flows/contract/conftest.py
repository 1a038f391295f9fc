"""The contract suite's ``pair`` fixture: every source/sink pair of :mod:`tests.support.broker_pairs`."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from tests.support.broker_pairs import BUILDERS, Pair
from tests.support.brokers import require_broker


@pytest.fixture(params=sorted(BUILDERS))
async def pair(request: pytest.FixtureRequest) -> AsyncIterator[Pair]:
    service, build = BUILDERS[request.param]
    require_broker(service)
    built = await build()
    try:
        yield built
    finally:
        await built.cleanup()
