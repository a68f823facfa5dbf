"""Portable INSERT ... ON CONFLICT for SQLite and PostgreSQL."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from sqlalchemy import case, func

from davdrive.metadata.fast_reads import prepared
from davdrive.metadata.schema import Block


def _insert(dialect: str) -> Any:
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


@lru_cache(maxsize=4)
def upsert_inline(dialect: str) -> Any:
    """INSERT a block row with ``inline_data`` RETURNING its id; on a (user_id, hash) clash keep
    the row, but give it these bytes (and make it whole again) when it holds none, and touch
    ``last_access`` as every commit that adopts a row does (garbage collection's cutoff)."""
    stmt = _insert(dialect)(Block)
    return prepared(
        stmt.on_conflict_do_update(
            index_elements=["user_id", "hash"],
            set_={
                "inline_data": func.coalesce(Block.inline_data, stmt.excluded.inline_data),
                "tier": case((Block.inline_data.is_(None), "hot"), else_=Block.tier),
                "last_access": stmt.excluded.last_access,
            },
        ).returning(Block.id)
    )


@lru_cache(maxsize=4)
def upsert_blocks(dialect: str, lost: str) -> Any:
    """INSERT block rows for objects just stored, RETURNING (hash, id) for each; a row the
    account already has is kept (a ``lost`` one is whole again: its object was just stored)."""
    stmt = _insert(dialect)(Block)
    return stmt.on_conflict_do_update(
        index_elements=["user_id", "hash"],
        set_={
            "tier": case((Block.tier == lost, "hot"), else_=Block.tier),
            "last_access": stmt.excluded.last_access,
        },
    ).returning(Block.hash, Block.id)
