"""``interlace shadow report``: the side-by-side table from real records in a real state database."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from interlace.cli.main import app
from interlace.routing.shadow import ShadowRecord, SideRecord
from interlace.store.database import Database, default_database_url
from interlace.store.shadow import ShadowRecorder

ENV = {"COLUMNS": "300"}


def write_config(tmp_path: Path) -> Path:
    config = tmp_path / "interlace.yaml"
    config.write_text(
        "models:\n"
        "  gpt:\n    shadow: {model: next, sample: 0.05}\n"
        "    deployments: [{provider: fake, model: echo}]\n"
        "  next:\n    deployments: [{provider: fake, model: echo}]\n"
        f"state:\n  dir: {tmp_path / 'state'}\n"
    )
    return config


def side(text: str, latency_ms: float, error: str | None = None) -> SideRecord:
    return SideRecord(
        deployment="d/0",
        text=text,
        finish=None if error else "stop",
        latency_ms=latency_ms,
        prompt_tokens=10,
        completion_tokens=5,
        error=error,
        cost_usd=None if error else 0.0025,
    )


async def store(
    state: Path, records: list[tuple[SideRecord, SideRecord, bool | None, float | None, float]]
) -> None:
    database = Database(default_database_url(str(state)))
    await database.start()
    now = datetime.now(UTC)
    try:
        recorder = ShadowRecorder(database)
        for i, (primary, shadow, exact, similarity, hours_ago) in enumerate(records):
            await recorder.record(
                ShadowRecord(
                    id=f"id{i}",
                    request_id=f"chatcmpl-{i}",
                    alias="gpt",
                    candidate="next",
                    created_at=now - timedelta(hours=hours_ago),
                    stream=False,
                    exact_match=exact,
                    similarity=similarity,
                    primary=primary,
                    shadow=shadow,
                )
            )
    finally:
        await database.aclose()


def test_no_records_says_how_to_get_some_and_creates_nothing(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    result = CliRunner().invoke(app, ["shadow", "report", "--config", str(config)], env=ENV)
    assert result.exit_code == 0, result.output
    assert "no shadow records yet — configure models.<alias>.shadow" in result.output
    assert "configured: gpt → next (5%)" in result.output
    assert not (tmp_path / "state").exists()  # reading a report never creates the database


def test_embedded_default_reads_dot_interlace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["shadow", "report", "--model", "minilm"], env=ENV)
    assert result.exit_code == 0, result.output
    assert "no shadow records yet — configure models.minilm.shadow" in result.output
    assert not (tmp_path / ".interlace").exists()


def test_report_prints_both_sides(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    asyncio.run(
        store(
            tmp_path / "state",
            [
                (side("a b", 100), side("a b", 300), True, 1.0, 0.5),
                (side("a b", 200), side("a c", 400), False, 0.5, 0.4),
                (side("a b", 300), side("", 900, error="upstream_timeout"), None, None, 0.3),
                (side("a b", 400), side("a b", 600), True, 1.0, 5.0),
            ],
        )
    )
    result = CliRunner().invoke(app, ["shadow", "report", "-c", str(config)], env=ENV)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "gpt → next" in out
    assert "4 mirrored" in out
    assert "primary · gpt" in out
    assert "shadow · next" in out
    assert "66.7% of 3 compared" in out  # exact agreement over the pairs both sides answered
    assert "0.833" in out  # mean token overlap
    assert "0.0% (0/4)" in out
    assert "25.0% (1/4)" in out
    assert "+25.0 pp" in out
    assert "200 ms" in out  # primary p50
    assert "600 ms" in out  # shadow p95 of the successful calls
    assert "$0.010000" in out
    assert "$0.007500 (3 priced)" in out

    recent = CliRunner().invoke(app, ["shadow", "report", "-c", str(config), "--since", "1"], env=ENV)
    assert recent.exit_code == 0, recent.output
    assert "3 mirrored" in recent.output

    other = CliRunner().invoke(app, ["shadow", "report", "-c", str(config), "--model", "other"], env=ENV)
    assert "no shadow records yet — configure models.other.shadow" in other.output


def test_bad_config_is_an_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "models:\n  m:\n    shadow: {modle: next}\n    deployments: [{provider: fake, model: e}]\n"
    )
    result = CliRunner().invoke(app, ["shadow", "report", "-c", str(bad)], env=ENV)
    assert result.exit_code == 2
    assert f"{bad}:3" in result.output
