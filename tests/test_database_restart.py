"""A restart against a database already at the head revision does not load alembic (cold start)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from interlace.store.database import head_revisions

_START = textwrap.dedent(
    """
    import asyncio, sys
    from sqlalchemy import text
    from interlace.store.database import Database

    async def main():
        db = Database(sys.argv[1])
        await db.start()
        async with db.engine.connect() as conn:
            rows = (await conn.execute(text("SELECT version_num FROM alembic_version"))).all()
        await db.aclose()
        print(sorted(r[0] for r in rows), "alembic" in sys.modules)

    asyncio.run(main())
    """
)


def _start(url: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", _START, url], capture_output=True, text=True, timeout=120, check=True
    )
    return done.stdout.strip()


def test_first_start_migrates_and_a_restart_skips_alembic(tmp_path: Path) -> None:
    heads = head_revisions()
    assert len(heads) == 1
    url = f"sqlite+aiosqlite:///{tmp_path / 'state.db'}"
    assert _start(url) == f"{sorted(heads)} True"  # a new database: alembic migrates it to head
    assert _start(url) == f"{sorted(heads)} False"  # already at head: alembic is never imported


def test_a_database_behind_head_is_upgraded(tmp_path: Path) -> None:
    import sqlite3  # noqa: PLC0415

    path = tmp_path / "state.db"
    url = f"sqlite+aiosqlite:///{path}"
    _start(url)
    with sqlite3.connect(path) as conn:  # a revision this version does not know: not at head
        conn.execute("UPDATE alembic_version SET version_num = 'behind'")
    done = subprocess.run(
        [sys.executable, "-c", _START, url], capture_output=True, text=True, timeout=120, check=False
    )
    # alembic is asked to upgrade (and rejects the unknown revision): the fast path did not skip it
    assert done.returncode != 0
    assert "behind" in done.stderr


_SERVE_START = textwrap.dedent(
    """
    import asyncio, sqlite3, sys
    from interlace.store.database import Database

    async def main():
        db = Database(sys.argv[1], migrate_in_child=True)
        await db.start()
        await db.aclose()
        path = sys.argv[1].split("///", 1)[1]
        rows = sqlite3.connect(path).execute("SELECT version_num FROM alembic_version")
        versions = sorted(row[0] for row in rows)
        print(versions, sorted(m for m in ("alembic", "sqlalchemy") if m in sys.modules))

    asyncio.run(main())
    """
)


def test_a_server_migrates_in_a_child_and_never_loads_alembic_or_sqlalchemy(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'state.db'}"
    done = subprocess.run(
        [sys.executable, "-c", _SERVE_START, url], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == f"{sorted(head_revisions())} []"


def test_a_failed_migration_in_the_child_is_a_configuration_error(tmp_path: Path) -> None:
    import sqlite3  # noqa: PLC0415

    path = tmp_path / "state.db"
    url = f"sqlite+aiosqlite:///{path}"
    _start(url)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE alembic_version SET version_num = 'behind'")
    done = subprocess.run(
        [sys.executable, "-c", _SERVE_START, url], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert "ConfigError" in last
    assert "cannot migrate the state database: alembic.util.exc.CommandError: Can't locate revision" in last
    assert "'behind'" in last
