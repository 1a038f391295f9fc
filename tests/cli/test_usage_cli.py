"""``interlace usage`` prints the read model; ``interlace events replay`` rebuilds it (and drains spools)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.support.events import record
from typer.testing import CliRunner

from interlace.cli.main import app
from interlace.cli.usage import format_usd
from interlace.observability.events import EventLog, default_spool_dir, to_event
from interlace.observability.record import RequestRecord
from interlace.observability.spool import Spool
from interlace.store.database import Database, default_database_url

ENV = {"COLUMNS": "200"}
NOW = datetime.now(UTC).timestamp()


def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "interlace.yaml"
    path.write_text(f"state:\n  dir: {tmp_path / 'state'}\n")
    return path


def log_records(tmp_path: Path, records: list[RequestRecord]) -> None:
    async def write() -> None:
        state = str(tmp_path / "state")
        database = Database(default_database_url(state))
        await database.start()
        log = EventLog(database, spool_dir=default_spool_dir(state))
        for rec in records:
            log.observe(rec)
        await log.aclose()
        await database.aclose()

    asyncio.run(write())


def scripted() -> list[RequestRecord]:
    return [
        record(
            started_at=NOW,
            model="gpt",
            prompt=1000,
            cached=400,
            completion=500,
            reasoning=200,
            cost_usd=0.007,
        ),
        record(
            started_at=NOW,
            model="claude",
            api_key_id="key-2",
            prompt=10,
            completion=7,
            partial=True,
            estimated=True,
            cost_usd=0.000135,
        ),
        record(started_at=NOW - 86_400, model="gpt", status=502),
        record(started_at=NOW - 10 * 86_400, model="gpt", prompt=99, cost_usd=1.0),  # outside --days 3
        record(started_at=NOW, tenant="acme", model="gpt", prompt=5, cost_usd=2.5),
    ]


def test_usage_by_model(tmp_path: Path) -> None:
    log_records(tmp_path, scripted())
    result = CliRunner().invoke(
        app, ["usage", "--config", str(config_file(tmp_path)), "--days", "3", "--by", "model"], env=ENV
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "tenant (default)" in lines[0]
    assert "by model" in lines[0]
    claude = next(line for line in lines if "claude" in line)
    assert [cell.strip() for cell in claude.split("│")[1:-1]] == [
        "claude", "1", "0", "1", "10", "0", "7", "0", "$0.000135", "0 · $0.00",
    ]  # fmt: skip
    gpt = next(line for line in lines if "gpt" in line)
    assert [cell.strip() for cell in gpt.split("│")[1:-1]] == [
        "gpt", "2", "1", "0", "1,000", "400", "500", "200", "$0.007", "0 · $0.00",
    ]  # fmt: skip
    total = next(line for line in lines if "total" in line)
    assert [cell.strip() for cell in total.split("│")[1:-1]] == [
        "total", "3", "1", "1", "1,010", "400", "507", "200", "$0.007135", "0 · $0.00",
    ]  # fmt: skip


def test_usage_by_day_for_a_tenant_and_when_empty(tmp_path: Path) -> None:
    log_records(tmp_path, scripted())
    config = str(config_file(tmp_path))
    result = CliRunner().invoke(app, ["usage", "-c", config, "--tenant", "acme"], env=ENV)
    assert result.exit_code == 0, result.output
    today = datetime.now(UTC).date().isoformat()
    assert any(today in line and "$2.50" in line for line in result.output.splitlines()), result.output

    result = CliRunner().invoke(
        app, ["usage", "-c", config, "--tenant", "nobody", "--by", "api_key"], env=ENV
    )
    assert result.exit_code == 0, result.output
    assert "no requests recorded" in result.output

    result = CliRunner().invoke(app, ["usage", "-c", config, "--by", "tenant"], env=ENV)
    assert result.exit_code == 2
    assert "--by must be one of day, model, api_key" in result.output


def test_events_replay_drains_spools_and_rebuilds(tmp_path: Path) -> None:
    records = scripted()
    log_records(tmp_path, records[:3])
    spool = Spool(default_spool_dir(tmp_path / "state"))  # a gateway that stopped with the database down
    spool.append([to_event(rec) for rec in records[2:]])  # one of them already in the log
    spool.close()
    config = str(config_file(tmp_path))

    result = CliRunner().invoke(app, ["events", "replay", "--config", config], env=ENV)
    assert result.exit_code == 0, result.output
    assert "recovered 3 spooled events into the log" in result.output
    assert "rebuilt usage_daily from 5 events into 5 rows" in result.output

    result = CliRunner().invoke(app, ["events", "replay", "-c", config], env=ENV)
    assert result.exit_code == 0, result.output
    assert "recovered" not in result.output
    assert "rebuilt usage_daily from 5 events into 5 rows" in result.output

    days = CliRunner().invoke(app, ["usage", "-c", config, "--days", "30"], env=ENV)
    ten_days_ago = (datetime.now(UTC) - timedelta(days=10)).date().isoformat()
    assert ten_days_ago in days.output


def test_format_usd() -> None:
    assert format_usd(0) == "$0.00"
    assert format_usd(1_234_567) == "$0.001234567"
    assert format_usd(2_500_000_000) == "$2.50"
    assert format_usd(1_234_500_000_000) == "$1,234.50"
