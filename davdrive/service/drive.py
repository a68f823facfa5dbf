"""The drive service: the one entry point every adapter (WebDAV, JSON API, jobs, CLI) calls.

Paths are account-relative strings ("/", "/docs/a.txt"), already URL-decoded. Every call takes
the acting ``Principal`` and checks permission in ``_authorize`` (owners only today; shares slot
in there). Every mutation is one short transaction that locks the account row (serialising the
account's writers on SQLite and PostgreSQL alike), bumps its journal sequence and appends its
``change`` rows.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, BinaryIO

from sqlalchemy import Text, bindparam, delete, func, insert, literal, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from davdrive.blockstore.keys import AccountKeys, KeyRing, new_data_key
from davdrive.blockstore.store import BlockStore, IngestResult
from davdrive.config import DEFAULT_QUOTA, MAX_FILE_SIZE
from davdrive.errors import (
    AlreadyExists,
    BadRequest,
    Conflict,
    FileTooLarge,
    IncompleteUpload,
    NotFound,
    ParentNotFound,
    PermissionDenied,
    PreconditionFailed,
    QuotaExceeded,
)
from davdrive.metadata.db import Database
from davdrive.metadata.schema import (
    Block,
    Change,
    DeadProperty,
    Device,
    FileVersion,
    Node,
    User,
    VersionBlock,
)
from davdrive.metadata.upsert import insert_ignore
from davdrive.notify.base import Bus, MemoryBus
from davdrive.service import access
from davdrive.service.access import Perm
from davdrive.service.fsck import FsckReport
from davdrive.service.fsck import fsck as run_fsck
from davdrive.service.locks import check_write, drop_locks
from davdrive.service.paths import check_name, join, parent_and_name, split_path
from davdrive.service.types import (
    AccountOverview,
    NodeInfo,
    Principal,
    TrashItem,
    Usage,
    VersionInfo,
)

IN_BATCH = 500  # bound for IN (...) lists
# A file created where the account's file was moved away or deleted this many seconds before
# continues that file's history (editors save by rename: vim's x -> x~, PUT x, DELETE x~).
HANDOVER_WINDOW = 120.0
HANDOVER_SCAN = 1000  # journal rows looked back at (bounded, by primary key)
# An empty version this young is a placeholder (LOCK on a new name, Explorer's 0-byte PUT before
# the real one): the next version of the file replaces it instead of stacking on it.
PLACEHOLDER_WINDOW = 60.0

# Hot statements are built once: constructing a SQLAlchemy select costs ~100 us per call here,
# several times what SQLite needs to run it (measured; see docs/PERFORMANCE.md).
_CHILD = select(Node).where(
    Node.parent_id == bindparam("parent"),
    Node.name == bindparam("name"),
    Node.trashed_at.is_(None),
)
_LOCK_ACCOUNT = select(User).where(User.id == bindparam("uid")).with_for_update()
_HAS_BLOCK = select(Block.id).where(
    Block.user_id == bindparam("uid"), Block.hash == bindparam("hash")
)
_BLOCK_IDS = select(Block.hash, Block.id).where(
    Block.user_id == bindparam("uid"), Block.hash.in_(bindparam("hashes", expanding=True))
)
_ROOT_ID = select(User.root_id).where(User.id == bindparam("uid"))
_VERSION_SIZE = select(FileVersion.size).where(FileVersion.id == bindparam("vid"))
_VERSION_HEAD = select(FileVersion.size, FileVersion.created_at, FileVersion.pinned).where(
    FileVersion.id == bindparam("vid")
)
_DROP_VERSION = delete(FileVersion).where(FileVersion.id == bindparam("vid"))
_INSERT_NODE = insert(Node).returning(Node.id)
_INSERT_VERSION = insert(FileVersion).returning(FileVersion.id)
_INSERT_VERSION_BLOCK = insert(VersionBlock)
_INSERT_CHANGE = insert(Change)
_SET_CURRENT = (
    update(Node)
    .where(Node.id == bindparam("nid"))
    .values(current_version_id=bindparam("vid"), status="ok", mtime=bindparam("mtime"))
)


_MEMBER_COLUMNS = (
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


def _member(row: Any, parent_id: int | None, path: str) -> NodeInfo:
    """A ``NodeInfo`` from a row of ``_MEMBER_COLUMNS``."""
    if row.is_dir:
        etag = f"d{row.id:x}-{int(row.mtime * 1000):x}"
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
        row.mtime,
        row.created_at,
        row.status,
    )


@dataclass(frozen=True)
class Expect:
    """A precondition on the node an operation acts on: its ETag (If-Match) and/or its current
    revision (``if_rev``); ``PreconditionFailed`` when it moved on."""

    etag: str | None = None
    rev: int | None = None


def _check_expect(node: Node, expect: Expect | None) -> None:
    if expect is None:
        return
    if expect.etag is not None and expect.etag not in ("*", _etag(node)):
        raise PreconditionFailed("the item changed since that version")
    if expect.rev is not None and expect.rev != node.current_version_id:
        raise PreconditionFailed("the file's current revision is not the one expected")


def _etag(node: Node) -> str:
    if node.is_dir:
        return f"d{node.id:x}-{int(node.mtime * 1000):x}"
    if node.current_version_id is None:
        return f"p{node.id:x}"
    return f"{node.id:x}-{node.current_version_id:x}"


_VACATED = (
    select(Change.node_id)
    .where(
        Change.user_id == bindparam("uid"),
        Change.seq > bindparam("min_seq"),
        Change.at >= bindparam("since"),
        Change.is_dir.is_(False),
        (
            ((Change.kind == "moved") & (Change.from_path == bindparam("path")))
            | ((Change.kind == "deleted") & (Change.path == bindparam("path")))
        ),
    )
    .order_by(Change.seq.desc())
    .limit(1)
)


def _key_context(user_id: int) -> bytes:
    return b"davdrive account data key:%d" % user_id


class Upload:
    """A file body being received. Nothing is visible to readers until ``commit``.

    ``write`` streams into the block pipeline (bounded memory); it raises ``FileTooLarge`` or
    ``QuotaExceeded`` as soon as the bytes received pass the limits known at ``begin_upload``.
    """

    def __init__(
        self,
        drive: Drive,
        p: Principal,
        owner_id: int,
        path: str,
        *,
        expected_etag: str | None,
        create_only: bool,
        max_bytes: int,
        quota_headroom: int,
    ) -> None:
        self._drive = drive
        self._p = p
        self._owner_id = owner_id
        self.path = path
        self._expected_etag = expected_etag
        self._create_only = create_only
        self._max_bytes = max_bytes
        self._quota_headroom = quota_headroom
        self.received = 0
        self._done = False
        self._ingest = drive.store.ingest(
            drive._account_keys(owner_id), known=lambda h: drive._has_block(owner_id, h)
        )

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Feed the next piece of the body."""
        if self._done:
            raise BadRequest("upload already finished")
        self.received += len(data)
        if self.received > self._max_bytes:
            self.abort()
            raise FileTooLarge(f"file is larger than {self._max_bytes} bytes")
        if self.received > self._quota_headroom:
            self.abort()
            raise QuotaExceeded("quota exceeded")
        try:
            self._ingest.write(data)
        except BaseException:
            self.abort()
            raise

    def commit(self, *, mtime: float | None = None, expected_size: int | None = None) -> NodeInfo:
        """Make the new version current in one transaction.

        Raises ``IncompleteUpload`` when ``expected_size`` differs from the bytes received,
        ``PreconditionFailed`` when the head moved away from ``expected_etag`` (compare-and-swap
        inside the transaction), ``ParentNotFound`` if the folder vanished meanwhile,
        ``QuotaExceeded`` (atomic check), ``Conflict`` if a folder now stands at the path.
        Blocks written by an upload that does not commit stay as orphans for GC.
        """
        if self._done:
            raise BadRequest("upload already finished")
        if expected_size is not None and expected_size != self.received:
            self.abort()
            raise IncompleteUpload(
                f"received {self.received} of {expected_size} bytes; nothing was saved"
            )
        try:
            result = self._ingest.finish()
        except BaseException:
            self.abort()
            raise
        self._done = True
        return self._drive._commit_version(
            self._p,
            self._owner_id,
            self.path,
            result,
            mtime=mtime,
            expected_etag=self._expected_etag,
            create_only=self._create_only,
        )

    def abort(self) -> None:
        """Discard the upload; idempotent."""
        if not self._done:
            self._done = True
            self._ingest.abort()


