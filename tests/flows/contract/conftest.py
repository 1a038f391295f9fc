"""The contract suite's fixtures: ``pair`` (every connector pair with a source) and ``sink_pair``
(every pair with a sink), from :mod:`tests.support.connector_pairs` and
:mod:`tests.support.connector_pairs_local` and :mod:`tests.support.connector_pairs_kafka`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.support.connector_pairs import BROKERS, Builder, Pair
from tests.support.connector_pairs_kafka import KAFKA
from tests.support.connector_pairs_local import LOCAL

BUILDERS: dict[str, Builder] = {**BROKERS, **LOCAL, **KAFKA}


async def _built(name: str, tmp_path: Path) -> AsyncIterator[Pair]:
    builder = BUILDERS[name]
    builder.require()
    built = await builder.build(tmp_path)
    try:
        yield built
    finally:
        await built.cleanup()


@pytest.fixture(params=sorted(n for n, b in BUILDERS.items() if "source" in b.roles))
async def pair(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Pair]:
    async for built in _built(request.param, tmp_path):
        yield built


@pytest.fixture(params=sorted(n for n, b in BUILDERS.items() if "sink" in b.roles))
async def sink_pair(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Pair]:
    async for built in _built(request.param, tmp_path):
        yield built
