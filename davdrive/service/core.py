"""The drive's shared primitives (DriveCore) and the small helpers its parts use.

Paths are account-relative strings ("/", "/docs/a.txt"), already URL-decoded. Every
mutation is one short transaction (``DriveCore.mutation``) that locks the account row
(serialising the account's writers on SQLite and PostgreSQL alike), bumps its journal sequence
and appends its ``change`` rows; the bus hears of it after the commit.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from davdrive.blockstore.keys import AccountKeys, KeyRing
from davdrive.blockstore.store import BlockStore
from davdrive.config import DEFAULT_QUOTA, MAX_FILE_SIZE
from davdrive.errors import (
    Conflict,
    NotFound,
    ParentNotFound,
    PreconditionFailed,
    QuotaExceeded,
)
from davdrive.metadata.db import Database
from davdrive.metadata.fast_reads import connection_of, prepared
from davdrive.metadata.schema import (
    Block,
    Change,
    FileVersion,
    Node,
    User,
    VersionBlock,
)
from davdrive.metadata.shares import ShareRow, mounts_of, node_place, share_by_id
from davdrive.notify.base import Bus
from davdrive.notify.memory import MemoryBus
from davdrive.service import access, fanout
from davdrive.service.access import Perm
from davdrive.service.fanout import Echo, change_row
from davdrive.service.locks import check_write
from davdrive.service.lookup import TOUCH_UP, find
from davdrive.service.paths import join, parent_and_name, split_path
from davdrive.service.references import referenced_keys
from davdrive.service.timestamps import shown_mtime
from davdrive.service.types import (
    NodeInfo,
    Principal,
)

IN_BATCH = 500  # bound for IN (...) lists

_CHILD = select(Node).where(
    Node.parent_id == bindparam("parent"),
    Node.name == bindparam("name"),
    Node.trashed_at.is_(None),
)

_LOCK_ACCOUNT = select(User).where(User.id == bindparam("uid")).with_for_update()

LOST = "lost"  # block.tier of a block whose object fsck found missing or damaged
_HAS_BLOCK = prepared(
    select(Block.object_key, Block.inline_data.is_not(None).label("inline")).where(
        Block.user_id == bindparam("uid"), Block.hash == bindparam("hash"), Block.tier != LOST
    )
)

_ROOT_ID = select(User.root_id).where(User.id == bindparam("uid"))

_ACCOUNT_ROW = prepared(
    select(User.login, User.quota_bytes, User.used_bytes, User.change_seq, User.shares_out)
    .where(User.id == bindparam("uid"))
    .with_for_update()
)

_SAVE_ACCOUNT = prepared(
    update(User)
    .where(User.id == bindparam("uid"))
    .values(used_bytes=bindparam("used"), change_seq=bindparam("seq"))
)

_INSERT_CHANGE = prepared(insert(Change))

MEMBER_COLUMNS = (
    Node.id,
    Node.user_id,
    Node.parent_id,
    Node.name,
    Node.is_dir,
    Node.current_version_id,
    Node.mtime,
    Node.created_at,
    Node.status,
    FileVersion.size,
    FileVersion.content_hash,
)


def member(row: Any, parent_id: int | None, path: str) -> NodeInfo:
    """A ``NodeInfo`` from a row of ``MEMBER_COLUMNS``."""
    if row.is_dir:
        etag = f"d{row.id:x}-{int(shown_mtime(row.mtime) * 1000):x}"
    elif row.current_version_id is None:
        etag = f"p{row.id:x}"
    else:
        etag = f"{row.id:x}-{row.current_version_id:x}"
    return NodeInfo(
        row.id,
        row.user_id,
        parent_id,
        row.name,
        path,
        row.is_dir,
        row.size or 0,
        row.content_hash,
        row.current_version_id,
        etag,
        shown_mtime(row.mtime),
        row.created_at,
        row.status,
    )


@dataclass(frozen=True)
class Expect:
    """A precondition on the node an operation acts on: its ETag (If-Match) and/or its current
    revision (``if_rev``); ``PreconditionFailed`` when it moved on."""

    etag: str | None = None
    rev: int | None = None


def check_expect(node: Node, expect: Expect | None) -> None:
    if expect is None:
        return
    if expect.etag is not None and expect.etag not in ("*", etag(node)):
        raise PreconditionFailed("the item changed since that version")
    if expect.rev is not None and expect.rev != node.current_version_id:
        raise PreconditionFailed("the file's current revision is not the one expected")


def etag(node: Node) -> str:
    if node.is_dir:
        return f"d{node.id:x}-{int(shown_mtime(node.mtime) * 1000):x}"
    if node.current_version_id is None:
        return f"p{node.id:x}"
    return f"{node.id:x}-{node.current_version_id:x}"


class AccountWrite:
    """An account row locked for one mutation on the session's connection (no ORM object):
    quota charges and journal rows accumulate here and ``save`` writes the row back once.
    The hot write path (a small PUT) uses it; it is the same rule as ``lock_account`` +
    ``charge`` + ``journal``."""

    def __init__(self, s: Session, user_id: int, row: Any = None) -> None:
        """Lock and read the row, or take ``row`` (``login``, ``quota_bytes``, ``used_bytes``,
        ``change_seq``) that the caller's own statement read and locked."""
        self.session = s
        self.conn = connection_of(s)
        if row is None:
            row = self.conn.execute(_ACCOUNT_ROW, {"uid": user_id}).first()
        if row is None or row.login is None:
            raise NotFound("no such account")
        self.id = user_id
        self.login: str = row.login
        self.quota: int = row.quota_bytes
        self.used: int = row.used_bytes
        self.seq: int = row.change_seq
        self.shares_out: int = row.shares_out
        self._start = (self.used, self.seq)

    def charge(self, delta: int) -> None:
        """``QuotaExceeded`` when growing by ``delta`` passes the quota."""
        if delta > 0 and self.used + delta > self.quota:
            raise QuotaExceeded(f"quota exceeded: {self.used} + {delta} > {self.quota} bytes")
        self.used += delta

    def journal(
        self,
        p: Principal,
        kind: str,
        path: str,
        *,
        node_id: int | None,
        version_id: int | None,
        is_dir: bool,
        from_path: str | None = None,
    ) -> None:
        """Append a change row, and the rows of the recipients of shares that cover it (the
        bus hears of them after the commit)."""
        self.seq += 1
        self.session.info.setdefault("journal", {})[self.id] = self.seq
        change = Echo(kind, path, from_path, node_id, version_id, p.device_id, is_dir)
        self.conn.execute(_INSERT_CHANGE, change_row(self.id, self.seq, change))
        fanout.echo(self.conn, self.session.info, self.id, self.shares_out, change)

    def save(self) -> None:
        """Write quota use and journal sequence back (nothing if neither changed)."""
        if (self.used, self.seq) != self._start:
            self.conn.execute(_SAVE_ACCOUNT, {"uid": self.id, "used": self.used, "seq": self.seq})


