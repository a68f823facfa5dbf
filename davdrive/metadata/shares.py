"""Queries of the ``share`` table family: a recipient's mounts, an owner's shares, where a
shared node lives in its owner's tree."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, literal, select, update
from sqlalchemy.engine import Connection

from davdrive.metadata.schema import Node, Share, User


@dataclass(frozen=True)
class ShareRow:
    """One share as stored."""

    id: int
    owner_id: int
    node_id: int
    recipient_id: int
    perms: int
    mount_path: str
    created_at: float


_COLUMNS = (
    Share.id,
    Share.owner_id,
    Share.node_id,
    Share.recipient_id,
    Share.perms,
    Share.mount_path,
    Share.created_at,
)

_BY_RECIPIENT = select(*_COLUMNS).where(Share.recipient_id == bindparam("uid"))
_BY_OWNER = select(*_COLUMNS).where(Share.owner_id == bindparam("uid"))
_BY_ID = select(*_COLUMNS).where(Share.id == bindparam("sid"))


def _rows(rows: Any) -> list[ShareRow]:
    return [ShareRow(*r) for r in rows]


def mounts_of(conn: Connection, recipient_id: int) -> list[ShareRow]:
    """The shares an account received (one indexed read; an account has few)."""
    return _rows(conn.execute(_BY_RECIPIENT, {"uid": recipient_id}))


def shares_by(conn: Connection, owner_id: int) -> list[ShareRow]:
    """The shares an account gave."""
    return _rows(conn.execute(_BY_OWNER, {"uid": owner_id}))


def share_by_id(conn: Connection, share_id: int) -> ShareRow | None:
    row = conn.execute(_BY_ID, {"sid": share_id}).first()
    return ShareRow(*row) if row is not None else None


def _ancestors_query() -> Any:
    up = (
        select(
            Node.id,
            Node.parent_id,
            Node.name,
            Node.trashed_at,
            Node.user_id,
            literal(0).label("depth"),
        )
        .where(Node.id == bindparam("nid"))
        .cte("up", recursive=True)
    )
    step = select(
        Node.id, Node.parent_id, Node.name, Node.trashed_at, Node.user_id, up.c.depth + 1
    ).where(Node.id == up.c.parent_id)
    up = up.union_all(step)
    return select(up.c.id, up.c.parent_id, up.c.name, up.c.trashed_at, up.c.user_id).order_by(
        up.c.depth.desc()
    )


_ANCESTORS = _ancestors_query()


@dataclass(frozen=True)
class NodePlace:
    """Where a node lives: its owner, its path in the owner's tree, and whether it and every
    folder above it are live (not in the trash)."""

    owner_id: int
    path: str
    live: bool
    ancestry: tuple[int, ...]  # node ids from the root down to the node itself


def node_place(conn: Connection, node_id: int) -> NodePlace | None:
    """The place of ``node_id`` (one recursive statement); None if there is no such node."""
    rows = conn.execute(_ANCESTORS, {"nid": node_id}).all()
    if not rows:
        return None
    names = [r.name for r in rows if r.parent_id is not None]
    live = all(r.trashed_at is None for r in rows)
    return NodePlace(rows[0].user_id, "/" + "/".join(names), live, tuple(r.id for r in rows))


_BUMP_SEQ = (
    update(User)
    .where(User.id == bindparam("uid"))
    .values(change_seq=User.change_seq + 1)
    .returning(User.change_seq)
)


def bump_seq(conn: Connection, user_id: int) -> int | None:
    """Take the next journal position of an account (row-locked until the commit)."""
    return conn.scalar(_BUMP_SEQ, {"uid": user_id})


__all__ = [
    "NodePlace",
    "ShareRow",
    "bump_seq",
    "mounts_of",
    "node_place",
    "share_by_id",
    "shares_by",
]