class Drive:
    """Tree operations, versions, quota, trash, dead properties, journal, fsck."""

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
        # Immutable per-account facts (derived keys, root id) may be cached safely.
        self._keys: dict[int, AccountKeys] = {}
        self._roots: dict[int, int] = {}
        self._cache_lock = threading.Lock()

    @contextmanager
    def _mutation(self) -> Iterator[Session]:
        """A write transaction; after it commits, the bus hears of each account's new seq."""
        with self.db.write() as s:
            s.info["journal"] = {}
            yield s
            touched = dict(s.info["journal"])
        for account_id, seq in touched.items():
            self.bus.publish(account_id, seq)

    # -- accounts ---------------------------------------------------------------------------------
    def create_account(
        self, login: str, password_hash: str, *, quota: int | None = None, is_admin: bool = False
    ) -> Principal:
        """Create a user with a wrapped data key and an empty root folder. ``AlreadyExists``."""
        now = time.time()
        with self.db.write() as s:
            if s.scalar(select(User.id).where(User.login == login)) is not None:
                raise AlreadyExists(f"user {login!r} exists")
            user = User(
                login=login,
                password_hash=password_hash,
                is_admin=is_admin,
                quota_bytes=self.default_quota if quota is None else quota,
                used_bytes=0,
                wrapped_key=b"",
                wrap_key_id="",
                data_key_id=1,
                change_seq=0,
                created_at=now,
            )
            s.add(user)
            s.flush()
            key_id, wrapped = self.keyring.wrap(new_data_key(), _key_context(user.id))
            user.wrap_key_id, user.wrapped_key = key_id, wrapped
            root = Node(
                user_id=user.id, parent_id=None, name="", is_dir=True, mtime=now, created_at=now
            )
            s.add(root)
            s.flush()
            user.root_id = root.id
            return Principal(user.id, login, None, is_admin)

    def delete_account(self, user_id: int) -> None:
        """Remove a user and all its metadata (its blocks become orphans for GC)."""
        with self.db.write() as s:
            versions = select(FileVersion.id).where(FileVersion.user_id == user_id)
            s.execute(delete(VersionBlock).where(VersionBlock.version_id.in_(versions)))
            s.execute(delete(User).where(User.id == user_id))
        with self._cache_lock:
            self._keys.pop(user_id, None)
            self._roots.pop(user_id, None)

    def principal(self, login: str, device_id: int | None = None) -> Principal:
        """The principal for a login, matched in its canonical (lowercase) form (``NotFound``)."""
        login = login.lower()
        with self.db.read() as s:
            row = s.execute(select(User.id, User.is_admin).where(User.login == login)).first()
        if row is None:
            raise NotFound(f"no user {login!r}")
        return Principal(row.id, login, device_id, row.is_admin)

    def rewrap_keys(self) -> int:
        """Rewrap every account's data key under the keyring's current master key."""
        count = 0
        with self.db.write() as s:
            for user in s.scalars(select(User)):
                if user.wrap_key_id == self.keyring.current_id:
                    continue
                data_key = self.keyring.unwrap(
                    user.wrap_key_id, user.wrapped_key, _key_context(user.id)
                )
                user.wrap_key_id, user.wrapped_key = self.keyring.wrap(
                    data_key, _key_context(user.id)
                )
                count += 1
        return count

    def _account_keys(self, user_id: int) -> AccountKeys:
        with self._cache_lock:
            keys = self._keys.get(user_id)
        if keys is None:
            with self.db.read() as s:
                user = s.get(User, user_id)
                if user is None:
                    raise NotFound("no such account")
                data_key = self.keyring.unwrap(
                    user.wrap_key_id, user.wrapped_key, _key_context(user.id)
                )
                keys = AccountKeys.from_data_key(data_key, user.data_key_id)
            with self._cache_lock:
                self._keys[user_id] = keys
        return keys

    def _has_block(self, user_id: int, block_hash: str) -> bool:
        with self.db.read() as s:
            row = s.connection().execute(_HAS_BLOCK, {"uid": user_id, "hash": block_hash})
            return row.first() is not None

    # -- permission and resolution --------------------------------------------------------------
    def _authorize(self, p: Principal, write: bool = False) -> int:
        """Return the account whose namespace ``p`` acts on, as the access rule grants it."""
        return access.grant(p, Perm.WRITE if write else Perm.READ).owner_id

    def _root_id(self, s: Session, user_id: int) -> int:
        with self._cache_lock:
            root = self._roots.get(user_id)
        if root is None:
            root = s.scalar(_ROOT_ID, {"uid": user_id})
            if root is None:
                raise NotFound("no such account")
            with self._cache_lock:
                self._roots[user_id] = root
        return root

    def _child(self, s: Session, parent_id: int, name: str) -> Node | None:
        return s.scalars(_CHILD, {"parent": parent_id, "name": name}).first()

    def _resolve(self, s: Session, owner_id: int, parts: list[str]) -> Node | None:
        node = s.get(Node, self._root_id(s, owner_id))
        for part in parts:
            if node is None or not node.is_dir:
                return None
            node = self._child(s, node.id, part)
        return node

    def _resolve_dir(self, s: Session, owner_id: int, parts: list[str]) -> Node:
        """The folder at ``parts``: ``ParentNotFound`` if missing, ``Conflict`` if a file."""
        node = self._resolve(s, owner_id, parts)
        if node is None:
            raise ParentNotFound(f"folder {join(parts)} does not exist")
        if not node.is_dir:
            raise Conflict(f"{join(parts)} is a file")
        return node

    def _require(self, s: Session, owner_id: int, path: str) -> tuple[Node, list[str]]:
        parts = split_path(path)
        node = self._resolve(s, owner_id, parts)
        if node is None:
            raise NotFound(f"{join(parts)} not found")
        return node, parts

    def _info(
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
            etag=_etag(node),
            mtime=node.mtime,
            created=node.created_at,
            status=node.status,
        )

    # -- journal and quota -----------------------------------------------------------------------
    def _lock_account(self, s: Session, owner_id: int) -> User:
        user = s.scalars(_LOCK_ACCOUNT, {"uid": owner_id}).first()
        if user is None:
            raise NotFound("no such account")
        return user

    def _journal(
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
        s.connection().execute(
            _INSERT_CHANGE,
            {
                "user_id": user.id,
                "seq": user.change_seq,
                "node_id": node.id if node is not None else None,
                "kind": kind,
                "path": path,
                "from_path": from_path,
                "version_id": node.current_version_id if node is not None else None,
                "device_id": p.device_id,
                "is_dir": node.is_dir if node is not None else False,
                "at": time.time(),
            },
        )

    def _charge(self, user: User, delta: int) -> None:
        if delta > 0 and user.used_bytes + delta > user.quota_bytes:
            raise QuotaExceeded(
                f"quota exceeded: {user.used_bytes} + {delta} > {user.quota_bytes} bytes"
            )
        user.used_bytes += delta

    @staticmethod
    def _guard(
        s: Session,
        user: User,
        p: Principal,
        *,
        nodes: Iterable[str] = (),
        trees: Iterable[str] = (),
    ) -> None:
        """The lock rule (``service.locks.check_write``) for a write to ``user``'s tree."""
        check_write(s, user.login, p.lock_tokens, nodes=nodes, trees=trees)

    def _subtree_ids(self, s: Session, node_id: int):  # noqa: ANN202 - a SQL subquery
        tree = select(Node.id).where(Node.id == node_id).cte("subtree", recursive=True)
        tree = tree.union_all(
            select(Node.id).where(Node.parent_id == tree.c.id, Node.trashed_at.is_(None))
        )
        return select(tree.c.id)

    def _subtree_size(self, s: Session, node_id: int) -> int:
        return int(
            s.scalar(
                select(func.coalesce(func.sum(FileVersion.size), 0))
                .select_from(Node)
                .join(FileVersion, FileVersion.id == Node.current_version_id)
                .where(Node.id.in_(self._subtree_ids(s, node_id)))
            )
        )

    def _touch(self, node: Node | None) -> None:
        if node is not None:
            node.mtime = max(time.time(), node.mtime + 0.001)

    # -- namespace --------------------------------------------------------------------------------
    def stat(self, p: Principal, path: str) -> NodeInfo:
        """``NotFound`` if nothing lives at path (``BadRequest`` for hostile paths)."""
        owner = self._authorize(p)
        with self.db.read() as s:
            node, parts = self._require(s, owner, path)
            return self._info(s, node, join(parts))

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
        ``limit``: ``(members, has_more)``. ``Conflict`` if it is a file."""
        owner = self._authorize(p)
        with self.db.read() as s:
            node, parts = self._require(s, owner, path)
            if not node.is_dir:
                raise Conflict(f"{join(parts)} is not a folder")
            query = (
                select(*_MEMBER_COLUMNS)
                .outerjoin(FileVersion, FileVersion.id == Node.current_version_id)
                .where(Node.parent_id == node.id, Node.trashed_at.is_(None))
                .order_by(Node.name)
            )
            if after is not None:
                query = query.where(Node.name > after)
            if limit is not None:
                query = query.limit(limit + 1)
            # Plain columns, not ORM entities: a folder of 5,000 members loads in a few ms.
            rows = s.execute(query).all()
        more = limit is not None and len(rows) > limit
        prefix = join(parts).rstrip("/")
        return [_member(row, node.id, f"{prefix}/{row.name}") for row in rows[:limit]], more

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
        owner = self._authorize(p)
        with self.db.read() as s:
            node, parts = self._require(s, owner, path)
            if not node.is_dir:
                raise Conflict(f"{join(parts)} is not a folder")
            seq = s.scalar(select(User.change_seq).where(User.id == owner)) or 0
            prefix = join(parts).rstrip("/")
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
                select(*_MEMBER_COLUMNS, tree.c.path)
                .join(Node, Node.id == tree.c.id)
                .outerjoin(FileVersion, FileVersion.id == Node.current_version_id)
                .where(tree.c.id != node.id)
                .order_by(key)
                .limit(limit + 1)
            )
            if after is not None:
                query = query.where(key > after)
            rows = s.execute(query).all()
        entries = [_member(row, row.parent_id, row.path) for row in rows[:limit]]
        return entries, len(rows) > limit, seq

    def mkdir(self, p: Principal, path: str) -> NodeInfo:
        """``AlreadyExists`` if anything lives there; ``ParentNotFound`` without a parent."""
        owner = self._authorize(p, write=True)
        parent_parts, name = parent_and_name(path)
        now = time.time()
        with self._mutation() as s:
            user = self._lock_account(s, owner)
            parent = self._resolve_dir(s, owner, parent_parts)
            if self._child(s, parent.id, name) is not None:
                raise AlreadyExists(f"{join([*parent_parts, name])} exists")
            self._guard(s, user, p, nodes=[join(parent_parts), join([*parent_parts, name])])
            node = Node(
                user_id=owner,
                parent_id=parent.id,
                name=name,
                is_dir=True,
                mtime=now,
                created_at=now,
            )
            s.add(node)
            self._touch(parent)
            s.flush()
            full = join([*parent_parts, name])
            self._journal(s, user, p, "created", node, full)
            return self._info(s, node, full)

    def begin_upload(
        self,
        p: Principal,
        path: str,
        *,
        expected_etag: str | None = None,
        create_only: bool = False,
        declared_size: int | None = None,
    ) -> Upload:
        """Check the parent, permission, size and quota up front (before the body), then stream.

        ``expected_etag``: the write must replace exactly that version (If-Match / base_rev);
        ``"*"`` means "must exist". ``create_only``: fail if the path exists (If-None-Match: *).
        """
        owner = self._authorize(p, write=True)
        parent_parts, name = parent_and_name(path)
        if declared_size is not None and declared_size > self.max_file_size:
            raise FileTooLarge(f"file is larger than {self.max_file_size} bytes")
        with self.db.read() as s:
            parent = self._resolve_dir(s, owner, parent_parts)
            existing = self._child(s, parent.id, name)
            if existing is not None and existing.is_dir:
                raise Conflict(f"{join([*parent_parts, name])} is a folder")
            self._check_preconditions(existing, expected_etag, create_only)
            old = self._info(s, existing, "").size if existing is not None else 0
            user = s.get(User, owner)
            assert user is not None
            target = join([*parent_parts, name])
            self._guard(s, user, p, nodes=[target] if existing else [join(parent_parts), target])
            headroom = user.quota_bytes - user.used_bytes + old
        if declared_size is not None and declared_size > headroom:
            raise QuotaExceeded("the file does not fit in the remaining quota")
        return Upload(
            self,
            p,
            owner,
            join([*parent_parts, name]),
            expected_etag=expected_etag,
            create_only=create_only,
            max_bytes=self.max_file_size,
            quota_headroom=max(headroom, 0),
        )

    @staticmethod
    def _check_preconditions(
        existing: Node | None, expected_etag: str | None, create_only: bool
    ) -> None:
        if create_only and existing is not None:
            raise PreconditionFailed("the file exists")
        if expected_etag is not None:
            if existing is None:
                raise PreconditionFailed("the file does not exist")
            if expected_etag != "*" and expected_etag != _etag(existing):
                raise PreconditionFailed("the file changed since that version")

    def _commit_version(
        self,
        p: Principal,
        owner: int,
        path: str,
        result: IngestResult,
        *,
        mtime: float | None,
        expected_etag: str | None,
        create_only: bool,
        on_commit: Callable[[Session, User, Node], None] | None = None,
    ) -> NodeInfo:
        parent_parts, name = parent_and_name(path)
        now = time.time()
        with self._mutation() as s:
            user = self._lock_account(s, owner)
            parent = self._resolve_dir(s, owner, parent_parts)
            node = self._child(s, parent.id, name)
            if node is not None and node.is_dir:
                raise Conflict(f"{path} is a folder")
            self._check_preconditions(node, expected_etag, create_only)
            self._guard(s, user, p, nodes=[path] if node else [join(parent_parts), path])
            old_size, placeholder = 0, None
            if node is not None and node.current_version_id is not None:
                head = s.execute(_VERSION_HEAD, {"vid": node.current_version_id}).first()
                if head is not None:
                    old_size = head.size
                    if (
                        head.size == 0
                        and not head.pinned
                        and now - head.created_at < PLACEHOLDER_WINDOW
                    ):
                        placeholder = node.current_version_id
            self._charge(user, result.size - old_size)
            block_ids = self._register_blocks(s, owner, result, now)
            created = node is None
            conn = s.connection()  # plain statements below: no unit-of-work flushes
            vtime = mtime if mtime is not None else now
            if node is None:
                node_id = conn.execute(
                    _INSERT_NODE,
                    {
                        "user_id": owner,
                        "parent_id": parent.id,
                        "name": name,
                        "is_dir": False,
                        "status": "ok",
                        "mtime": vtime,
                        "created_at": now,
                    },
                ).scalar_one()
                self._touch(parent)
                vacated = self._vacated(s, user, path)
                if vacated is not None:
                    self._inherit_history(s, vacated, node_id, None)
            else:
                node_id = node.id
            version = FileVersion(
                node_id=node_id,
                user_id=owner,
                size=result.size,
                content_hash=result.sha256,
                mtime=vtime,
                created_at=now,
                author_user_id=p.user_id,
                author_device_id=p.device_id,
                pinned=False,
            )
            version.id = conn.execute(
                _INSERT_VERSION,
                {
                    "node_id": node_id,
                    "user_id": owner,
                    "size": result.size,
                    "content_hash": result.sha256,
                    "mtime": vtime,
                    "created_at": now,
                    "author_user_id": p.user_id,
                    "author_device_id": p.device_id,
                    "pinned": False,
                },
            ).scalar_one()
            if result.blocks:
                conn.execute(
                    _INSERT_VERSION_BLOCK,
                    [
                        {
                            "version_id": version.id,
                            "seq": i,
                            "block_id": block_ids[ref.hash],
                            "offset": ref.offset,
                            "size": ref.size,
                        }
                        for i, ref in enumerate(result.blocks)
                    ],
                )
            conn.execute(_SET_CURRENT, {"nid": node_id, "vid": version.id, "mtime": vtime})
            if placeholder is not None:
                conn.execute(_DROP_VERSION, {"vid": placeholder})
            if node is None:
                node = Node(
                    id=node_id,
                    user_id=owner,
                    parent_id=parent.id,
                    name=name,
                    is_dir=False,
                    created_at=now,
                )
            for attr, value in (
                ("current_version_id", version.id),
                ("status", "ok"),
                ("mtime", vtime),
            ):
                set_committed_value(node, attr, value)
            self._journal(s, user, p, "created" if created else "updated", node, path)
            if on_commit is not None:
                on_commit(s, user, node)
            return self._info(s, node, path, version)

    def _register_blocks(
        self, s: Session, owner: int, result: IngestResult, now: float
    ) -> dict[str, int]:
        """Insert rows for newly stored blocks; return hash -> row id for every block used."""
        new_rows = {}
        for ref in result.blocks:
            if ref.new and ref.hash not in new_rows:
                new_rows[ref.hash] = {
                    "user_id": owner,
                    "hash": ref.hash,
                    "object_key": ref.object_key,
                    "raw_size": ref.size,
                    "stored_size": ref.stored_size,
                    "tier": "hot",
                    "created_at": now,
                    "last_access": now,
                }
        if new_rows:
            insert_ignore(s, Block, list(new_rows.values()), ["user_id", "hash"])
        wanted = sorted({ref.hash for ref in result.blocks})
        ids: dict[str, int] = {}
        for i in range(0, len(wanted), IN_BATCH):
            batch = wanted[i : i + IN_BATCH]
            for row in s.connection().execute(_BLOCK_IDS, {"uid": owner, "hashes": batch}):
                ids[row.hash] = row.id
        if len(ids) != len(wanted):
            # A deduplicated block was collected between the check and the commit: the caller
            # must send the file again (GC's grace period makes this all but impossible).
            raise Conflict("a stored block vanished during the upload; please retry")
        return ids

    def write_file(
        self,
        p: Principal,
        path: str,
        data: bytes | Iterable[bytes] | BinaryIO,
        *,
        mtime: float | None = None,
        expected_etag: str | None = None,
        create_only: bool = False,
    ) -> NodeInfo:
        """Convenience: ``begin_upload`` + write everything + ``commit``."""
        declared = len(data) if isinstance(data, bytes | bytearray | memoryview) else None
        upload = self.begin_upload(
            p,
            path,
            expected_etag=expected_etag,
            create_only=create_only,
            declared_size=declared,
        )
        try:
            if isinstance(data, bytes | bytearray | memoryview):
                view = memoryview(data)
                for i in range(0, len(view), 1 << 20):
                    upload.write(view[i : i + (1 << 20)])
            elif hasattr(data, "read"):
                while chunk := data.read(1 << 20):  # type: ignore[union-attr]
                    upload.write(chunk)
            else:
                for chunk in data:  # type: ignore[union-attr]
                    upload.write(chunk)
        except BaseException:
            upload.abort()
            raise
        return upload.commit(mtime=mtime)

    def open_reader(self, p: Principal, path: str, *, version_id: int | None = None) -> BinaryIO:
        """A seekable reader over the current (or given) version; it has ``.size``; holds no DB
        session. Reading a damaged block raises ``IntegrityError``."""
        owner = self._authorize(p)
        with self.db.read() as s:
            node, parts = self._require(s, owner, path)
            if node.is_dir:
                raise Conflict(f"{join(parts)} is a folder")
            vid = version_id if version_id is not None else node.current_version_id
            version = s.get(FileVersion, vid) if vid is not None else None
            if version is None or version.node_id != node.id:
                raise NotFound("no such version")
            manifest = [
                (row.hash, row.object_key, row.offset, row.size)
                for row in s.execute(
                    select(Block.hash, Block.object_key, VersionBlock.offset, VersionBlock.size)
                    .join(Block, Block.id == VersionBlock.block_id)
                    .where(VersionBlock.version_id == version.id)
                    .order_by(VersionBlock.seq)
                )
            ]
            size = version.size
        return self.store.open_reader(self._account_keys(owner), manifest, size)

    def read_bytes(self, p: Principal, path: str, *, version_id: int | None = None) -> bytes:
        reader = self.open_reader(p, path, version_id=version_id)
        try:
            return reader.read()
        finally:
            reader.close()

    def _vacated(self, s: Session, user: User, path: str) -> int | None:
        """The file node that was moved away from or deleted at ``path`` within the last
        ``HANDOVER_WINDOW`` seconds (the account's journal says so), if any."""
        return s.scalar(
            _VACATED,
            {
                "uid": user.id,
                "min_seq": user.change_seq - HANDOVER_SCAN,
                "since": time.time() - HANDOVER_WINDOW,
                "path": path,
            },
        )

    def _inherit_history(
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
            new_id = self._clone_version(s, None, vid, to_node, 0.0, keep_meta=True)
            if vid == current:
                current = new_id
        if own:
            s.execute(delete(FileVersion).where(FileVersion.id.in_(own)))
        return current

    def _take_destination(
        self,
        s: Session,
        user: User,
        p: Principal,
        owner: int,
        dst_parts: list[str],
        overwrite: bool,
        moving: Node | None,
    ) -> tuple[Node, Node | None]:
        """Resolve the destination's folder and what stands at the destination (None if free,
        or if it is ``moving`` itself); ``PreconditionFailed`` if taken and not ``overwrite``."""
        parent = self._resolve_dir(s, owner, dst_parts[:-1])
        existing = self._child(s, parent.id, dst_parts[-1])
        if existing is None or (moving is not None and existing.id == moving.id):
            return parent, None
        if not overwrite:
            raise PreconditionFailed(f"{join(dst_parts)} exists")
        return parent, existing

    def _replace_content(
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
            vid = self._clone_version(s, p, version_id, target.id, now)
        self._charge(user, new_size - (old.size if old else 0))
        if vid is not None:
            mtime = s.scalar(select(FileVersion.mtime).where(FileVersion.id == vid))
            target.current_version_id, target.mtime, target.status = vid, mtime, "ok"
        s.flush()
        self._journal(s, user, p, "updated", target, path)

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
        owner = self._authorize(p, write=True)
        src_parts, dst_parts = split_path(src), split_path(dst)
        if not src_parts or not dst_parts:
            raise PermissionDenied("the root cannot be moved or replaced")
        if dst_parts[: len(src_parts)] == src_parts:
            if dst_parts == src_parts:
                raise PermissionDenied("source and destination are the same")
            raise Conflict("cannot move a folder into itself")
        if src_parts[: len(dst_parts)] == dst_parts:
            raise Conflict("cannot replace a folder that contains the source")
        src_path, dst_path = join(src_parts), join(dst_parts)
        now = time.time()
        with self._mutation() as s:
            user = self._lock_account(s, owner)
            node = self._resolve(s, owner, src_parts)
            if node is None:
                raise NotFound(f"{src_path} not found")
            _check_expect(node, expect)
            old_parent = s.get(Node, node.parent_id)
            parent, existing = self._take_destination(s, user, p, owner, dst_parts, overwrite, node)
            self._guard(
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
                self._charge(user, -self._subtree_size(s, node.id))
                self._journal(s, user, p, "deleted", node, src_path)
                self._replace_content(s, user, p, existing, node.current_version_id, dst_path, now)
                s.execute(delete(DeadProperty).where(DeadProperty.node_id == node.id))
                s.delete(node)
                self._touch(old_parent)
                drop_locks(s, user.login, src_path)
                return True
            if existing is not None:
                self._trash(s, user, p, existing, dst_path)
                drop_locks(s, user.login, dst_path)
                s.flush()
            vacated = None if existing is not None else self._vacated(s, user, dst_path)
            node.parent_id = parent.id
            node.name = dst_parts[-1]
            self._touch(old_parent)
            self._touch(parent)
            s.flush()
            if vacated is not None and not node.is_dir and vacated != node.id:
                node.current_version_id = self._inherit_history(
                    s, vacated, node.id, node.current_version_id
                )
            self._journal(s, user, p, "moved", node, dst_path, from_path=src_path)
            drop_locks(s, user.login, src_path)
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
        owner = self._authorize(p, write=True)
        src_parts, dst_parts = split_path(src), split_path(dst)
        if not dst_parts:
            raise PermissionDenied("the root cannot be replaced")
        if dst_parts[: len(src_parts)] == src_parts:
            if dst_parts == src_parts:
                raise PermissionDenied("source and destination are the same")
            raise Conflict("cannot copy a folder into itself")
        if src_parts[: len(dst_parts)] == dst_parts:
            raise Conflict("cannot replace a folder that contains the source")
        dst_path = join(dst_parts)
        now = time.time()
        with self._mutation() as s:
            user = self._lock_account(s, owner)
            node = self._resolve(s, owner, src_parts)
            if node is None:
                raise NotFound(f"{join(src_parts)} not found")
            _check_expect(node, expect)
            parent, existing = self._take_destination(s, user, p, owner, dst_parts, overwrite, None)
            self._guard(
                s,
                user,
                p,
                nodes=[join(dst_parts[:-1])],
                trees=[dst_path] if existing is not None else [],
            )
            if existing is not None and not existing.is_dir and not node.is_dir:
                self._replace_content(s, user, p, existing, node.current_version_id, dst_path, now)
                return True
            self._charge(user, self._subtree_size(s, node.id))
            if existing is not None:
                self._trash(s, user, p, existing, dst_path)
                drop_locks(s, user.login, dst_path)
                s.flush()
            self._touch(parent)
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
            twin.current_version_id = self._clone_version(
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
        self._journal(s, user, p, "created", twin, path)
        if node.is_dir:
            children = s.scalars(
                select(Node).where(Node.parent_id == node.id, Node.trashed_at.is_(None))
            ).all()
            for child in children:
                self._copy_tree(s, user, p, child, twin.id, child.name, f"{path}/{child.name}", now)

    def _clone_version(
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

    def _trash(self, s: Session, user: User, p: Principal, node: Node, path: str) -> None:
        self._charge(user, -self._subtree_size(s, node.id))
        node.trashed_at = time.time()
        node.trashed_path = path
        self._touch(s.get(Node, node.parent_id))
        self._journal(s, user, p, "deleted", node, path)

    def delete(self, p: Principal, path: str, *, expect: Expect | None = None) -> None:
        """Move to the trash (restorable). The root cannot be deleted (``PermissionDenied``);
        ``PreconditionFailed`` when ``expect`` does not match the node."""
        owner = self._authorize(p, write=True)
        with self._mutation() as s:
            user = self._lock_account(s, owner)
            node, parts = self._require(s, owner, path)
            if not parts:
                raise PermissionDenied("the root cannot be deleted")
            _check_expect(node, expect)
            self._guard(s, user, p, nodes=[join(parts[:-1])], trees=[join(parts)])
            self._trash(s, user, p, node, join(parts))
            drop_locks(s, user.login, join(parts))

    def set_mtime(self, p: Principal, path: str, mtime: float) -> NodeInfo:
        owner = self._authorize(p, write=True)
        with self._mutation() as s:
            user = self._lock_account(s, owner)
            node, parts = self._require(s, owner, path)
            self._guard(s, user, p, nodes=[join(parts)])
            node.mtime = float(mtime)
            self._journal(s, user, p, "updated", node, join(parts))
            return self._info(s, node, join(parts))

    # -- versions ---------------------------------------------------------------------------------
    def list_versions(
        self, p: Principal, path: str, *, limit: int | None = None, before: int | None = None
    ) -> list[VersionInfo]:
        """Newest first; ``before``: a version id, the page continues after it."""
        owner = self._authorize(p)
        with self.db.read() as s:
            node, parts = self._require(s, owner, path)
            if node.is_dir:
                raise Conflict(f"{join(parts)} is a folder")
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
                    mtime=v.mtime,
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
        owner = self._authorize(p, write=True)
        now = time.time()
        with self._mutation() as s:
            user = self._lock_account(s, owner)
            node, parts = self._require(s, owner, path)
            old = s.get(FileVersion, version_id)
            if node.is_dir or old is None or old.node_id != node.id:
                raise NotFound("no such version of that file")
            self._guard(s, user, p, nodes=[join(parts)])
            current = (
                s.get(FileVersion, node.current_version_id) if node.current_version_id else None
            )
            self._charge(user, old.size - (current.size if current else 0))
            node.current_version_id = self._clone_version(s, p, old.id, node.id, now)
            node.mtime = old.mtime
            self._journal(s, user, p, "restored", node, join(parts))
            return self._info(s, node, join(parts))

    def pin_version(self, p: Principal, path: str, version_id: int, pinned: bool = True) -> None:
        """Mark a version important (pruning keeps it) or clear the mark."""
        owner = self._authorize(p, write=True)
        with self._mutation() as s:
            user = self._lock_account(s, owner)
            node, parts = self._require(s, owner, path)
            version = s.get(FileVersion, version_id)
            if version is None or version.node_id != node.id:
                raise NotFound("no such version of that file")
            if version.pinned != bool(pinned):
                version.pinned = bool(pinned)
                self._journal(s, user, p, "pinned" if pinned else "unpinned", node, join(parts))

    def block_list(
        self, p: Principal, path: str, *, version_id: int | None = None
    ) -> list[tuple[str, int]]:
        """The ordered (block id, size) list of a version: what a delta-sync client diffs."""
        owner = self._authorize(p)
        with self.db.read() as s:
            node, parts = self._require(s, owner, path)
            if node.is_dir:
                raise Conflict(f"{join(parts)} is a folder")
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

    # -- quota and trash --------------------------------------------------------------------------
    def usage(self, p: Principal) -> Usage:
        owner = self._authorize(p)
        with self.db.read() as s:
            row = s.execute(
                select(User.used_bytes, User.quota_bytes).where(User.id == owner)
            ).first()
        if row is None:
            raise NotFound("no such account")
        return Usage(used=row.used_bytes, quota=row.quota_bytes)

    def account_overview(self, p: Principal) -> AccountOverview:
        """Login, quota and what the account's bytes are spent on (logical sizes), plus the
        bytes its blocks take in the store (after dedup, compression and encryption)."""
        owner = self._authorize(p)
        with self.db.read() as s:
            user = s.get(User, owner)
            if user is None:
                raise NotFound("no such account")
            tops = select(Node.id).where(Node.user_id == owner, Node.trashed_at.is_not(None))
            tree = tops.cte("trashed", recursive=True)
            tree = tree.union_all(select(Node.id).where(Node.parent_id == tree.c.id))
            trash = s.scalar(
                select(func.coalesce(func.sum(FileVersion.size), 0))
                .join(Node, Node.current_version_id == FileVersion.id)
                .where(Node.id.in_(select(tree.c.id)))
            )
            history = s.scalar(
                select(func.coalesce(func.sum(FileVersion.size), 0))
                .outerjoin(Node, Node.current_version_id == FileVersion.id)
                .where(FileVersion.user_id == owner, Node.id.is_(None))
            )
            stored = s.scalar(
                select(func.coalesce(func.sum(Block.stored_size), 0)).where(Block.user_id == owner)
            )
            devices = s.scalar(select(func.count()).where(Device.user_id == owner))
            return AccountOverview(
                login=user.login,
                quota=user.quota_bytes,
                used=user.used_bytes,
                history=int(history or 0),
                trash=int(trash or 0),
                stored=int(stored or 0),
                devices=int(devices or 0),
            )

    def list_trash(self, p: Principal) -> list[TrashItem]:
        owner = self._authorize(p)
        with self.db.read() as s:
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
                    size=self._subtree_size(s, n.id),
                    trashed_at=n.trashed_at or 0.0,
                )
                for n in nodes
            ]

    def _live_path(self, s: Session, node: Node) -> list[str] | None:
        """Components of a node's path if it and all its ancestors are live, else None."""
        parts: list[str] = []
        cur: Node | None = node
        while cur is not None and cur.parent_id is not None:
            if cur.trashed_at is not None:
                return None
            parts.append(cur.name)
            cur = s.get(Node, cur.parent_id)
        return parts[::-1] if cur is not None else None

    def restore_trash(self, p: Principal, item_id: int) -> NodeInfo:
        """Restore a trashed file or folder (with its contents) to where it was; a name taken
        meanwhile gets a " (restored)" suffix; a vanished parent restores to the root."""
        owner = self._authorize(p, write=True)
        with self._mutation() as s:
            user = self._lock_account(s, owner)
            node = s.get(Node, item_id)
            if node is None or node.user_id != owner or node.trashed_at is None:
                raise NotFound("no such item in the trash")
            parent = s.get(Node, node.parent_id) if node.parent_id is not None else None
            parent_parts = self._live_path(s, parent) if parent is not None else None
            if parent is None or parent_parts is None:
                parent = s.get(Node, self._root_id(s, owner))
                parent_parts = []
            assert parent is not None
            self._guard(s, user, p, nodes=[join(parent_parts)])
            name, n = node.name, 1
            while self._child(s, parent.id, name) is not None:
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
            self._charge(user, self._subtree_size(s, node.id))
            self._touch(parent)
            path = join([*parent_parts, name])
            self._journal(s, user, p, "restored", node, path)
            return self._info(s, node, path)

    def purge_trash(self, p: Principal, item_id: int | None = None) -> int:
        """Delete one trashed item (or all); returns how many top items were purged."""
        owner = self._authorize(p, write=True)
        with self._mutation() as s:
            self._lock_account(s, owner)
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
                s.execute(delete(VersionBlock).where(VersionBlock.version_id.in_(versions)))
                s.execute(delete(FileVersion).where(FileVersion.node_id.in_(ids)))
                s.execute(delete(DeadProperty).where(DeadProperty.node_id.in_(ids)))
                # Children first is not needed: node.parent_id cascades on delete.
                s.execute(delete(Node).where(Node.id == top.id))
            return len(tops)

    # -- maintenance ------------------------------------------------------------------------------
    def fsck(self, *, repair: bool = False, verify: bool = True) -> FsckReport:
        """Check metadata against stored blocks; see ``davdrive.service.fsck``."""
        return run_fsck(self, repair=repair, verify=verify)

    # -- dead properties --------------------------------------------------------------------------
    def get_dead_props(self, p: Principal, node_ids: Sequence[int]) -> dict[int, dict[str, bytes]]:
        """Property name (Clark notation) -> raw XML value, for many nodes in one query."""
        owner = self._authorize(p)
        out: dict[int, dict[str, bytes]] = {nid: {} for nid in node_ids}
        ids = list(out)
        with self.db.read() as s:
            for i in range(0, len(ids), IN_BATCH):
                rows = s.execute(
                    select(DeadProperty.node_id, DeadProperty.name, DeadProperty.value)
                    .join(Node, Node.id == DeadProperty.node_id)
                    .where(DeadProperty.node_id.in_(ids[i : i + IN_BATCH]), Node.user_id == owner)
                )
                for row in rows:
                    out[row.node_id][row.name] = row.value
        return out

    def set_dead_prop(self, p: Principal, node_id: int, name: str, value: bytes | None) -> None:
        """Set (or remove, with None) one dead property; journalled as ``props_changed`` (RFC
        6578 reports a member whose properties changed)."""
        owner = self._authorize(p, write=True)
        with self._mutation() as s:
            user = self._lock_account(s, owner)
            node = s.get(Node, node_id)
            if node is None or node.user_id != owner:
                raise NotFound("no such node")
            parts = self._live_path(s, node)
            if parts is not None:
                self._guard(s, user, p, nodes=[join(parts)])
                self._journal(s, user, p, "props_changed", node, join(parts))
            s.execute(
                delete(DeadProperty).where(
                    DeadProperty.node_id == node_id, DeadProperty.name == name
                )
            )
            if value is not None:
                s.add(DeadProperty(node_id=node_id, name=name, value=bytes(value)))


__all__ = ["Drive", "Expect", "Upload"]
