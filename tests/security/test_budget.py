"""Budgets through the real app: worst case reserved, real cost settled, hard 429, soft alert, restarts."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.support.observe import Records
from tests.support.quotas import client, delete_prefix, new_prefix, require_redis, running

from interlace.config.quotas import BudgetPeriod
from interlace.core.principal import Limits, Principal
from interlace.observability.cost import usd_to_nanos
from interlace.runtime import Runtime
from interlace.security.quotas import Bucket
from interlace.security.quotas.periods import current_period

# 1000 USD per million input tokens, 2000 per million output: 0.001 and 0.002 USD a token
MODELS = """
models:
  echo:
    deployments: [{provider: fake, model: echo, price: {input: 1000, output: 2000}}]
tenants:
  acme:
    budget: {usd: 0.035, period: day}
"""
HELLO = {"model": "echo", "messages": [{"role": "user", "content": "hello world"}], "max_tokens": 10}
WORST = 0.023  # 3 estimated prompt tokens and 10 output tokens at the highest prices
COST = 0.008  # what the fake really uses: 2 prompt and 3 completion tokens


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    async with running(MODELS, tmp_path) as runtime:
        yield runtime


def key(ident: str, tenant: str | None = "t", **limits: Any) -> Principal:
    return Principal(kind="key", id=ident, tenant=tenant, limits=Limits(**limits))


async def spend(runtime: Runtime, scope: str, ident: str, period: BudgetPeriod = "month") -> tuple[int, int]:
    """``(spent or reserved, settled)`` of a budget, in nano-dollars."""
    name = f"budget:{scope}:{ident}:{current_period(period, time.time()).id}"
    return await runtime.quotas.store.used(Bucket(name, 1), int(time.time() * 1000))


async def calls(runtime: Runtime, http: httpx.AsyncClient, count: int) -> list[httpx.Response]:
    """``count`` requests one after another, each settled before the next."""
    answers = []
    for _ in range(count):
        answers.append(await http.post("/v1/chat/completions", json=HELLO))
        await runtime.gate.aclose()
    return answers


async def test_a_hard_budget_refuses_what_could_overspend_it(runtime: Runtime) -> None:
    async with client(runtime, key("ik_a", budget_usd=0.05)) as http:
        answers = await calls(runtime, http, 5)
    # spent after each: 0.008, 0.016, 0.024, 0.032; the 5th could cost 0.023 more: 0.055 > 0.05
    assert [a.status_code for a in answers] == [200, 200, 200, 200, 429]
    error = answers[4].json()["error"]
    assert error["type"] == error["code"] == "insufficient_quota"
    assert "key 'ik_a' has reached its budget of 0.05 USD this month" in error["message"]
    assert int(answers[4].headers["retry-after"]) > 0  # the month's end
    assert await spend(runtime, "key", "ik_a") == (usd_to_nanos(4 * COST),) * 2


async def test_a_tenant_budget_from_the_config(runtime: Runtime) -> None:
    async with (
        client(runtime, key("ik_b", tenant="acme")) as one,
        client(runtime, key("ik_c", "acme")) as two,
    ):
        assert (await calls(runtime, one, 1))[0].status_code == 200
        assert (await calls(runtime, two, 1))[0].status_code == 200
        refused = (await calls(runtime, one, 1))[0]  # 0.016 spent + 0.023 > 0.035
    assert refused.status_code == 429
    assert "tenant 'acme' has reached its budget of 0.04 USD this day" in refused.json()["error"]["message"]
    assert await spend(runtime, "tenant", "acme", "day") == (usd_to_nanos(2 * COST),) * 2


async def test_a_soft_budget_alerts_once_and_lets_requests_through(
    runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    records = Records()
    runtime.observers.add(records)
    caplog.set_level(logging.WARNING, logger="interlace.security.quotas")
    async with client(runtime, key("ik_d", soft_budget_usd=0.02)) as http:
        answers = await calls(runtime, http, 5)
        metrics = (await http.get("/metrics")).text
    assert all(a.status_code == 200 for a in answers)
    alerts = [r for r in caplog.records if "crossed its soft budget" in r.getMessage()]
    assert len(alerts) == 1  # the 3rd settlement took the spend from 0.016 to 0.024
    assert (
        "key 'ik_d' crossed its soft budget of 0.02 USD this month: 0.024000 USD spent"
        in alerts[0].getMessage()
    )
    assert 'interlace_budget_soft_limit_crossings_total{scope="key"} 1.0' in metrics
    noted = [any(d.startswith("budgets:soft_limit key") for d in r.decisions) for r in records.wait(5)]
    assert noted == [False, False, False, True, True]  # admitted once 0.024 was spent


async def test_a_budget_refusal_gives_back_the_rate_limit_reservation(runtime: Runtime) -> None:
    async with client(runtime, key("ik_e", rpm=2, budget_usd=0.01)) as http:
        answers = await calls(runtime, http, 3)
    assert [a.status_code for a in answers] == [429, 429, 429]  # never the rate limit
    assert all(a.json()["error"]["code"] == "insufficient_quota" for a in answers)
    assert "retry-after" not in answers[0].headers  # 0.023 can never fit in 0.01
    name = "rl:key:ik_e:requests"
    assert await runtime.quotas.store.used(Bucket(name, 2, 60_000), int(time.time() * 1000)) == (0, 0)


async def test_spend_survives_a_restart_without_redis(tmp_path: Path) -> None:
    principal = key("ik_f", budget_usd=0.05)
    async with running(MODELS, tmp_path) as first, client(first, principal) as http:
        assert [a.status_code for a in await calls(first, http, 3)] == [200, 200, 200]
    async with running(MODELS, tmp_path) as second, client(second, principal) as http:
        # 0.024 spent before the restart: one more fits (0.047), then 0.032 + 0.023 does not
        assert [a.status_code for a in await calls(second, http, 2)] == [200, 429]


async def test_concurrent_requests_on_two_gateways_never_overspend(tmp_path: Path) -> None:
    require_redis()
    prefix = new_prefix()
    shared = (
        f"redis: {{url: 'redis://127.0.0.1:6379/0', prefix: {prefix}}}\nquotas: {{store_timeout: 10}}\n"
        + MODELS
    )
    principal = key("ik_g", budget_usd=0.1)
    records = Records()
    try:
        async with (
            running(shared, tmp_path / "a") as one,
            running(shared, tmp_path / "b") as two,
            client(one, principal) as first,
            client(two, principal) as second,
        ):
            one.observers.add(records)
            two.observers.add(records)
            answers = await asyncio.gather(
                *(http.post("/v1/chat/completions", json=HELLO) for http in [first, second] * 30)
            )
            await one.gate.aclose()
            await two.gate.aclose()
            spent = await spend(one, "key", "ik_g")
    finally:
        delete_prefix(prefix)
    statuses = [a.status_code for a in answers]
    assert set(statuses) == {200, 429}
    billed = sum(usd_to_nanos(r.cost_usd) for r in records.wait(60) if r.status == 200)
    assert billed == statuses.count(200) * usd_to_nanos(COST)
    assert spent == (billed, billed)  # every cost settled, nothing left reserved
    assert billed <= usd_to_nanos(0.1)  # reservations are worst cases: never more than the budget
    assert statuses.count(200) >= 4  # at least as many as worst cases fit at once (4 x 0.023)
