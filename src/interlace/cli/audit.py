"""``interlace audit verify | export``: check the hash-chained audit log, and take it out as JSON lines.

``verify`` reads the chain of the database the configuration names, from entry 1, and then compares its
newest entry with the chain-head row; ``verify --file`` checks an export offline. Either prints the
head (sequence number and hash) to anchor outside the database — a truncated tail is detectable only
against such an anchor (``--anchor SEQ:HASH``) or the head row — and exits 1 at the first break, naming
its sequence number and kind (edited, deleted, reordered, inserted). Keyed chains (``audit.hmac_key``)
need the same key in the configuration to verify.

``export`` writes one entry a line with its chain fields (``seq``, ``alg``, ``prev_hash``, ``hash``).
An export without ``--tenant`` is a run of the chain and verifies as one; a tenant's export has gaps,
so verify it with ``--subset`` (each entry against its hash, links where entries are consecutive).
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass
from pathlib import Path  # noqa: TC003 - typer reads the annotations at runtime
from typing import IO, TYPE_CHECKING, Annotated, Any

import orjson
import typer
from rich.console import Console

from interlace.cli.options import ConfigOption, fail, load_settings
from interlace.cli.usage import database_for
from interlace.core.errors import ConfigError

if TYPE_CHECKING:
    from datetime import datetime

    from interlace.config.schema import Config
    from interlace.security.audit.chain import ChainRow, Verification
    from interlace.security.audit.store import AuditFilter

__all__ = ["audit_app"]

audit_app = typer.Typer(
    name="audit", help="The hash-chained audit log: verify it, export it.", no_args_is_help=True
)


@dataclass(frozen=True, slots=True)
class _Anchor:
    seq: int
    hash: str


@audit_app.command("verify")
def verify_command(
    config: ConfigOption = None,
    file: Annotated[
        Path | None, typer.Option("--file", "-f", help="Verify this export instead of the database.")
    ] = None,
    subset: Annotated[
        bool, typer.Option("--subset", help="The file is a filtered export (--tenant): gaps are expected.")
    ] = False,
    anchor: Annotated[
        str | None,
        typer.Option("--anchor", metavar="SEQ:HASH", help="A head recorded earlier: it must still be there."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as one JSON object.")] = False,
) -> None:
    """Check the audit chain; exit 1 at the first entry edited, deleted, reordered or inserted."""
    expected = _parse_anchor(anchor) if anchor else None
    try:
        settings = load_settings(config)
        key = settings.audit.key
        if file is not None:
            result = _verify_file(file, key, subset=subset, anchor=expected)
        else:
            result = asyncio.run(_verify_database(settings, key, expected))
    except ConfigError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot read {file}: {exc.strerror}")
    _report(result, keyed=key is not None, as_json=as_json)
    if not result.ok:
        raise typer.Exit(code=1)


@audit_app.command("export")
def export_command(
    config: ConfigOption = None,
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's entries.")] = None,
    since: Annotated[
        str | None, typer.Option(metavar="DATE", help="From this ISO date or date-time (UTC), included.")
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(metavar="DATE", help="Up to this ISO date (included) or date-time (excluded)."),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file (default: standard output).")
    ] = None,
) -> None:
    """Write audit entries as JSON lines, with their chain fields (verify with `audit verify --file`)."""
    from interlace.security.audit.store import ALL_TENANTS, AuditFilter  # noqa: PLC0415 - SQLAlchemy

    try:
        where = AuditFilter(
            tenant=tenant if tenant is not None else ALL_TENANTS,
            since=_bound("--since", since),
            until=_bound("--until", until, end=True),
        )
        settings = load_settings(config)
        if output is None:
            count = asyncio.run(_export(settings, where, sys.stdout.buffer))
            sys.stdout.flush()
        else:
            with output.open("wb") as sink:
                count = asyncio.run(_export(settings, where, sink))
    except ConfigError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot write {output}: {exc.strerror}")
    Console(stderr=True).print(f"exported {count:,} audit entries" + (f" to {output}" if output else ""))


def _bound(option: str, value: str | None, *, end: bool = False) -> datetime | None:
    from interlace.security.audit.store import parse_bound  # noqa: PLC0415

    if value is None:
        return None
    try:
        return parse_bound(value, end=end)
    except ValueError:
        fail(f"{option} must be an ISO date or date-time (2026-11-27, 2026-11-27T10:00:00Z), not {value!r}")


def _parse_anchor(value: str) -> _Anchor:
    seq, _, digest = value.partition(":")
    if not seq.isdigit() or len(digest) != len("0" * 64):
        fail(f"--anchor must be SEQ:HASH (a sequence number and a 64-digit hex hash), not {value!r}")
    return _Anchor(int(seq), digest.lower())


async def _export(settings: Config, where: AuditFilter, sink: IO[bytes]) -> int:
    from interlace.security.audit.store import export_line, rows  # noqa: PLC0415

    database = database_for(settings)
    await database.start()
    count = 0
    try:
        async for row in rows(database, where):
            sink.write(orjson.dumps(export_line(row), option=orjson.OPT_APPEND_NEWLINE))
            count += 1
    finally:
        await database.aclose()
    return count


async def _verify_database(settings: Config, key: bytes | None, anchor: _Anchor | None) -> Verification:
    from interlace.security.audit.store import rows, verify  # noqa: PLC0415

    database = database_for(settings)
    await database.start()
    try:
        result = await verify(database, key)
        if anchor is None or not result.ok:
            return result
        found: str | None = None
        async for row in rows(database, after=anchor.seq - 1, batch=1):
            found = row.hash if row.position == anchor.seq else None
            break
        return _against_anchor(result, anchor, found)
    finally:
        await database.aclose()


def _verify_file(path: Path, key: bytes | None, *, subset: bool, anchor: _Anchor | None) -> Verification:
    from interlace.security.audit.chain import ChainProblem, ChainVerifier, Verification  # noqa: PLC0415

    verifier = ChainVerifier(key, start=None, subset=subset)
    found: str | None = None
    unreadable: int | None = None
    with path.open("rb") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            row = _parse_line(line)
            if row is None:
                unreadable = number
                break
            if not verifier.feed(row):
                break
            if anchor is not None and row.seq == anchor.seq:
                found = row.hash
    result = verifier.finish()
    if result.ok and unreadable is not None:
        problem = ChainProblem(result.head_seq + 1, "edited", f"line {unreadable} is not a JSON object")
        return Verification(result.checked, result.head_seq, result.head_hash, problem, result.unkeyed)
    if anchor is None or not result.ok:
        return result
    return _against_anchor(result, anchor, found)


def _parse_line(line: bytes) -> ChainRow | None:
    from interlace.security.audit.store import line_row  # noqa: PLC0415

    try:
        value: Any = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    return line_row(value) if isinstance(value, dict) else None


def _against_anchor(result: Verification, anchor: _Anchor, found: str | None) -> Verification:
    from interlace.security.audit.chain import ChainProblem, Verification  # noqa: PLC0415

    problem: ChainProblem | None = None
    if found is None:
        problem = ChainProblem(
            anchor.seq, "deleted", f"the anchored entry {anchor.seq} is gone (the tail was cut)"
        )
    elif found != anchor.hash:
        problem = ChainProblem(anchor.seq, "edited", f"entry {anchor.seq}'s hash differs from the anchor")
    if problem is None:
        return result
    return Verification(result.checked, result.head_seq, result.head_hash, problem, result.unkeyed)


def _report(result: Verification, *, keyed: bool, as_json: bool) -> None:
    problem = result.problem
    if as_json:
        body: dict[str, Any] = {
            "ok": result.ok,
            "checked": result.checked,
            "head": {"seq": result.head_seq, "hash": result.head_hash},
            "unkeyed": result.unkeyed,
            "problem": None
            if problem is None
            else {"seq": problem.seq, "kind": problem.kind, "reason": problem.reason},
        }
        sys.stdout.write(orjson.dumps(body).decode() + "\n")
        return
    console = Console()
    if problem is not None:
        console.print(
            f"[bold red]✗[/] audit chain broken at entry {problem.seq}: {problem.kind} — {problem.reason}",
            highlight=False,
        )
    else:
        mode = "HMAC-SHA256" if keyed else "SHA-256 (no key: anchor the head outside the database)"
        console.print(f"[green]✓[/] audit chain intact: {result.checked:,} entries, {mode}", highlight=False)
        if result.unkeyed and keyed:
            console.print(f"  {result.unkeyed:,} early entries are unkeyed (written before the key was set)")
    console.print(f"  head: seq {result.head_seq} hash {result.head_hash}", highlight=False)
