"""Portable INSERT ... ON CONFLICT DO NOTHING for SQLite and PostgreSQL."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session


@lru_cache(maxsize=64)
def _statement(dialect: str, model: Any, keys: tuple[str, ...]) -> Any:
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(model).on_conflict_do_nothing(index_elements=list(keys))


def insert_ignore(
    session: Session | Connection, model: Any, rows: list[dict[str, Any]], keys: list[str]
) -> None:
    """Insert ``rows``, skipping those that collide on the unique ``keys``."""
    if not rows:
        return
    conn = session if isinstance(session, Connection) else session.connection()
    conn.execute(_statement(conn.dialect.name, model, tuple(keys)), rows)
