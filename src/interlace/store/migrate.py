"""``python -m interlace.store.migrate``: bring the state database to the head revision, then exit.

``interlace serve`` runs it as a child process when its database is behind (the first start, an
upgrade), so the serving process never holds Alembic, Mako and SQLAlchemy (~30 MiB of resident memory
for its whole life) for a one-off step. The database URL comes on stdin, never on the command line
(where ``ps`` would show its password). Exits 0 once the database is at head; otherwise 1, with the
reason as the last line on stderr.
"""

from __future__ import annotations

import asyncio
import sys

from interlace.core.errors import ConfigError
from interlace.store.database import Database

__all__ = ["main"]


async def _migrate(url: str) -> None:
    database = Database(url)
    try:
        await database.start()
    finally:
        await database.aclose()


def main() -> None:
    url = sys.stdin.readline().strip()
    try:
        asyncio.run(_migrate(url))
    except ConfigError as exc:
        sys.stderr.write(f"{exc}\n")
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
