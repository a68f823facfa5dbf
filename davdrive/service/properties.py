"""WebDAV dead properties, keyed by node id (a MOVE needs no property work), and the facts
behind two computed ones the Nextcloud clients ask for: a folder's total size and the kinds of
share made on a node (``tree_sizes``, ``share_types``)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, delete, func, literal, or_, select, union_all

from davdrive.errors import (
    NotFound,
    PermissionDenied,
)
from davdrive.metadata.schema import (
    DeadProperty,
    FileVersion,
    Link,
    Node,
    Share,
)
from davdrive.service.access import Grant, Perm
from davdrive.service.core import IN_BATCH, DriveCore
from davdrive.service.paths import join
from davdrive.service.types import (
    NodeInfo,
    Principal,
)

_PROPS_OF = (
    select(DeadProperty.node_id, DeadProperty.name, DeadProperty.value, Node.user_id)
    .join(Node, Node.id == DeadProperty.node_id)
    .where(DeadProperty.node_id.in_(bindparam("ids", expanding=True)))
)


def _tree_sizes_query() -> Any:
    """Seed folders (the live member folders of ``:fid``, and the ids ``:ids``) → the total
    size of the current versions of the live files below each, in one recursive statement
    (walking the live-name index ``(parent_id, name) WHERE trashed_at IS NULL``)."""
    n = Node.__table__
    seed = select(
        n.c.id.label("top"), n.c.id.label("id"), n.c.is_dir, n.c.current_version_id
    ).where(
        n.c.is_dir.is_(True),
        n.c.trashed_at.is_(None),
        or_(n.c.parent_id == bindparam("fid"), n.c.id.in_(bindparam("ids", expanding=True))),
    )
    sub = seed.cte("sub", recursive=True)
    below = n.alias("below")
    sub = sub.union_all(
        select(sub.c.top, below.c.id, below.c.is_dir, below.c.current_version_id).where(
            below.c.parent_id == sub.c.id, below.c.trashed_at.is_(None), sub.c.is_dir.is_(True)
        )
    )
    v = FileVersion.__table__
    return (
        select(sub.c.top, func.coalesce(func.sum(v.c.size), 0))
        .select_from(sub.outerjoin(v, v.c.id == sub.c.current_version_id))
        .group_by(sub.c.top)
    )


_TREE_SIZES = _tree_sizes_query()


def _share_types_query() -> Any:
    """``(node id, Nextcloud share type)`` of the live shares (0) and links (3) the account
    ``:uid`` made on the node ``:nid`` or on a live member of the folder ``:fid``."""
    members = select(Node.id).where(Node.parent_id == bindparam("fid"), Node.trashed_at.is_(None))
    users = select(Share.node_id, literal(0).label("type")).where(
        Share.owner_id == bindparam("uid"),
        or_(Share.node_id == bindparam("nid"), Share.node_id.in_(members)),
    )
    links = select(Link.node_id, literal(3).label("type")).where(
        Link.owner_id == bindparam("uid"),
        Link.revoked_at.is_(None),
        or_(Link.max_uses.is_(None), Link.uses < Link.max_uses),
        or_(Link.expires_at.is_(None), Link.expires_at > bindparam("now")),
        or_(Link.node_id == bindparam("nid"), Link.node_id.in_(members)),
    )
    return union_all(users, links)


_SHARE_TYPES = _share_types_query()


class Properties:
    """Dead properties of nodes."""

    def __init__(self, core: DriveCore) -> None:
        self.core = core

    def get_dead_props(self, p: Principal, node_ids: Sequence[int]) -> dict[int, dict[str, bytes]]:
        """Property name (Clark notation) -> raw XML value, for many nodes in one query."""
        out: dict[int, dict[str, bytes]] = {nid: {} for nid in node_ids}
        ids = list(out)
        readable: dict[int, bool] = {}  # another owner's node: through a share only
        # one batch (the common case: one node) is one statement, atomic by itself
        with self.core.db.read_conn(snapshot=len(ids) > IN_BATCH) as conn:
            for i in range(0, len(ids), IN_BATCH):
                rows = conn.execute(_PROPS_OF, {"ids": ids[i : i + IN_BATCH]})
                for node_id, name, value, owner in rows:
                    if owner != p.user_id:
                        if node_id not in readable:
                            perms = self.core.node_perms(conn, p, owner, node_id)
                            readable[node_id] = bool(perms & Perm.READ)
                        if not readable[node_id]:
                            continue
                    out[node_id][name] = value
        return out

    def get_member_props(self, p: Principal, folder_id: int) -> dict[int, dict[str, bytes]]:
        """The dead properties of a folder's live members and of the folder itself, in one
        query by folder (a PROPFIND Depth 1 asks for all of them): node id -> {name: value},
        only for nodes that have some. ``NotFound`` if the folder is not the caller's."""
        out: dict[int, dict[str, bytes]] = {}
        with self.core.db.read() as s:
            owner = s.scalar(select(Node.user_id).where(Node.id == folder_id))
            if owner is None or not (
                self.core.node_perms(s.connection(), p, owner, folder_id) & Perm.READ
            ):
                raise NotFound("no such folder")
            # The members through the live-name index (parent_id, name); ownership follows
            # from the folder's, checked above.
            members = select(Node.id).where(Node.parent_id == folder_id, Node.trashed_at.is_(None))
            rows = s.execute(
                select(DeadProperty.node_id, DeadProperty.name, DeadProperty.value).where(
                    or_(DeadProperty.node_id.in_(members), DeadProperty.node_id == folder_id)
                )
            )
            for node_id, name, value in rows:
                out.setdefault(node_id, {})[name] = value
        return out

    def set_dead_prop(self, p: Principal, node_id: int, name: str, value: bytes | None) -> None:
        """Set (or remove, with None) one dead property; journalled as ``props_changed`` (RFC
        6578 reports a member whose properties changed)."""
        with self.core.db.read_conn(snapshot=False) as conn:
            owner = conn.scalar(select(Node.user_id).where(Node.id == node_id))
            perms = self.core.node_perms(conn, p, owner, node_id) if owner else Perm.NONE
        if not perms & Perm.READ:
            raise NotFound("no such node")
        Grant(owner, perms).require(Perm.WRITE)
        with self.core.mutation() as s:
            user = self.core.lock_account(s, owner)
            node = s.get(Node, node_id)
            if node is None or node.user_id != owner:
                raise NotFound("no such node")
            if owner != p.user_id and not (
                self.core.node_perms(s.connection(), p, owner, node_id) & Perm.WRITE
            ):
                raise PermissionDenied("not allowed: write")
            parts = self.core.live_path(s, node)
            if parts is not None:
                self.core.guard(s, user, p, nodes=[join(parts)])
                self.core.journal(s, user, p, "props_changed", node, join(parts))
            s.execute(
                delete(DeadProperty).where(
                    DeadProperty.node_id == node_id, DeadProperty.name == name
                )
            )
            if value is not None:
                s.add(DeadProperty(node_id=node_id, name=name, value=bytes(value)))

    def tree_sizes(
        self, p: Principal, folder: NodeInfo, members: Sequence[NodeInfo] | None = None
    ) -> dict[int, int]:
        """Total bytes of the current versions of the live files below folders, in one
        statement: node id → size for ``folder`` and, with ``members`` (its listing), for each
        member folder. ``folder`` and ``members`` are snapshots this service gave ``p``
        (``list_dir``, ``stat``), so ``p`` may read them; a mounted share counts whole."""
        if not folder.is_dir or not folder.perms & Perm.READ:
            return {}
        if members is None:
            params: dict[str, Any] = {"fid": None, "ids": [folder.id]}
        else:
            # members of the folder's own tree by parent; mount points (another tree) by id
            extra = [m.id for m in members if m.is_dir and m.parent_id != folder.id]
            params = {"fid": folder.id, "ids": extra}
        with self.core.db.read_conn(snapshot=False) as conn:
            sizes = {int(top): int(size) for top, size in conn.execute(_TREE_SIZES, params)}
        if members is not None:
            for m in members:
                if m.is_dir:
                    sizes.setdefault(m.id, 0)
            sizes[folder.id] = sum(sizes[m.id] if m.is_dir else m.size for m in members)
        else:
            sizes.setdefault(folder.id, 0)
        return sizes

    def share_types(self, p: Principal, node: NodeInfo, *, members: bool) -> dict[int, list[int]]:
        """Nextcloud's ``share-types`` of what ``p`` shared: node id → sorted types (0: a user
        share, 3: a link) of the live shares and links ``p`` made on ``node`` and, with
        ``members``, on its live members; one statement (none for a link's holder)."""
        if p.link is not None:
            return {}
        params = {
            "uid": p.user_id,
            "nid": node.id,
            "fid": node.id if members and node.is_dir else None,
            "now": time.time(),
        }
        out: dict[int, set[int]] = {}
        with self.core.db.read_conn(snapshot=False) as conn:
            for node_id, kind in conn.execute(_SHARE_TYPES, params):
                out.setdefault(int(node_id), set()).add(int(kind))
        return {nid: sorted(kinds) for nid, kinds in out.items()}
