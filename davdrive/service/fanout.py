"""Journal rows for the recipients of shares: a change inside a shared node also lands in the
journal of every account it is shared with, at the path that account sees, in the same
transaction (DESIGN.md §3). The owner's write path pays nothing when the owner shares nothing
(``users.shares_out`` is read with the account row it already reads)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from davdrive.metadata.schema import Change, User
from davdrive.metadata.shares import bump_seq, node_place, shares_by
from davdrive.service.lookup import MAX_CHAIN, TOUCH_UP, find

_INSERT_CHANGE = insert(Change)
_CACHE = "fanout"  # Session.info / dict key: owner id -> [(share, base path)]


@dataclass(frozen=True)
class Echo:
    """One change as the owner's journal records it."""

    kind: str
    path: str
    from_path: str | None
    node_id: int | None
    version_id: int | None
    device_id: int | None
    is_dir: bool


def change_row(user_id: int, seq: int, c: Echo) -> dict[str, Any]:
    """The ``change`` row of ``c`` at ``seq`` of ``user_id``'s journal."""
    return {
        "user_id": user_id,
        "seq": seq,
        "node_id": c.node_id,
        "kind": c.kind,
        "path": c.path,
        "from_path": c.from_path,
        "version_id": c.version_id,
        "device_id": c.device_id,
        "is_dir": c.is_dir,
        "at": time.time(),
    }


def journal_to(
    conn: Connection,
    info: dict[str, Any],
    user_id: int,
    change: Echo,
    session: Session | None = None,
) -> None:
    """Append ``change`` to the journal of ``user_id`` at its next position, under its row
    lock; ``info['journal']`` learns the position for the bus. When ``session`` holds that
    account's row as an object (locked by ``lock_account``), the position is taken there, so
    the object's own count stays right."""
    user = None
    if session is not None:
        user = session.identity_map.get(identity_key(User, user_id))
    if user is not None:
        user.change_seq += 1
        seq = user.change_seq
    else:
        seq = bump_seq(conn, user_id)
    if seq is None:
        return
    info.setdefault("journal", {})[user_id] = seq
    conn.execute(_INSERT_CHANGE, change_row(user_id, seq, change))


def _under(path: str, base: str) -> str | None:
    """``path`` relative to ``base`` ("" for base itself), or None when outside."""
    if base == "/":
        return path
    if path == base:
        return ""
    if path.startswith(base + "/"):
        return path[len(base) :]
    return None


def _shares(conn: Connection, info: dict[str, Any], owner_id: int) -> list[tuple[Any, str]]:
    """The owner's shares with the owner path of each shared node, read once per transaction
    (a move of a shared node forgets them: ``forget``)."""
    cache = info.setdefault(_CACHE, {})
    found = cache.get(owner_id)
    if found is None:
        found = []
        for share in shares_by(conn, owner_id):
            place = node_place(conn, share.node_id)
            if place is not None:
                found.append((share, place.path))
        cache[owner_id] = found
    return found


def forget(info: dict[str, Any], owner_id: int) -> None:
    """Drop the transaction's cached share places of ``owner_id`` (a node moved)."""
    info.get(_CACHE, {}).pop(owner_id, None)


def echo(
    conn: Connection, info: dict[str, Any], owner_id: int, shares_out: int, change: Echo
) -> None:
    """Append ``change`` to the journal of every recipient whose share covers it, translated
    to the recipient's view; ``info['journal']`` learns each recipient's new position (the
    bus tells their long-polls after the commit). A move across the edge of a share reads as
    a creation (moved in) or a deletion (moved out); the shared node's own move or rename
    changes nothing a recipient sees."""
    if not shares_out:
        return
    if change.kind == "moved":  # the shared nodes may have moved with it
        forget(info, owner_id)
    shares = _shares(conn, info, owner_id)
    for share, base in shares:
        if change.kind == "moved" and change.node_id == share.node_id:
            continue
        new = _under(change.path, base)
        old = _under(change.from_path, base) if change.from_path is not None else None
        if new is None and old is None:
            continue
        if change.from_path is None or (new is not None and old is not None):
            kind, path, from_path = change.kind, new, old
        elif new is not None:
            kind, path, from_path = "created", new, None
        else:
            kind, path, from_path = "deleted", old, None
        assert path is not None
        mount = share.mount_path
        shown_from = None if from_path is None else mount + from_path
        seen = Echo(
            kind,
            mount + path,
            shown_from,
            change.node_id,
            change.version_id,
            change.device_id,
            change.is_dir,
        )
        journal_to(conn, info, share.recipient_id, seen)
        _touch_mount_folder(conn, info, share)


def _touch_mount_folder(conn: Connection, info: dict[str, Any], share: Any) -> None:
    """The recipient's folders above a mount point get new ETags too (its sync client lists
    its own tree from the root down), once per transaction and share."""
    done = info.setdefault("fanout_touched", set())
    if share.id in done:
        return
    done.add(share.id)
    root = conn.scalar(select(User.root_id).where(User.id == share.recipient_id))
    if root is None:
        return
    parts = [x for x in share.mount_path.split("/") if x][:-1]
    row = find(conn, root, parts) if len(parts) <= MAX_CHAIN else None
    if row is not None:
        conn.execute(TOUCH_UP, {"nid": row.n_id, "now": time.time()})


__all__ = ["Echo", "change_row", "echo", "forget", "journal_to"]
