"""The quota configuration: where limits and budgets are written, and what is refused."""

from __future__ import annotations

import pytest

from interlace.config import parse_config
from interlace.core.errors import ConfigError

MODEL = "models:\n  echo:\n    deployments: [{provider: fake, model: echo}]\n"


def test_limits_and_budgets_are_read_from_models_tenants_and_quotas() -> None:
    config = parse_config(
        "quotas: {on_store_error: closed, default_output_tokens: 256}\n"
        "models:\n  echo:\n    limits: {rpm: 10, tpm: 1000}\n"
        "    deployments: [{provider: fake, model: echo}]\n"
        "tenants:\n  acme:\n    limits: {rpm: 5}\n    budget: {usd: 10, soft_usd: 8, period: day}\n",
        filename="q.yaml",
        environ={},
    )
    assert config.quotas.on_store_error == "closed"
    assert config.quotas.default_output_tokens == 256
    limits = config.models["echo"].limits
    assert limits is not None
    assert (limits.rpm, limits.tpm) == (10, 1000)
    tenant = config.tenants["acme"]
    assert tenant.limits is not None
    assert tenant.limits.rpm == 5
    assert tenant.budget is not None
    assert (tenant.budget.usd, tenant.budget.soft_usd, tenant.budget.period) == (10, 8, "day")


def test_the_defaults_fail_open_and_reserve_a_generous_output() -> None:
    config = parse_config(MODEL, filename="q.yaml", environ={})
    assert config.quotas.on_store_error == "open"
    assert config.quotas.default_output_tokens == 4096
    assert config.models["echo"].limits is None


@pytest.mark.parametrize(
    ("yaml", "says"),
    [
        ("quotas: {on_store_error: maybe}\n", "on_store_error"),
        ("tenants:\n  acme:\n    limits: {rpm: 0}\n", "rpm"),
        (
            "tenants:\n  acme:\n    budget: {usd: 5, soft_usd: 6}\n",
            "soft_usd (6.0) must not exceed usd (5.0)",
        ),
        ("tenants:\n  acme:\n    budget: {usd: 5, period: week}\n", "period"),
        ("tenants:\n  acme:\n    limits: {rph: 5}\n", "rph"),
    ],
)
def test_wrong_values_are_refused_with_their_place(yaml: str, says: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_config(MODEL + yaml, filename="q.yaml", environ={})
    assert says in str(error.value)
    assert "q.yaml:" in str(error.value)
