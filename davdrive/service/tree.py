"""The namespace: stat, listings, folders, move, copy, delete, mtimes."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import Text, delete, insert, literal, select, update
from sqlalchemy.orm import Session

from davdrive.errors import (
    AlreadyExists,
    Conflict,
    NotFound,
    OtherTree,
    PermissionDenied,
    PreconditionFailed,
)
from davdrive.metadata.schema import (
    DeadProperty,
    FileVersion,
    Node,
    User,
)
from davdrive.service import lookup
from davdrive.service.access import Perm, Target
from davdrive.service.core import MEMBER_COLUMNS, DriveCore, Expect, check_expect, member
from davdrive.service.locks import drop_locks
from davdrive.service.lookup import node_etag, row_info
from davdrive.service.paths import join, parent_and_name, split_path
from davdrive.service.shares import Shares
from davdrive.service.timestamps import parse_mtime, shown_mtime
from davdrive.service.trash import Trash
from davdrive.service.types import (
    NodeInfo,
    Principal,
)
from davdrive.service.versions import Versions


class Tree:
    """Paths and the operations that change the shape of the tree."""

    def __init__(self, core: DriveCore, versions: Versions, trash: Trash, shares: Shares) -> None:
        self.core = core
        self.versions = versions
        self.trash = trash
        self.shares = shares

    def rights(self, p: Principal, path: str) -> Perm:
        """What ``p`` may do at ``path`` by the access rule (a door that must refuse before
        the service is reached, such as WebDAV's LOCK, asks this)."""
        return self.core.target(p, path, Perm.NONE).perms

    def stat(self, p: Principal, path: str) -> NodeInfo:
        """``NotFound`` if nothing lives at path (``BadRequest`` for hostile paths)."""
        return self._stat(self.core.target(p, path))

    def _stat(self, t: Target) -> NodeInfo:
        parts = split_path(t.path)
        if len(parts) <= lookup.MAX_CHAIN:  # one statement
            with self.core.db.read_conn(snapshot=False) as conn:
                row = lookup.find(conn, self.core.root_id(conn, t.owner_id), parts)
            info = row_info(row, "n_", join(parts)) if row is not None else None
            if info is None:
                raise NotFound(f"{t.shown(join(parts))} not found")
            return t.show(info)
        with self.core.db.read() as s:
            node, parts = self.core.at(s, t)
            return t.show(self.core.info(s, node, join(parts)))

    def stat_pair(self, p: Principal, path: str) -> tuple[NodeInfo | None, NodeInfo | None]:
        """The folder that would hold ``path`` and what lives at ``path``, in one statement
        (a PUT needs both); ``(None, None)`` when the folder does not exist."""
        parts = split_path(path)
        t = self.core.target(p, parts)
        owner_parts = split_path(t.path)
        if not parts or len(owner_parts) > lookup.MAX_CHAIN or t.at_mount:
            parent_parts = parts[:-1]
            return self.try_stat(p, join(parent_parts)), self.try_stat(p, join(parts))
        with self.core.db.read_conn(snapshot=False) as conn:
            row = lookup.find(
                conn, self.core.root_id(conn, t.owner_id), owner_parts[:-1], owner_parts[-1]
            )
        if row is None:
            return None, None
        folder = row_info(row, "n_", join(owner_parts[:-1]))
        member = row_info(row, "c_", t.path)
        return (
            t.show(folder) if folder is not None else None,
            t.show(member) if member is not None else None,
        )

    def try_stat(self, p: Principal, path: str) -> NodeInfo | None:
        try:
            return self.stat(p, path)
        except NotFound:
            return None

    def list_dir(self, p: Principal, path: str) -> list[NodeInfo]:
        """Members of a folder in one query, sorted by name. ``Conflict`` if it is a file."""
        return self.list_page(p, path)[0]

    def list_page(
        self, p: Principal, path: str, *, after: str | None = None, limit: int | None = None
    ) -> tuple[list[NodeInfo], bool]:
        """Members of a folder sorted by name, those after the name ``after``, at most
        ``limit``: ``(members, has_more)``. ``Conflict`` if it is a file.

        The hot path of a PROPFIND: the folder is resolved with one statement and its members
        read with a second on the same plain connection (one snapshot, no ORM session); a
        folder of 5,000 members loads in ~20 ms.
        """
        shown = join(split_path(path))
        t = self.core.target(p, path)
        owner, parts = t.owner_id, split_path(t.path)
        if len(parts) > lookup.MAX_CHAIN:  # deeper than one statement resolves: walk
            with self.core.db.read() as s:
                node, parts = self.core.at(s, t)
                if not node.is_dir:
                    raise Conflict(f"{shown} is not a folder")
                rows = s.execute(_members_query(node.id, after, limit)).all()
            folder_id = node.id
        else:
            with self.core.db.read_conn() as conn:
                row = lookup.find(conn, self.core.root_id(conn, owner), parts)
                if row is None:
                    raise NotFound(f"{shown} not found")
                if not row.n_is_dir:
                    raise Conflict(f"{shown} is not a folder")
                rows = conn.execute(_members_query(row.n_id, after, limit)).all()
            folder_id = row.n_id
        members, more = _members(rows, folder_id, shown, limit)
        if t.view is not None:
            return [replace(m, perms=int(t.perms)) for m in members], more
        mounted = self._mounted(p, t, shown, after)
        if not mounted:
            return members, more
        names = {m.name for m in mounted}
        merged = sorted([m for m in members if m.name not in names] + mounted, key=_by_name)
        if limit is not None and len(merged) > limit:
            return merged[:limit], True
        return merged, more

    def _mounted(self, p: Principal, t: Target, folder: str, after: str | None) -> list[NodeInfo]:
        """The mount points of ``p``'s shares that stand in its own folder ``folder``."""
        out = []
        for m in t.mounts:
            head, _, name = m.mount_path.rpartition("/")
            if (head or "/") != folder or (after is not None and name <= after):
                continue
            try:
                out.append(self.stat(p, m.mount_path))
            except NotFound:  # the shared node is in the owner's trash
                continue
        return out

    def list_tree(
        self,
        p: Principal,
        path: str,
        *,
        after: str | None = None,
        limit: int = 1000,
    ) -> tuple[list[NodeInfo], bool, int]:
        """Everything below a folder, parents before children (ordered by path), the entries
        whose path sorts after ``after``, at most ``limit``: ``(entries, has_more, seq)`` where
        ``seq`` is the account's journal position this page was read at."""
        t = self.core.target(p, path)
        with self.core.db.read() as s:
            node, parts = self.core.at(s, t)
            if not node.is_dir:
                raise Conflict(f"{t.shown(join(parts))} is not a folder")
            seq = s.scalar(select(User.change_seq).where(User.id == p.user_id)) or 0
            prefix = join(split_path(path)).rstrip("/")
            tree = select(Node.id.label("id"), literal(prefix, type_=Text).label("path")).where(
                Node.id == node.id
            )
            tree = tree.cte("tree", recursive=True)
            tree = tree.union_all(
                select(Node.id, (tree.c.path + "/" + Node.name).label("path")).where(
                    Node.parent_id == tree.c.id, Node.trashed_at.is_(None)
                )
            )
            key = tree.c.path
            if s.get_bind().dialect.name == "postgresql":
                key = key.collate("C")  # byte order: a folder sorts right before its members
            query = (
                select(*MEMBER_COLUMNS, tree.c.path)
                .join(Node, Node.id == tree.c.id)
                .outerjoin(FileVersion, FileVersion.id == Node.current_version_id)
                .where(tree.c.id != node.id)
                .order_by(key)
                .limit(limit + 1)
            )
            if after is not None:
                query = query.where(key > after)
            rows = s.execute(query).all()
        entries = [member(row, row.parent_id, row.path) for row in rows]
        if t.view is not None:
            entries = [replace(e, perms=int(t.perms)) for e in entries]
        else:  # the mount points below, and what they hold, in path order with the rest
            entries = self._with_mounted_trees(p, t, prefix, entries, after, limit)
        return entries[:limit], len(entries) > limit, seq

    def _with_mounted_trees(
        self,
        p: Principal,
        t: Target,
        prefix: str,
        entries: list[NodeInfo],
        after: str | None,
        limit: int,
    ) -> list[NodeInfo]:
        """``entries`` (of ``p``'s own tree below ``prefix``) merged with the mount points
        below ``prefix`` and their trees: at most ``limit + 1`` after ``after``, by path."""
        below = [m for m in t.mounts if m.mount_path.startswith(prefix + "/")]
        if not below:
            return entries
        mounted: list[NodeInfo] = []
        for m in below:
            try:
                root = self.stat(p, m.mount_path)
            except NotFound:
                continue
            if after is None or root.path > after:
                mounted.append(root)
            if root.is_dir:
                inner_after = after if after is not None and after > root.path else None
                mounted += self.list_tree(p, root.path, after=inner_after, limit=limit)[0]
        tops = {m.mount_path for m in below}
        own = [
            e
            for e in entries
            if e.path not in tops and not any(e.path.startswith(top + "/") for top in tops)
        ]
        return sorted(own + mounted, key=_by_path)[: limit + 1]

    def mkdir(self, p: Principal, path: str) -> NodeInfo:
        """``AlreadyExists`` if anything lives there; ``ParentNotFound`` without a parent."""
        parent_and_name(path)  # BadRequest for the root
        t = self.core.target(p, path, Perm.NONE)
        if t.at_mount:
            raise AlreadyExists(f"{t.shown(t.path)} exists")
        t.require(Perm.CREATE)
        if not t.perms & (Perm.READ | Perm.WRITE):  # a drop: a taken name is renamed
            t = self.core.free_target(p, t, folder=True)
        owner = t.owner_id
        parent_parts, name = parent_and_name(t.path)
        now = time.time()
        with self.core.mutation() as s:
            user = self.core.lock_account(s, owner)
            self.core.recheck(s, t)
            parent = self.core.resolve_dir(s, owner, parent_parts, t)
            if self.core.child(s, parent.id, name) is not None:
                raise AlreadyExists(f"{t.shown(join([*parent_parts, name]))} exists")
            self.core.guard(s, user, p, nodes=[join(parent_parts), join([*parent_parts, name])])
            node = Node(
                user_id=owner,
                parent_id=parent.id,
                name=name,
                is_dir=True,
                mtime=now,
                created_at=now,
            )
            s.add(node)
            self.core.touch(s, parent)
            s.flush()
            full = join([*parent_parts, name])
            self.core.journal(s, user, p, "created", node, full)
            return t.show(self.core.info(s, node, full))

    def _source(self, s: Session, t: Target, expect: Expect | None) -> Node:
        """The node a move or copy starts from (``NotFound``; ``PreconditionFailed``)."""
        node, _ = self.core.at(s, t)
        check_expect(node, expect)
        return node

    def _ends(
        self, p: Principal, src: str, dst: str, verb: str, overwrite: bool
    ) -> tuple[Target, Target, list[str], list[str]]:
        """Both ends of a move or copy by the access rule, and their components in the
        owner's tree. ``OtherTree`` between two owners; a mount point is never replaced."""
        src_parts, dst_parts = _transfer_parts(src, dst, verb)
        ts = self.core.target(p, src_parts, Perm.NONE)
        td = self.core.target(p, dst_parts, Perm.NONE)
        if td.at_mount and not (ts.at_mount and ts.share == td.share):
            if not overwrite:
                raise PreconditionFailed(f"{join(dst_parts)} exists")
            raise PermissionDenied("a shared folder's mount point cannot be replaced")
        if ts.owner_id != td.owner_id and not ts.at_mount:
            raise OtherTree(f"cannot {verb} between a share and other files on the server")
        if ts.at_mount:
            return ts, td, [], []
        return ts, td, *_transfer_parts(ts.path, td.path, verb)

    def _move_mount(self, p: Principal, ts: Target, td: Target, overwrite: bool) -> bool:
        """The recipient moves or renames a mount point within its own tree."""
        if ts.share is None:  # a link's root
            raise PermissionDenied("the shared item itself cannot be moved through its link")
        if td.view is not None:
            raise OtherTree("a shared folder can only be moved among your own files")
        with self.core.mutation() as s:
            self.core.lock_account(s, p.user_id)
            self.core.recheck(s, ts)
            try:
                self.shares.move_mount(s, p, ts.share, td.path)
            except AlreadyExists:
                if not overwrite:
                    raise PreconditionFailed(f"{td.path} exists") from None
                raise PermissionDenied("a shared folder cannot replace an item") from None
        return False

    def _take_destination(
        self,
        s: Session,
        td: Target,
        dst_parts: list[str],
        overwrite: bool,
        moving: Node | None,
    ) -> tuple[Node, Node | None]:
        """Resolve the destination's folder and what stands at the destination (None if free,
        or if it is ``moving`` itself); ``PreconditionFailed`` if taken and not ``overwrite``;
        replacing needs the right to write (a file by a file) or delete."""
        parent = self.core.resolve_dir(s, td.owner_id, dst_parts[:-1], td)
        existing = self.core.child(s, parent.id, dst_parts[-1])
        if existing is None or (moving is not None and existing.id == moving.id):
            return parent, None
        if not overwrite:
            raise PreconditionFailed(f"{td.shown(join(dst_parts))} exists")
        td.require(
            Perm.WRITE if not existing.is_dir and not (moving and moving.is_dir) else Perm.DELETE
        )
        return parent, existing

    def _trash(
        self, s: Session, user: User, p: Principal, t: Target, node: Node, path: str
    ) -> None:
        """Trash ``node`` (at owner ``path``) as ``p``; an own folder's mount points go back
        to the root first."""
        if t.view is None and node.is_dir:
            self.shares.rehome_below(s, p, path)
        self.trash.trash_node(s, user, p, node, path)
        drop_locks(s, user.login, path)
        s.flush()

    def move(
        self,
        p: Principal,
        src: str,
        dst: str,
        *,
        overwrite: bool = True,
        expect: Expect | None = None,
    ) -> bool:
        """Rename/move a file or a whole folder in one transaction (no data copied).

        Returns True when an existing destination was replaced. A file moved over a file
        becomes a new revision of the destination (which keeps its id, history, pins and
        locks; the source's own revisions join that history); any other replaced destination
        goes to the trash. ``PreconditionFailed`` if dst exists and not overwrite;
        ``ParentNotFound`` if dst's parent is missing; ``Conflict`` when moving a folder into
        itself; ``Locked`` without the tokens of the locks on source or destination.
        """
        ts, td, src_parts, dst_parts = self._ends(p, src, dst, "move", overwrite)
        if ts.at_mount:
            return self._move_mount(p, ts, td, overwrite)
        ts.require(Perm.DELETE)
        td.require(Perm.CREATE)
        owner = ts.owner_id
        src_path, dst_path = join(src_parts), join(dst_parts)
        now = time.time()
        with self.core.mutation() as s:
            user = self.core.lock_account(s, owner)
            self.core.recheck(s, ts)
            self.core.recheck(s, td)
            node = self._source(s, ts, expect)
            old_parent = s.get(Node, node.parent_id)
            parent, existing = self._take_destination(s, td, dst_parts, overwrite, node)
            self.core.guard(
                s,
                user,
                p,
                nodes=[join(src_parts[:-1]), join(dst_parts[:-1])],
                trees=[src_path] + ([dst_path] if existing is not None else []),
            )
            if existing is not None and not existing.is_dir and not node.is_dir:
                # Save-by-rename: the content becomes a new revision of the destination file.
                s.execute(
                    update(FileVersion)
                    .where(
                        FileVersion.node_id == node.id, FileVersion.id != node.current_version_id
                    )
                    .values(node_id=existing.id)
                )
                self.core.charge(user, -self.core.subtree_size(s, node.id))
                self.core.journal(s, user, p, "deleted", node, src_path)
                self.versions.replace_content(
                    s, user, p, existing, node.current_version_id, dst_path, now
                )
                s.execute(delete(DeadProperty).where(DeadProperty.node_id == node.id))
                s.delete(node)
                self.core.touch(s, old_parent)
                drop_locks(s, user.login, src_path)
                return True
            if existing is not None:
                self._trash(s, user, p, td, existing, dst_path)
            vacated = (
                None
                if existing is not None
                else self.versions.vacated(s, user.id, user.change_seq, dst_path)
            )
            node.parent_id = parent.id
            node.name = dst_parts[-1]
            self.core.touch(s, old_parent)
            self.core.touch(s, parent)
            s.flush()
            if vacated is not None and not node.is_dir and vacated != node.id:
                node.current_version_id = self.versions.inherit_history(
                    s, vacated, node.id, node.current_version_id
                )
            self.core.journal(s, user, p, "moved", node, dst_path, from_path=src_path)
            drop_locks(s, user.login, src_path)
            if ts.view is None and node.is_dir:
                self.shares.follow_move(s, owner, src_path, dst_path)
            return existing is not None

    def copy(
        self,
        p: Principal,
        src: str,
        dst: str,
        *,
        overwrite: bool = True,
        expect: Expect | None = None,
    ) -> bool:
        """Copy a file or folder tree; copies share blocks (no data copied), keep mtimes and
        dead properties. A file copied over a file becomes a new revision of it (history kept).
        Same return value and errors as ``move``; counts against quota."""
        ts, td, src_parts, dst_parts = self._ends(p, src, dst, "copy", overwrite)
        if ts.owner_id != td.owner_id:
            raise OtherTree("cannot copy between a share and other files on the server")
        td.require(Perm.CREATE)
        owner = ts.owner_id
        dst_path = join(dst_parts)
        now = time.time()
        with self.core.mutation() as s:
            user = self.core.lock_account(s, owner)
            self.core.recheck(s, ts)
            self.core.recheck(s, td)
            node = self._source(s, ts, expect)
            parent, existing = self._take_destination(s, td, dst_parts, overwrite, None)
            self.core.guard(
                s,
                user,
                p,
                nodes=[join(dst_parts[:-1])],
                trees=[dst_path] if existing is not None else [],
            )
            if existing is not None and not existing.is_dir and not node.is_dir:
                self.versions.replace_content(
                    s, user, p, existing, node.current_version_id, dst_path, now
                )
                return True
            self.core.charge(user, self.core.subtree_size(s, node.id))
            if existing is not None:
                self._trash(s, user, p, td, existing, dst_path)
            self.core.touch(s, parent)
            self._copy_tree(s, user, p, node, parent.id, dst_parts[-1], dst_path, now)
            return existing is not None

    def _copy_tree(
        self,
        s: Session,
        user: User,
        p: Principal,
        node: Node,
        parent_id: int,
        name: str,
        path: str,
        now: float,
    ) -> None:
        twin = Node(
            user_id=node.user_id,
            parent_id=parent_id,
            name=name,
            is_dir=node.is_dir,
            mtime=node.mtime,
            created_at=now,
            status="ok",
        )
        s.add(twin)
        s.flush()
        if not node.is_dir and node.current_version_id is not None:
            twin.current_version_id = self.versions.clone_version(
                s, p, node.current_version_id, twin.id, now
            )
        s.execute(
            insert(DeadProperty).from_select(
                ["node_id", "name", "value"],
                select(literal(twin.id), DeadProperty.name, DeadProperty.value).where(
                    DeadProperty.node_id == node.id
                ),
            )
        )
        self.core.journal(s, user, p, "created", twin, path)
        if node.is_dir:
            children = s.scalars(
                select(Node).where(Node.parent_id == node.id, Node.trashed_at.is_(None))
            ).all()
            for child in children:
                self._copy_tree(s, user, p, child, twin.id, child.name, f"{path}/{child.name}", now)

    def delete(self, p: Principal, path: str, *, expect: Expect | None = None) -> None:
        """Move to the trash (restorable). The root cannot be deleted (``PermissionDenied``);
        ``PreconditionFailed`` when ``expect`` does not match the node."""
        t = self.core.target(p, path)
        if t.at_mount:  # the recipient declines the share; the owner's files stay
            if t.share is None:
                raise PermissionDenied("the shared item itself cannot be deleted through its link")
            with self.core.mutation() as s:
                self.core.lock_account(s, t.owner_id)
                self.core.recheck(s, t)
                self.shares.decline(s, p, t.share)
            return
        t.require(Perm.DELETE)
        with self.core.mutation() as s:
            user, node, parts = self.core.locked_at(s, t)
            if not parts:
                raise PermissionDenied("the root cannot be deleted")
            check_expect(node, expect)
            self.core.guard(s, user, p, nodes=[join(parts[:-1])], trees=[join(parts)])
            self._trash(s, user, p, t, node, join(parts))

    def set_mtime(self, p: Principal, path: str, mtime: float) -> NodeInfo:
        t = self.core.target(p, path, Perm.WRITE)
        with self.core.mutation() as s:
            user, node, parts = self.core.locked_at(s, t)
            self.core.guard(s, user, p, nodes=[join(parts)])
            node.mtime = parse_mtime(mtime)
            self.core.journal(s, user, p, "updated", node, join(parts))
            return t.show(self.core.info(s, node, join(parts)))


def _transfer_parts(src: str, dst: str, verb: str) -> tuple[list[str], list[str]]:
    """Split a move's or copy's paths and refuse what cannot be done: the root as destination
    (or as a moved source), the same path, a folder into itself, replacing an ancestor."""
    src_parts, dst_parts = split_path(src), split_path(dst)
    if not dst_parts or (verb == "move" and not src_parts):
        raise PermissionDenied(
            f"the root cannot be {'moved or ' if verb == 'move' else ''}replaced"
        )
    if dst_parts[: len(src_parts)] == src_parts:
        if dst_parts == src_parts:
            raise PermissionDenied("source and destination are the same")
        raise Conflict(f"cannot {verb} a folder into itself")
    if src_parts[: len(dst_parts)] == dst_parts:
        raise Conflict("cannot replace a folder that contains the source")
    return src_parts, dst_parts


# MEMBER_COLUMNS without parent_id (the folder's own id): the order ``_members`` unpacks
_LIST_COLUMNS = tuple(c for c in MEMBER_COLUMNS if c is not Node.parent_id)


def _by_name(info: NodeInfo) -> str:
    return info.name


def _by_path(info: NodeInfo) -> str:
    return info.path  # code point order: the byte order of UTF-8, as the database sorts


def _members_query(folder_id: int, after: str | None, limit: int | None) -> Any:
    """The live members of a folder (``_LIST_COLUMNS``), by name."""
    query = (
        select(*_LIST_COLUMNS)
        .outerjoin(FileVersion, FileVersion.id == Node.current_version_id)
        .where(Node.parent_id == folder_id, Node.trashed_at.is_(None))
        .order_by(Node.name)
    )
    if after is not None:
        query = query.where(Node.name > after)
    if limit is not None:
        query = query.limit(limit + 1)
    return query


def _members(
    rows: Sequence[Any], folder_id: int, folder_path: str, limit: int | None
) -> tuple[list[NodeInfo], bool]:
    """``NodeInfo`` of member rows: the rule of ``core.member`` (ETag: ``lookup.node_etag``),
    with rows unpacked as tuples rather than read by column name (three times faster for a
    big folder)."""
    more = limit is not None and len(rows) > limit
    prefix = folder_path.rstrip("/") + "/"
    out = []
    append = out.append
    for nid, uid, name, is_dir, vid, mtime, created, status, size, chash in rows[:limit]:
        append(
            NodeInfo(
                nid,
                uid,
                folder_id,
                name,
                prefix + name,
                is_dir,
                size or 0,
                chash,
                vid,
                node_etag(nid, is_dir, vid, mtime),
                shown_mtime(mtime),
                created,
                status,
            )
        )
    return out, more
