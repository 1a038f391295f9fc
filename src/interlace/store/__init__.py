"""Persistent state: SQLAlchemy 2 async over SQLite (embedded default) or Postgres, Alembic migrations."""

from interlace.store.database import Database, default_database_url

__all__ = ["Database", "default_database_url"]
