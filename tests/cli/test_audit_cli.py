"""``interlace audit verify | export``: the chain checked in the database and offline, exports filtered."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import update
from tests.support.events import at, record
from typer.testing import CliRunner

from interlace.cli.main import app
from interlace.security.audit.entry import audit_body
from interlace.security.audit.store import append_chain
from interlace.store.audit_tables import audit_log
from interlace.store.database import Database, default_database_url

KEY = "an-audit-key-of-32-characters!!!"
ENV = {"COLUMNS": "200", "AUDIT_KEY": KEY}


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A configuration with a keyed audit log of 6 entries: tenants acme, globex, acme … on 3 days."""
    path = tmp_path / "interlace.yaml"
    path.write_text(f"state:\n  dir: {tmp_path / 'state'}\naudit:\n  hmac_key: ${{AUDIT_KEY}}\n")
    plan = [
        ("acme", "2026-11-20"),
        ("globex", "2026-11-20"),
        ("acme", "2026-11-21"),
        ("globex", "2026-11-21"),
        ("acme", "2026-11-22"),
        ("acme", "2026-11-22"),
    ]
    bodies = [audit_body(record(tenant=tenant, started_at=at(day))) for tenant, day in plan]
    _on_database(tmp_path, lambda database: append_chain(database, bodies, KEY.encode()))
    return path


def _on_database(tmp_path: Path, work: Any) -> None:
    async def run() -> None:
        database = Database(default_database_url(str(tmp_path / "state")))
        await database.start()
        try:
            await work(database)
        finally:
            await database.aclose()

    asyncio.run(run())


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, ["audit", *args], env=ENV)


def verified(*args: str) -> dict[str, Any]:
    result = invoke("verify", "--json", *args)
    body: dict[str, Any] = orjson.loads(result.stdout)
    assert result.exit_code == (0 if body["ok"] else 1)
    return body


def export(config: Path, target: Path, *options: str) -> list[dict[str, Any]]:
    result = invoke("export", "-c", str(config), "-o", str(target), *options)
    assert result.exit_code == 0, result.output
    return [orjson.loads(line) for line in target.read_bytes().splitlines()]


def write(target: Path, lines: list[dict[str, Any]]) -> Path:
    target.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    return target


def test_verify_reports_an_intact_chain_and_its_head(config: Path) -> None:
    result = invoke("verify", "-c", str(config))

    assert result.exit_code == 0, result.output
    assert "audit chain intact: 6 entries, HMAC-SHA256" in result.stdout
    body = verified("-c", str(config))
    assert body["head"]["seq"] == 6
    assert body["head"]["hash"] in result.stdout


def test_verify_names_an_edited_entry_in_the_database(config: Path, tmp_path: Path) -> None:
    async def tamper(database: Database) -> None:
        async with database.engine.begin() as connection:
            await connection.execute(update(audit_log).where(audit_log.c.seq == 3).values(tenant="globex"))
            row = (await connection.execute(audit_log.select().where(audit_log.c.seq == 3))).mappings().one()
            entry = {**row["entry"], "tenant": "globex"}
            await connection.execute(update(audit_log).where(audit_log.c.seq == 3).values(entry=entry))

    _on_database(tmp_path, tamper)
    result = invoke("verify", "-c", str(config))

    assert result.exit_code == 1
    assert "broken at entry 3: edited" in result.stdout


def test_an_export_verifies_offline(config: Path, tmp_path: Path) -> None:
    lines = export(config, tmp_path / "all.jsonl")

    assert [line["seq"] for line in lines] == [1, 2, 3, 4, 5, 6]
    assert {"prev_hash", "hash", "alg", "entry_id"} <= set(lines[0])
    body = verified("-c", str(config), "--file", str(tmp_path / "all.jsonl"))
    assert (body["ok"], body["checked"], body["head"]["seq"]) == (True, 6, 6)


@pytest.mark.parametrize(
    ("tamper", "kind", "seq"),
    [
        (lambda lines: [*lines[:3], {**lines[3], "status": 500}, *lines[4:]], "edited", 4),
        (lambda lines: [*lines[:3], *lines[4:]], "deleted", 4),
        (lambda lines: [*lines[:2], lines[3], lines[2], *lines[4:]], "reordered", 3),
        (lambda lines: [*lines[:4], lines[1], *lines[4:]], "inserted", 5),
    ],
    ids=["edited", "deleted", "reordered", "inserted"],
)
def test_a_tampered_export_is_caught(config: Path, tmp_path: Path, tamper: Any, kind: str, seq: int) -> None:
    lines = export(config, tmp_path / "all.jsonl")
    tampered = write(tmp_path / "tampered.jsonl", tamper(lines))

    body = verified("-c", str(config), "--file", str(tampered))

    assert body["problem"]["kind"] == kind
    assert body["problem"]["seq"] == seq


def test_a_cut_export_is_caught_only_against_an_anchor(config: Path, tmp_path: Path) -> None:
    lines = export(config, tmp_path / "all.jsonl")
    cut = write(tmp_path / "cut.jsonl", lines[:4])
    anchor = f"6:{lines[5]['hash']}"

    assert verified("-c", str(config), "--file", str(cut))["ok"]
    body = verified("-c", str(config), "--file", str(cut), "--anchor", anchor)
    assert (body["problem"]["kind"], body["problem"]["seq"]) == ("deleted", 6)
    assert verified("-c", str(config), "--anchor", anchor)["ok"]


def test_a_tenant_export_verifies_as_a_subset(config: Path, tmp_path: Path) -> None:
    lines = export(config, tmp_path / "acme.jsonl", "--tenant", "acme")

    assert [line["seq"] for line in lines] == [1, 3, 5, 6]
    assert {line["tenant"] for line in lines} == {"acme"}
    assert verified("-c", str(config), "--file", str(tmp_path / "acme.jsonl"), "--subset")["ok"]
    gaps = verified("-c", str(config), "--file", str(tmp_path / "acme.jsonl"))
    assert (gaps["problem"]["kind"], gaps["problem"]["seq"]) == ("deleted", 2)


def test_an_export_is_filtered_by_time(config: Path, tmp_path: Path) -> None:
    lines = export(config, tmp_path / "window.jsonl", "--since", "2026-11-21", "--until", "2026-11-21")

    assert [line["seq"] for line in lines] == [3, 4]
    assert verified("-c", str(config), "--file", str(tmp_path / "window.jsonl"))["ok"]


def test_a_keyed_chain_does_not_verify_with_another_key(config: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.yaml"
    other.write_text(config.read_text().replace("AUDIT_KEY", "OTHER_KEY"))

    result = CliRunner().invoke(
        app, ["audit", "verify", "-c", str(other)], env={**ENV, "OTHER_KEY": "x" * 32}
    )

    assert result.exit_code == 1
    assert "broken at entry 1: edited" in result.stdout


def test_bad_options_are_explained(config: Path, tmp_path: Path) -> None:
    since = invoke("export", "-c", str(config), "--since", "last week")
    anchor = invoke("verify", "-c", str(config), "--anchor", "six")
    missing = invoke("verify", "-c", str(config), "--file", str(tmp_path / "nope.jsonl"))

    assert (since.exit_code, anchor.exit_code, missing.exit_code) == (2, 2, 2)
    assert "--since must be an ISO date" in since.output
    assert "--anchor must be SEQ:HASH" in anchor.output
    assert "cannot read" in missing.output
