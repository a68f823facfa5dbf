"""Revisions: list, restore, pin, block lists, and the history a file keeps across saves by
rename (a file replaced by a move or copy, or re-created where its predecessor just left).
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Select, bindparam, delete, insert, literal, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from davdrive.errors import (
    Conflict,
    NotFound,
)
from davdrive.metadata.schema import (
    Block,
    Change,
    Device,
    FileVersion,
    Node,
    User,
    VersionBlock,
)
from davdrive.service.access import Perm
from davdrive.service.core import DriveCore
from davdrive.service.paths import join
from davdrive.service.timestamps import shown_mtime
from davdrive.service.types import (
    NodeInfo,
    Principal,
    VersionInfo,
)

HANDOVER_WINDOW = 120.0

HANDOVER_SCAN = 200  # journal rows looked back at (a bounded primary-key range per new file)

_VERSION_SIZE = select(FileVersion.size).where(FileVersion.id == bindparam("vid"))


def vacated_query(uid: Any, min_seq: Any, since: Any, path_param: str) -> Select[Any]:
    """The last file node moved away from, or deleted at, the path ``:<path_param>`` in an
    account's journal after ``min_seq`` and ``since`` (bound values or SQL expressions)."""
    path = bindparam(path_param)
    return (
        select(Change.node_id)
        .where(
            Change.user_id == uid,
            Change.seq > min_seq,
            Change.at >= since,
            Change.is_dir.is_(False),
            ((Change.kind == "moved") & (Change.from_path == path))
            | ((Change.kind == "deleted") & (Change.path == path)),
        )
        .order_by(Change.seq.desc())
        .limit(1)
    )


_VACATED = vacated_query(bindparam("uid"), bindparam("min_seq"), bindparam("since"), "path")


