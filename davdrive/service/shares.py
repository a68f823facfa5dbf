"""User shares: an owner grants another account rights on a file or folder.

The recipient sees the shared node at a mount point of its own tree (``share.mount_path``: at
first the node's name at the root, " (2)" and so on when the name is taken), may rename or move
that mount point like a folder of its own, and deleting it declines the share (the owner's files
stay). Reads and writes through it act on the owner's tree (``service.access``): quota,
revisions, locks and trash stay the owner's. The recipient's journal hears ``shared``,
``unshared`` and ``permissions_changed``; changes inside the node reach it through
``service.fanout``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from davdrive.errors import AlreadyExists, BadRequest, NotFound, PermissionDenied
from davdrive.metadata.schema import Node, Share, User
from davdrive.metadata.shares import ShareRow, mounts_of, node_place, share_by_id
from davdrive.service.access import FILE_SHAREABLE, SHAREABLE, Perm
from davdrive.service.core import DriveCore
from davdrive.service.fanout import Echo, journal_to
from davdrive.service.locks import drop_locks_of
from davdrive.service.paths import join, split_path
from davdrive.service.types import Principal


@dataclass(frozen=True)
class ShareInfo:
    """A share as one of its two parties sees it. ``path``: for the owner, the node's path
    in the owner's tree; for the recipient, where it is mounted (the owner's folders above the
    node are never shown to the recipient)."""

    id: int
    owner: str
    recipient: str
    node_id: int
    name: str
    is_dir: bool
    path: str
    mount_path: str
    permissions: Perm
    created: float


def check_perms(perms: int, is_dir: bool) -> Perm:
    """The rights a share may carry: read plus any of write, create, delete (folders);
    ``BadRequest`` otherwise (no re-sharing)."""
    if not isinstance(perms, int) or isinstance(perms, bool):
        raise BadRequest("permissions is an integer bitmask (read 1, write 2, create 4, delete 8)")
    p = Perm(perms) if 0 <= perms < 32 else None
    if p is None or not p & Perm.READ:
        raise BadRequest("a share needs at least the read permission (1)")
    if p & ~SHAREABLE:
        raise BadRequest(
            "re-sharing (16) is not supported: use read 1, write 2, create 4, delete 8"
        )
    return p if is_dir else p & FILE_SHAREABLE


def _tell(
    s: Session,
    user_id: int,
    p: Principal,
    kind: str,
    path: str,
    node_id: int,
    from_path: str | None = None,
) -> None:
    """One entry of a recipient's journal about a share (its mount point)."""
    is_dir = bool(s.scalar(select(Node.is_dir).where(Node.id == node_id)))
    change = Echo(kind, path, from_path, node_id, None, p.device_id, is_dir)
    journal_to(s.connection(), s.info, user_id, change, s)


def _recount(conn: Connection, user_id: int, hint: str, side: Any) -> None:
    """Set an account's ``shares_out``/``shares_in`` hint to the true count (a share ended)."""
    count = select(func.count()).select_from(Share).where(side == user_id).scalar_subquery()
    conn.execute(update(User).where(User.id == user_id).values({hint: count}))