def _same(path: str) -> str:
    return path


def key_context(user_id: int) -> bytes:
    return b"davdrive account data key:%d" % user_id


class DriveCore:
    """The primitives every part of the drive shares: transactions that publish to the bus,
    account keys, path resolution, journal rows, quota charges and the lock rule."""

    def __init__(
        self,
        db: Database,
        store: BlockStore,
        keyring: KeyRing,
        *,
        default_quota: int = DEFAULT_QUOTA,
        max_file_size: int = MAX_FILE_SIZE,
        bus: Bus | None = None,
    ) -> None:
        self.db = db
        self.bus = bus if bus is not None else MemoryBus()
        self.store = store
        self.keyring = keyring
        self.default_quota = default_quota
        self.max_file_size = max_file_size
        # Immutable per-account facts (derived keys, root id) may be cached safely: ids are
        # never reused (AUTOINCREMENT), so a deleted account's entry is never hit by another.
        self.keys_cache: dict[int, AccountKeys] = {}
        self.roots_cache: dict[int, int] = {}
        self.logins_cache: dict[int, str] = {}
        self.cache_lock = threading.Lock()

    @contextmanager
    def mutation(self) -> Iterator[Session]:
        """A write transaction; after it commits, the bus hears of each account's new seq."""
        with self.db.write() as s:
            s.info["journal"] = {}
            yield s
            touched = dict(s.info["journal"])
        for account_id, seq in touched.items():
            self.bus.publish(account_id, seq)

    def account_keys(self, user_id: int) -> AccountKeys:
        with self.cache_lock:
            keys = self.keys_cache.get(user_id)
        if keys is None:
            with self.db.read() as s:
                user = s.get(User, user_id)
                if user is None:
                    raise NotFound("no such account")
                data_key = self.keyring.unwrap(
                    user.wrap_key_id, user.wrapped_key, key_context(user.id)
                )
                keys = AccountKeys.from_data_key(data_key, user.data_key_id)
            with self.cache_lock:
                self.keys_cache[user_id] = keys
        return keys

    def has_block(self, user_id: int, block_hash: str, *, as_object: bool = False) -> bool:
        """Whether the account holds this block (dedup may skip storing it): a block row that
        fsck has not marked lost, kept inline or whose object is still in the store. A block
        whose object went missing is stored again by the next upload that contains it.
        ``as_object``: only an object counts (a caller that reads the block back by its key)."""
        with self.db.read_conn(snapshot=False) as conn:
            row = conn.execute(_HAS_BLOCK, {"uid": user_id, "hash": block_hash}).first()
        if row is None:
            return False
        if row.inline and not as_object:
            return True
        return self.store.has_object(row.object_key)

    def reclaim(self, owner_id: int, object_keys: Iterable[str]) -> int:
        """Delete the objects among ``object_keys`` that nothing refers to (the blocks of an
        upload that was refused or aborted, or freed by a purge); returns how many.

        Runs under the account's row lock, so no commit of the account can adopt an object
        while it goes; a commit that stored the same block meanwhile finds it gone and asks
        its client to retry (``Content.commit_version`` checks its new blocks)."""
        keys = set(object_keys)
        if not keys:
            return 0
        with self.db.write() as s:
            with contextlib.suppress(NotFound):
                self.lock_account(s, owner_id)
            unused = sorted(keys - referenced_keys(s, keys))
            for key in unused:
                self.store.delete_object(key)
        return len(unused)

    def drop_unused_blocks(self, s: Session, block_ids: Iterable[int]) -> list[str]:
        """Inside a write transaction: delete the block rows among ``block_ids`` that no version
        uses any more; return their object keys, for ``reclaim`` once the transaction has
        committed (deleting objects before would lose data if the transaction rolled back)."""
        ids = sorted(set(block_ids))
        freed: list[str] = []
        for i in range(0, len(ids), IN_BATCH):
            batch = ids[i : i + IN_BATCH]
            used = select(VersionBlock.block_id).where(VersionBlock.block_id.in_(batch))
            rows = s.execute(
                select(Block.id, Block.object_key).where(Block.id.in_(batch), Block.id.not_in(used))
            ).all()
            if rows:
                s.execute(delete(Block).where(Block.id.in_([r.id for r in rows])))
                freed += [r.object_key for r in rows]
        return freed

    def authorize(self, p: Principal, write: bool = False) -> int:
        """Return the account whose namespace ``p`` acts on, as the access rule grants it."""
        return access.grant(p, Perm.WRITE if write else Perm.READ).owner_id

    def mounts(self, conn: Connection, p: Principal) -> list[ShareRow]:
        """The shares ``p`` received (one indexed read; a link's holder has none)."""
        if p.link is not None or not p.has_mounts:
            return []
        return mounts_of(conn, p.user_id)

    def target(self, p: Principal, path: str | list[str], need: Perm = Perm.READ) -> access.Target:
        """Where ``path`` of ``p``'s view lands, by the access rule (``service.access``);
        ``PermissionDenied`` when ``need`` is not granted there."""
        parts = split_path(path) if isinstance(path, str) else path
        if p.link is None and not p.has_mounts:  # its own home, every right: no connection
            return access.Target(p.user_id, join(parts), access.OWNER)
        with self.db.read_conn(snapshot=False) as conn:
            mounts = self.mounts(conn, p)
            t = access.target(p, parts, mounts, lambda nid: node_place(conn, nid))
        t.require(need)
        return t

    def node_perms(self, conn: Connection, p: Principal, owner_id: int, node_id: int) -> Perm:
        """What ``p`` may do to a node known by id (a revision, a property, a trash item):
        everything in its own tree, the share's rights inside a live share it received,
        nothing elsewhere. Doors answer ``NotFound`` for nothing, so ids leak nothing."""
        if p.link is not None:
            place = node_place(conn, node_id)
            if place is None or not place.live or p.link.node_id not in place.ancestry:
                return Perm.NONE
            return access.LINK_PERMS[p.link.kind] if owner_id == p.user_id else Perm.NONE
        if owner_id == p.user_id:
            return access.OWNER
        mounts = [m for m in self.mounts(conn, p) if m.owner_id == owner_id]
        if not mounts:
            return Perm.NONE
        place = node_place(conn, node_id)
        if place is None or not place.live or place.owner_id != owner_id:
            return Perm.NONE
        depth = {nid: i for i, nid in enumerate(place.ancestry)}
        best = max(
            (m for m in mounts if m.node_id in depth), key=lambda m: depth[m.node_id], default=None
        )
        return Perm(best.perms) if best is not None else Perm.NONE

    def free_target(self, p: Principal, t: access.Target, *, folder: bool = False) -> access.Target:
        """For a holder who may only add (a drop link): the target itself when its name is
        free, else the first free "name (2).ext", "name (3).ext" ("name (2)" for a folder)
        beside it, so nothing is overwritten and nothing tells what exists."""
        parent_parts, name = parent_and_name(t.path)
        stem, dot, ext = name.rpartition(".")
        if folder or not dot or not stem:
            stem, dot, ext = name, "", ""
        with self.db.read_conn(snapshot=False) as conn:
            root = self.root_id(conn, t.owner_id)
            candidate, n = name, 1
            while n < 10000:
                row = find(conn, root, parent_parts, candidate)
                if row is None or row.c_id is None:
                    break
                n += 1
                candidate = f"{stem} ({n}){dot}{ext}"
        return self.target(p, t.shown(join([*parent_parts, candidate])), Perm.NONE)

    def lock_views(self, p: Principal) -> list[tuple[str, str, str]]:
        """Where ``p`` sees nodes of other trees: ``(path in p's view, owner login, owner
        path)`` for each live share it received, or the root of its link. Locks taken through
        such a path are kept under the owner's URL (``service.locks.LockView``)."""
        if p.link is None and not p.has_mounts:
            return []
        out = []
        with self.db.read_conn() as conn:
            if p.link is not None:
                wanted = [("/", p.user_id, p.link.node_id)]
            else:
                wanted = [(m.mount_path, m.owner_id, m.node_id) for m in mounts_of(conn, p.user_id)]
            for view, owner_id, node_id in wanted:
                place = node_place(conn, node_id)
                if place is not None and place.live and place.owner_id == owner_id:
                    out.append((view, self.login_of(conn, owner_id), place.path))
        return out

    def node_id_at(self, p: Principal, path: str) -> int:
        """The id of the node ``path`` names in ``p``'s view (``NotFound``)."""
        t = self.target(p, path)
        with self.db.read() as s:
            return self.at(s, t)[0].id

    def recheck(self, s: Session | Connection, t: access.Target) -> None:
        """Inside a write transaction (after the owner's account row is locked): the share
        ``t`` went through still exists, with the rights it had, and its node is still where
        it was; otherwise ``Conflict`` (the request raced a revocation or a move: retry)."""
        if t.view is None:
            return
        conn = s.connection() if isinstance(s, Session) else s
        if t.share is None:  # a link: its node is still where it was
            place = node_place(conn, t.node_id) if t.node_id is not None else None
            if place is None or not place.live or place.path != t.base:
                raise Conflict("the shared item moved while this request ran; try again")
            return
        share = share_by_id(conn, t.share.id)
        place = node_place(conn, t.share.node_id)
        if (
            share is None
            or share.perms != t.share.perms
            or place is None
            or not place.live
            or place.path != t.base
        ):
            raise Conflict("the share changed while this request ran; try again")

    def login_of(self, s: Session | Connection, user_id: int) -> str:
        """An account's login (immutable, like its root id: cached)."""
        with self.cache_lock:
            login = self.logins_cache.get(user_id)
        if login is None:
            login = s.scalar(select(User.login).where(User.id == user_id))
            if login is None:
                raise NotFound("no such account")
            with self.cache_lock:
                self.logins_cache[user_id] = login
        return login

    def root_id(self, s: Session, user_id: int) -> int:
        with self.cache_lock:
            root = self.roots_cache.get(user_id)
        if root is None:
            root = s.scalar(_ROOT_ID, {"uid": user_id})
            if root is None:
                raise NotFound("no such account")
            with self.cache_lock:
                self.roots_cache[user_id] = root
        return root

    def child(self, s: Session, parent_id: int, name: str) -> Node | None:
        return s.scalars(_CHILD, {"parent": parent_id, "name": name}).first()

    def resolve(self, s: Session, owner_id: int, parts: list[str]) -> Node | None:
        node = s.get(Node, self.root_id(s, owner_id))
        for part in parts:
            if node is None or not node.is_dir:
                return None
            node = self.child(s, node.id, part)
        return node

    def resolve_dir(
        self, s: Session, owner_id: int, parts: list[str], t: access.Target | None = None
    ) -> Node:
        """The folder at ``parts``: ``ParentNotFound`` if missing, ``Conflict`` if a file
        (messages name the path as ``t``'s principal sees it)."""
        node = self.resolve(s, owner_id, parts)
        shown = t.shown if t is not None else _same
        if node is None:
            raise ParentNotFound(f"folder {shown(join(parts))} does not exist")
        if not node.is_dir:
            raise Conflict(f"{shown(join(parts))} is a file")
        return node

    def require(
        self, s: Session, owner_id: int, path: str, t: access.Target | None = None
    ) -> tuple[Node, list[str]]:
        """The node at ``path`` of ``owner_id``'s tree and its components; ``NotFound``."""
        parts = split_path(path)
        node = self.resolve(s, owner_id, parts)
        if node is None:
            raise NotFound(f"{(t.shown if t is not None else _same)(join(parts))} not found")
        return node, parts

    def at(self, s: Session, t: access.Target) -> tuple[Node, list[str]]:
        """The node ``t`` addresses, in the owner's tree, and its (owner) components."""
        return self.require(s, t.owner_id, t.path, t)

    def locked_at(self, s: Session, t: access.Target) -> tuple[User, Node, list[str]]:
        """For a mutation: lock the owner's account row, recheck the share ``t`` went
        through, and resolve the node it addresses."""
        user = self.lock_account(s, t.owner_id)
        self.recheck(s, t)
        node, parts = self.at(s, t)
        return user, node, parts

    def info(
        self, s: Session, node: Node, path: str, version: FileVersion | None = None
    ) -> NodeInfo:
        if not node.is_dir and version is None and node.current_version_id is not None:
            version = s.get(FileVersion, node.current_version_id)
        return NodeInfo(
            id=node.id,
            owner_id=node.user_id,
            parent_id=node.parent_id,
            name=node.name,
            path=path,
            is_dir=node.is_dir,
            size=version.size if version is not None else 0,
            content_hash=version.content_hash if version is not None else None,
            version_id=node.current_version_id,
            etag=etag(node),
            mtime=shown_mtime(node.mtime),
            created=node.created_at,
            status=node.status,
        )

    def lock_account(self, s: Session, owner_id: int) -> User:
        user = s.scalars(_LOCK_ACCOUNT, {"uid": owner_id}).first()
        if user is None:
            raise NotFound("no such account")
        return user

    def journal(
        self,
        s: Session,
        user: User,
        p: Principal,
        kind: str,
        node: Node | None,
        path: str,
        *,
        from_path: str | None = None,
    ) -> None:
        if node is not None and node.id is None:
            s.flush()
        user.change_seq += 1
        s.info.setdefault("journal", {})[user.id] = user.change_seq
        change = Echo(
            kind,
            path,
            from_path,
            node.id if node is not None else None,
            node.current_version_id if node is not None else None,
            p.device_id,
            node.is_dir if node is not None else False,
        )
        conn = s.connection()
        conn.execute(_INSERT_CHANGE, change_row(user.id, user.change_seq, change))
        if user.shares_out:
            s.flush()  # the recipients' rows are bumped on the same connection
            fanout.echo(conn, s.info, user.id, user.shares_out, change)

    def charge(self, user: User, delta: int) -> None:
        if delta > 0 and user.used_bytes + delta > user.quota_bytes:
            raise QuotaExceeded(
                f"quota exceeded: {user.used_bytes} + {delta} > {user.quota_bytes} bytes"
            )
        user.used_bytes += delta

    @staticmethod
    def guard(
        s: Session,
        user: User,
        p: Principal,
        *,
        nodes: Iterable[str] = (),
        trees: Iterable[str] = (),
    ) -> None:
        """The lock rule (``service.locks.check_write``) for a write to ``user``'s tree."""
        check_write(s, user.login, p.lock_tokens, nodes=nodes, trees=trees, who=p.login)

    def subtree_ids(self, s: Session, node_id: int):  # noqa: ANN202 - a SQL subquery
        tree = select(Node.id).where(Node.id == node_id).cte("subtree", recursive=True)
        tree = tree.union_all(
            select(Node.id).where(Node.parent_id == tree.c.id, Node.trashed_at.is_(None))
        )
        return select(tree.c.id)

    def subtree_size(self, s: Session, node_id: int) -> int:
        return int(
            s.scalar(
                select(func.coalesce(func.sum(FileVersion.size), 0))
                .select_from(Node)
                .join(FileVersion, FileVersion.id == Node.current_version_id)
                .where(Node.id.in_(self.subtree_ids(s, node_id)))
            )
        )

    def touch(self, s: Session, node: Node | None) -> None:
        """A folder's content changed: it and every folder above it get a new mtime, hence a
        new ETag (``lookup.TOUCH_UP``)."""
        if node is None:
            return
        now = time.time()
        node.mtime = max(now, node.mtime + 0.001)
        if node.parent_id is not None:
            s.connection().execute(TOUCH_UP, {"nid": node.parent_id, "now": now})

    def live_path(self, s: Session, node: Node) -> list[str] | None:
        """Components of a node's path if it and all its ancestors are live, else None."""
        parts: list[str] = []
        cur: Node | None = node
        while cur is not None and cur.parent_id is not None:
            if cur.trashed_at is not None:
                return None
            parts.append(cur.name)
            cur = s.get(Node, cur.parent_id)
        return parts[::-1] if cur is not None else None
