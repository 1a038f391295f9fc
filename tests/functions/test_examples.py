"""The example functions run offline on the local model: the CLI's golden cases and the gateway."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.support.gateway import GatewayServer
from typer.testing import CliRunner

from interlace.cli.main import app
from interlace.config import load_config

EXAMPLE = Path(__file__).parents[2] / "examples" / "functions.yaml"
WIDE = {"COLUMNS": "200"}


def test_list_and_show_need_no_model() -> None:
    listed = CliRunner().invoke(app, ["functions", "list", "--config", str(EXAMPLE)], env=WIDE)
    assert listed.exit_code == 0, listed.output
    assert "ticket_triage" in listed.output
    assert "duplicate_ticket" in listed.output
    shown = CliRunner().invoke(app, ["functions", "show", "ticket_triage", "--config", str(EXAMPLE)])
    assert shown.exit_code == 0, shown.output
    assert '"enum": [' in shown.output
    missing = CliRunner().invoke(app, ["functions", "show", "nope", "--config", str(EXAMPLE)])
    assert missing.exit_code == 2
    assert "does not exist" in missing.output


@pytest.mark.slow
def test_functions_test_runs_the_golden_cases_offline_and_reports_a_pass_rate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the in-process runtime keeps its state under ./.interlace
    result = CliRunner().invoke(
        app, ["functions", "test", "ticket_triage", "--config", str(EXAMPLE)], env=WIDE
    )
    assert result.exit_code == 0, result.output
    assert "passed 5/5 (100%)" in result.output
    assert "latency p50" in result.output
    assert "cost $" in result.output
    assert "✓ pass rate 100%" in result.output
    # an impossible bar fails the run: the exit code gates a release
    cases = tmp_path / "cases.yaml"
    cases.write_text(
        "- input: {subject: Refund, body: I was charged twice}\n  assertions: [{label: shipping}]\n"
    )
    failing = CliRunner().invoke(
        app,
        ["functions", "test", "ticket_triage", "--config", str(EXAMPLE), "--cases", str(cases)],
        env=WIDE,
    )
    assert failing.exit_code == 1, failing.output
    assert "passed 0/1 (0%)" in failing.output
    assert "label 'billing', expected 'shipping'" in failing.output


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    config = load_config(EXAMPLE, environ={})
    state = config.state.model_copy(update={"dir": str(tmp_path_factory.mktemp("state"))})
    with GatewayServer(config.model_copy(update={"state": state})) as server:
        yield server


@pytest.mark.slow
def test_the_examples_answer_over_http(gateway: GatewayServer) -> None:
    triage = httpx.post(
        f"{gateway.url}/v1/functions/ticket_triage",
        json={"subject": "Where is my parcel", "body": "The delivery is late"},
        timeout=60,
    )
    assert triage.status_code == 200, triage.text
    answer = triage.json()
    assert answer["output"]["label"] == "shipping"
    assert set(answer["output"]["scores"]) == {"billing", "shipping", "account", "app error"}
    assert answer["confidence"] == max(answer["output"]["scores"].values())
    assert answer["needs_review"] is False
    dup = httpx.post(
        f"{gateway.url}/v1/functions/duplicate_ticket/versions/1",
        json={"first": "I was billed twice this month", "second": "My card was charged two times"},
        timeout=60,
    )
    assert dup.status_code == 200, dup.text
    assert dup.json()["output"]["duplicate"] is True
    unknown = httpx.post(
        f"{gateway.url}/v1/functions/ticket_triage", json={"subject": "x", "body": "y", "x": 1}, timeout=10
    )
    assert unknown.status_code == 400
    assert unknown.json()["error"]["param"] == "/x"