class Shares:
    """Creating, listing, changing and ending user shares; the recipient's mount points."""

    def __init__(self, core: DriveCore) -> None:
        self.core = core

    # -- the owner's side ----------------------------------------------------------------------
    def create(self, p: Principal, path: str, recipient: str, perms: int) -> ShareInfo:
        """Share the node at ``path`` of ``p``'s own tree with the account ``recipient``.
        ``BadRequest``: the root, oneself, bad rights; ``NotFound``: no such node or user;
        ``PermissionDenied``: a node ``p`` reached through a share (no re-sharing);
        ``AlreadyExists``: that user has a share of this node already."""
        t = self.core.target(p, path)
        if t.view is not None:
            raise PermissionDenied("re-sharing is not allowed: only the owner shares")
        if not split_path(path):
            raise BadRequest("the root cannot be shared")
        with self.core.db.read_conn(snapshot=False) as conn:
            rid = conn.scalar(select(User.id).where(User.login == str(recipient).lower()))
        if rid is None:
            raise NotFound(f"no user {recipient!r}")
        if rid == p.user_id:
            raise BadRequest("you cannot share with yourself")
        now = time.time()
        with self.core.mutation() as s:
            owner = self.core.lock_account(s, p.user_id)
            node, parts = self.core.at(s, t)
            rights = check_perms(perms, node.is_dir)
            taken = s.scalar(
                select(Share.id).where(Share.node_id == node.id, Share.recipient_id == rid)
            )
            if taken is not None:
                raise AlreadyExists(f"{join(parts)} is shared with {recipient} already")
            conn = s.connection()
            mount = self._free_root_name(s, rid, node.name)
            sid = conn.execute(
                insert(Share).returning(Share.id),
                {
                    "owner_id": p.user_id,
                    "node_id": node.id,
                    "recipient_id": rid,
                    "perms": int(rights),
                    "mount_path": mount,
                    "created_at": now,
                },
            ).scalar_one()
            owner.shares_out = (owner.shares_out or 0) + 1
            conn.execute(update(User).where(User.id == rid).values(shares_in=User.shares_in + 1))
            s.flush()
            _tell(s, rid, p, "shared", mount, node.id)
        return self.get(p, sid)

    def update(self, p: Principal, share_id: int, perms: int) -> ShareInfo:
        """Change a share's rights (the owner only; ``NotFound`` for anyone else)."""
        with self.core.mutation() as s:
            self.core.lock_account(s, p.user_id)
            conn = s.connection()
            row = share_by_id(conn, share_id)
            if row is None or row.owner_id != p.user_id:
                raise NotFound("no such share")
            node = s.get(Node, row.node_id)
            assert node is not None
            rights = check_perms(perms, node.is_dir)
            if int(rights) != row.perms:
                conn.execute(update(Share).where(Share.id == share_id).values(perms=int(rights)))
                _tell(s, row.recipient_id, p, "permissions_changed", row.mount_path, row.node_id)
        return self.get(p, share_id)

    def delete(self, p: Principal, share_id: int) -> None:
        """End a share: the owner revokes it, or the recipient declines it. The recipient's
        journal hears ``unshared`` and its locks inside the share go."""
        with self.core.mutation() as s:
            row = self._party_row(s, p, share_id)
            self.core.lock_account(s, row.owner_id)
            self._end(s, p, row)

    def _party_row(self, s: Session, p: Principal, share_id: int) -> ShareRow:
        row = share_by_id(s.connection(), share_id)
        if row is None or p.user_id not in (row.owner_id, row.recipient_id):
            raise NotFound("no such share")
        return row

    def _end(self, s: Session, p: Principal, row: ShareRow) -> None:
        conn = s.connection()
        gone = conn.execute(delete(Share).where(Share.id == row.id)).rowcount
        if not gone:
            raise NotFound("no such share")
        _recount(conn, row.owner_id, "shares_out", Share.owner_id)
        _recount(conn, row.recipient_id, "shares_in", Share.recipient_id)
        _tell(s, row.recipient_id, p, "unshared", row.mount_path, row.node_id)
        place = node_place(conn, row.node_id)
        if place is not None:  # the recipient's locks go with the share
            owner = self.core.login_of(conn, row.owner_id)
            drop_locks_of(s, owner, place.path, self.core.login_of(conn, row.recipient_id))

    # -- reading -------------------------------------------------------------------------------
    def get(self, p: Principal, share_id: int) -> ShareInfo:
        """One share, as the caller (its owner or recipient) sees it; ``NotFound`` otherwise."""
        with self.core.db.read_conn() as conn:
            row = share_by_id(conn, share_id)
            if row is None or p.user_id not in (row.owner_id, row.recipient_id):
                raise NotFound("no such share")
            return self._info(conn, row, p.user_id)

    def list_given(self, p: Principal, path: str | None = None) -> list[ShareInfo]:
        """The shares ``p`` gave, oldest first; with ``path``, only those of that node."""
        node_id = None
        if path is not None:
            node_id = self.core.node_id_at(p, path)
        with self.core.db.read_conn() as conn:
            rows = conn.execute(
                select(Share.id).where(Share.owner_id == p.user_id).order_by(Share.id)
            ).scalars()
            out = [self._info(conn, share_by_id(conn, sid), p.user_id) for sid in rows]
        return [i for i in out if node_id is None or i.node_id == node_id]

    def list_received(self, p: Principal) -> list[ShareInfo]:
        """The shares ``p`` received, by mount point."""
        with self.core.db.read_conn() as conn:
            rows = sorted(mounts_of(conn, p.user_id), key=lambda r: r.mount_path)
            return [self._info(conn, r, p.user_id) for r in rows]

    def list_all(self, login: str | None = None) -> list[ShareInfo]:
        """Every share (the admin's audit), or those ``login`` gave or received."""
        with self.core.db.read_conn() as conn:
            query = select(Share.id).order_by(Share.id)
            if login is not None:
                uid = conn.scalar(select(User.id).where(User.login == login.lower()))
                if uid is None:
                    raise NotFound(f"no user {login!r}")
                query = query.where((Share.owner_id == uid) | (Share.recipient_id == uid))
            ids = list(conn.execute(query).scalars())
            return [self._info(conn, share_by_id(conn, sid), None) for sid in ids]

    def _info(self, conn: Connection, row: ShareRow | None, viewer: int | None) -> ShareInfo:
        assert row is not None
        node = conn.execute(select(Node.name, Node.is_dir).where(Node.id == row.node_id)).one()
        place = node_place(conn, row.node_id)
        owner_path = place.path if place is not None else ""
        return ShareInfo(
            id=row.id,
            owner=self.core.login_of(conn, row.owner_id),
            recipient=self.core.login_of(conn, row.recipient_id),
            node_id=row.node_id,
            name=node.name,
            is_dir=bool(node.is_dir),
            path=row.mount_path if viewer == row.recipient_id else owner_path,
            mount_path=row.mount_path,
            permissions=Perm(row.perms),
            created=row.created_at,
        )

    # -- the recipient's mount points ---------------------------------------------------------
    def _taken(self, s: Session, user_id: int, folder: str) -> set[str]:
        """Names in use in the recipient's folder ``folder``: its own members and mounts."""
        taken = {
            m.mount_path.rsplit("/", 1)[1]
            for m in mounts_of(s.connection(), user_id)
            if m.mount_path.rsplit("/", 1)[0] == folder.rstrip("/")
        }
        parent = self.core.resolve(s, user_id, split_path(folder))
        if parent is not None:
            taken |= set(
                s.scalars(
                    select(Node.name).where(Node.parent_id == parent.id, Node.trashed_at.is_(None))
                )
            )
        return taken

    def _free_root_name(self, s: Session, user_id: int, name: str) -> str:
        """ "/name", or "/name (2)", "/name (3)" ... : the first free name at the root."""
        taken = self._taken(s, user_id, "/")
        candidate, n = name, 1
        while candidate in taken:
            n += 1
            candidate = f"{name} ({n})"
        return "/" + candidate

    def decline(self, s: Session, p: Principal, share: ShareRow) -> None:
        """Inside a mutation: the recipient deleted its mount point (the share ends)."""
        self._end(s, p, share)

    def move_mount(self, s: Session, p: Principal, share: ShareRow, dst: str) -> None:
        """Inside a mutation holding the recipient's row: move a mount point to ``dst`` of the
        recipient's own tree (its folder must exist; the name must be free)."""
        conn = s.connection()
        parts = split_path(dst)
        folder = join(parts[:-1])
        self.core.resolve_dir(s, p.user_id, parts[:-1])
        if parts[-1] in self._taken(s, p.user_id, folder):
            raise AlreadyExists(f"{dst} exists")
        conn.execute(update(Share).where(Share.id == share.id).values(mount_path=join(parts)))
        _tell(s, p.user_id, p, "moved", join(parts), share.node_id, share.mount_path)

    def follow_move(self, s: Session, user_id: int, old: str, new: str) -> None:
        """Inside a mutation: an own folder of ``user_id`` moved from ``old`` to ``new``; the
        mount points below it move along."""
        conn = s.connection()
        for m in mounts_of(conn, user_id):
            if m.mount_path.startswith(old.rstrip("/") + "/"):
                moved = new.rstrip("/") + m.mount_path[len(old.rstrip("/")) :]
                conn.execute(update(Share).where(Share.id == m.id).values(mount_path=moved))

    def rehome_below(self, s: Session, p: Principal, path: str) -> None:
        """Inside a mutation: the own folder ``path`` of ``p`` goes to the trash; mount points
        below it come back to the root (the shares stay), under a free name."""
        conn = s.connection()
        for m in mounts_of(conn, p.user_id):
            if m.mount_path.startswith(path.rstrip("/") + "/"):
                moved = self._free_root_name(s, p.user_id, m.mount_path.rsplit("/", 1)[1])
                conn.execute(update(Share).where(Share.id == m.id).values(mount_path=moved))
                _tell(s, p.user_id, p, "shared", moved, m.node_id)


__all__ = ["ShareInfo", "Shares", "check_perms"]
