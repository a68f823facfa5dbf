"""The trash: deleted subtrees keep their shape until restored or purged."""

from __future__ import annotations

import time

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from davdrive.errors import (
    NotFound,
)
from davdrive.metadata.schema import (
    DeadProperty,
    FileVersion,
    Node,
    User,
    VersionBlock,
)
from davdrive.service.core import DriveCore
from davdrive.service.paths import check_name, join
from davdrive.service.types import (
    NodeInfo,
    Principal,
    TrashItem,
)


class Trash:
    """Trashing, listing, restoring and purging."""

    def __init__(self, core: DriveCore) -> None:
        self.core = core

    def trash_node(self, s: Session, user: User, p: Principal, node: Node, path: str) -> None:
        self.core.charge(user, -self.core.subtree_size(s, node.id))
        node.trashed_at = time.time()
        node.trashed_path = path
        node.trashed_by = p.user_id if p.link is None else None  # a link's holder: nobody
        self.core.touch(s, s.get(Node, node.parent_id))
        self.core.journal(s, user, p, "deleted", node, path)

    def list_trash(self, p: Principal) -> list[TrashItem]:
        owner = self.core.authorize(p)
        with self.core.db.read() as s:
            nodes = s.scalars(
                select(Node)
                .where(Node.user_id == owner, Node.trashed_at.is_not(None))
                .order_by(Node.trashed_at.desc())
            ).all()
            return [
                TrashItem(
                    id=n.id,
                    name=n.name,
                    path=n.trashed_path or "",
                    is_dir=n.is_dir,
                    size=self.core.subtree_size(s, n.id),
                    trashed_at=n.trashed_at or 0.0,
                    deleted_by=self._login(s, n.trashed_by),
                )
                for n in nodes
            ]

    def _login(self, s: Session, user_id: int | None) -> str | None:
        """The login of who trashed an item (None: unknown, a link, a deleted account)."""
        if user_id is None:
            return None
        try:
            return self.core.login_of(s, user_id)
        except NotFound:
            return None

    def restore_trash(self, p: Principal, item_id: int) -> NodeInfo:
        """Restore a trashed file or folder (with its contents) to where it was; a name taken
        meanwhile gets a " (restored)" suffix; a vanished parent restores to the root."""
        owner = self.core.authorize(p, write=True)
        with self.core.mutation() as s:
            user = self.core.lock_account(s, owner)
            node = s.get(Node, item_id)
            if node is None or node.user_id != owner or node.trashed_at is None:
                raise NotFound("no such item in the trash")
            parent = s.get(Node, node.parent_id) if node.parent_id is not None else None
            parent_parts = self.core.live_path(s, parent) if parent is not None else None
            if parent is None or parent_parts is None:
                parent = s.get(Node, self.core.root_id(s, owner))
                parent_parts = []
            assert parent is not None
            self.core.guard(s, user, p, nodes=[join(parent_parts)])
            name, n = node.name, 1
            while self.core.child(s, parent.id, name) is not None:
                stem, dot, ext = node.name.rpartition(".")
                suffix = " (restored)" if n == 1 else f" (restored {n})"
                name = (
                    f"{stem}{suffix}.{ext}"
                    if dot and stem and not node.is_dir
                    else (f"{node.name}{suffix}")
                )
                n += 1
            check_name(name)
            node.parent_id, node.name = parent.id, name
            node.trashed_at, node.trashed_path = None, None
            s.flush()
            self.core.charge(user, self.core.subtree_size(s, node.id))
            self.core.touch(s, parent)
            path = join([*parent_parts, name])
            self.core.journal(s, user, p, "restored", node, path)
            return self.core.info(s, node, path)

    def purge_trash(self, p: Principal, item_id: int | None = None) -> int:
        """Delete one trashed item (or all) for good; returns how many top items were purged.
        Blocks no other version uses are freed at once (their space comes back)."""
        owner = self.core.authorize(p, write=True)
        freed: list[str] = []
        with self.core.mutation() as s:
            self.core.lock_account(s, owner)
            query = select(Node).where(Node.user_id == owner, Node.trashed_at.is_not(None))
            if item_id is not None:
                query = query.where(Node.id == item_id)
            tops = s.scalars(query).all()
            if item_id is not None and not tops:
                raise NotFound("no such item in the trash")
            for top in tops:
                tree = select(Node.id).where(Node.id == top.id).cte("purge", recursive=True)
                tree = tree.union_all(select(Node.id).where(Node.parent_id == tree.c.id))
                ids = select(tree.c.id)
                versions = select(FileVersion.id).where(FileVersion.node_id.in_(ids))
                used = s.scalars(
                    select(VersionBlock.block_id).where(VersionBlock.version_id.in_(versions))
                ).all()
                s.execute(delete(VersionBlock).where(VersionBlock.version_id.in_(versions)))
                s.execute(delete(FileVersion).where(FileVersion.node_id.in_(ids)))
                s.execute(delete(DeadProperty).where(DeadProperty.node_id.in_(ids)))
                # Children first is not needed: node.parent_id cascades on delete.
                s.execute(delete(Node).where(Node.id == top.id))
                freed += self.core.drop_unused_blocks(s, used)
        self.core.reclaim(owner, freed)
        return len(tops)
