"""WebDAV dead properties, keyed by node id (a MOVE needs no property work)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import bindparam, delete, or_, select

from davdrive.errors import (
    NotFound,
    PermissionDenied,
)
from davdrive.metadata.schema import (
    DeadProperty,
    Node,
)
from davdrive.service.access import Grant, Perm
from davdrive.service.core import IN_BATCH, DriveCore
from davdrive.service.paths import join
from davdrive.service.types import (
    Principal,
)

_PROPS_OF = (
    select(DeadProperty.node_id, DeadProperty.name, DeadProperty.value, Node.user_id)
    .join(Node, Node.id == DeadProperty.node_id)
    .where(DeadProperty.node_id.in_(bindparam("ids", expanding=True)))
)


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