class Versions:
    """A file's immutable versions and its history across saves by rename."""

    def __init__(self, core: DriveCore) -> None:
        self.core = core

    def vacated(self, s: Session | Connection, user_id: int, seq: int, path: str) -> int | None:
        """The file node that was moved away from or deleted at ``path`` within the last
        ``HANDOVER_WINDOW`` seconds (the account's journal, at sequence ``seq``, says so)."""
        return s.scalar(
            _VACATED,
            {
                "uid": user_id,
                "min_seq": seq - HANDOVER_SCAN,
                "since": time.time() - HANDOVER_WINDOW,
                "path": path,
            },
        )

    def inherit_history(
        self, s: Session, from_node: int, to_node: int, current: int | None
    ) -> int | None:
        """Put a copy of ``from_node``'s versions (same blocks, dates, authors and pins; new ids)
        before ``to_node``'s own in its history, so a file saved by rename or re-created keeps
        it. Version ids order a history, so ``to_node``'s own versions are re-added after the
        copies; returns the new id of its ``current`` version."""

        def versions(node_id: int) -> list[int]:
            query = select(FileVersion.id).where(FileVersion.node_id == node_id)
            return list(s.scalars(query.order_by(FileVersion.id)))

        own = versions(to_node)
        for vid in [*versions(from_node), *own]:
            new_id = self.clone_version(s, None, vid, to_node, 0.0, keep_meta=True)
            if vid == current:
                current = new_id
        if own:
            s.execute(delete(FileVersion).where(FileVersion.id.in_(own)))
        return current

    def replace_content(
        self,
        s: Session,
        user: User,
        p: Principal,
        target: Node,
        version_id: int | None,
        path: str,
        now: float,
    ) -> None:
        """Make a copy of version ``version_id`` the current version of the file ``target``:
        the file keeps its id, history, pins, properties and locks (save-by-rename)."""
        old = s.get(FileVersion, target.current_version_id) if target.current_version_id else None
        if version_id is None:  # a pending (empty) source: the target becomes empty
            new_size, vid = 0, None
        else:
            new_size = s.scalar(_VERSION_SIZE, {"vid": version_id}) or 0
            vid = self.clone_version(s, p, version_id, target.id, now)
        self.core.charge(user, new_size - (old.size if old else 0))
        if vid is not None:
            mtime = s.scalar(select(FileVersion.mtime).where(FileVersion.id == vid))
            target.current_version_id, target.mtime, target.status = vid, mtime, "ok"
        s.flush()
        self.core.touch(s, s.get(Node, target.parent_id))
        self.core.journal(s, user, p, "updated", target, path)

    def clone_version(
        self,
        s: Session,
        p: Principal | None,
        version_id: int,
        node_id: int,
        now: float,
        *,
        keep_meta: bool = False,
    ) -> int:
        """A new version row sharing the blocks of ``version_id``: authored by ``p`` now, or,
        with ``keep_meta``, a faithful copy (date, author, pin, label) for inherited history."""
        old = s.get(FileVersion, version_id)
        assert old is not None
        new = FileVersion(
            node_id=node_id,
            user_id=old.user_id,
            size=old.size,
            content_hash=old.content_hash,
            mtime=old.mtime,
            created_at=old.created_at if keep_meta or p is None else now,
            author_user_id=old.author_user_id if keep_meta or p is None else p.user_id,
            author_device_id=old.author_device_id if keep_meta or p is None else p.device_id,
            pinned=old.pinned if keep_meta else False,
            label=old.label if keep_meta else None,
        )
        s.add(new)
        s.flush()
        s.execute(
            insert(VersionBlock).from_select(
                ["version_id", "seq", "block_id", "offset", "size"],
                select(
                    literal(new.id),
                    VersionBlock.seq,
                    VersionBlock.block_id,
                    VersionBlock.offset,
                    VersionBlock.size,
                ).where(VersionBlock.version_id == version_id),
            )
        )
        return new.id

    def list_versions(
        self, p: Principal, path: str, *, limit: int | None = None, before: int | None = None
    ) -> list[VersionInfo]:
        """Newest first; ``before``: a version id, the page continues after it."""
        t = self.core.target(p, path, Perm.READ)
        with self.core.db.read() as s:
            node, parts = self.core.at(s, t)
            if node.is_dir:
                raise Conflict(f"{t.shown(join(parts))} is a folder")
            query = (
                select(FileVersion, User.login, Device.name)
                .outerjoin(User, User.id == FileVersion.author_user_id)
                .outerjoin(Device, Device.id == FileVersion.author_device_id)
                .where(FileVersion.node_id == node.id)
                .order_by(FileVersion.id.desc())
            )
            if before is not None:
                query = query.where(FileVersion.id < before)
            if limit is not None:
                query = query.limit(limit)
            return [
                VersionInfo(
                    id=v.id,
                    node_id=v.node_id,
                    size=v.size,
                    content_hash=v.content_hash,
                    mtime=shown_mtime(v.mtime),
                    created=v.created_at,
                    author_user_id=v.author_user_id,
                    author_device_id=v.author_device_id,
                    pinned=v.pinned,
                    label=v.label,
                    is_current=v.id == node.current_version_id,
                    author_login=login,
                    author_device=device,
                )
                for v, login, device in s.execute(query)
            ]

    def restore_version(self, p: Principal, path: str, version_id: int) -> NodeInfo:
        """Make an old version current as a new version (history is never rewritten)."""
        t = self.core.target(p, path, Perm.WRITE)
        now = time.time()
        with self.core.mutation() as s:
            user, node, parts = self.core.locked_at(s, t)
            old = s.get(FileVersion, version_id)
            if node.is_dir or old is None or old.node_id != node.id:
                raise NotFound("no such version of that file")
            self.core.guard(s, user, p, nodes=[join(parts)])
            current = (
                s.get(FileVersion, node.current_version_id) if node.current_version_id else None
            )
            self.core.charge(user, old.size - (current.size if current else 0))
            node.current_version_id = self.clone_version(s, p, old.id, node.id, now)
            node.mtime = old.mtime
            self.core.touch(s, s.get(Node, node.parent_id))
            self.core.journal(s, user, p, "restored", node, join(parts))
            return t.show(self.core.info(s, node, join(parts)))

    def pin_version(self, p: Principal, path: str, version_id: int, pinned: bool = True) -> None:
        """Mark a version important (pruning keeps it) or clear the mark."""
        t = self.core.target(p, path, Perm.WRITE)
        with self.core.mutation() as s:
            user, node, parts = self.core.locked_at(s, t)
            version = s.get(FileVersion, version_id)
            if version is None or version.node_id != node.id:
                raise NotFound("no such version of that file")
            if version.pinned != bool(pinned):
                version.pinned = bool(pinned)
                self.core.journal(s, user, p, "pinned" if pinned else "unpinned", node, join(parts))

    def block_list(
        self, p: Principal, path: str, *, version_id: int | None = None
    ) -> list[tuple[str, int]]:
        """The ordered (block id, size) list of a version: what a delta-sync client diffs."""
        t = self.core.target(p, path, Perm.READ)
        with self.core.db.read() as s:
            node, parts = self.core.at(s, t)
            if node.is_dir:
                raise Conflict(f"{t.shown(join(parts))} is a folder")
            vid = version_id if version_id is not None else node.current_version_id
            version = s.get(FileVersion, vid) if vid is not None else None
            if version is None or version.node_id != node.id:
                raise NotFound("no such version")
            return [
                (row.hash, row.size)
                for row in s.execute(
                    select(Block.hash, VersionBlock.size)
                    .join(Block, Block.id == VersionBlock.block_id)
                    .where(VersionBlock.version_id == version.id)
                    .order_by(VersionBlock.seq)
                )
            ]
