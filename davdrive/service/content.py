"""File content written: streamed uploads into the block pipeline and the commit of a version
(reading lives in ``service/reading.py``)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, BinaryIO

from sqlalchemy import Select, bindparam, delete, func, insert, select, true, update
from sqlalchemy.engine import Connection, Row
from sqlalchemy.orm import Session

from davdrive.blockstore.store import BlockRef, IngestResult
from davdrive.errors import (
    BadRequest,
    Conflict,
    FileTooLarge,
    IncompleteUpload,
    IsAFolder,
    NotFound,
    ParentNotFound,
    PermissionDenied,
    PreconditionFailed,
    QuotaExceeded,
)
from davdrive.metadata.fast_reads import connection_of, prepared
from davdrive.metadata.schema import (
    Block,
    DavLock,
    FileVersion,
    Node,
    User,
    VersionBlock,
)
from davdrive.metadata.upsert import upsert_blocks, upsert_inline
from davdrive.metrics import count_blocks
from davdrive.service import versions as history
from davdrive.service.access import Perm, Target
from davdrive.service.checksums import ContentChecksum
from davdrive.service.core import IN_BATCH, LOST, AccountWrite, DriveCore
from davdrive.service.locks import check_write, lock_roots
from davdrive.service.lookup import (
    MAX_CHAIN,
    TOUCH_UP,
    chain_params,
    chain_query,
    find,
    node_etag,
)
from davdrive.service.paths import join, parent_and_name
from davdrive.service.timestamps import parse_mtime, shown_mtime
from davdrive.service.types import (
    NodeInfo,
    Principal,
)
from davdrive.service.versions import HANDOVER_SCAN, Versions, vacated_query

PLACEHOLDER_WINDOW = 60.0

# Bodies up to this size skip the checks before the body (parent, preconditions, locks,
# quota): the commit makes them all atomically anyway, and a small body costs nothing to read.
PRECHECK_MIN = 64 << 10

# Dedup hits: the rows a commit references, found and touched (``last_access``) in the commit's
# transaction, so garbage collection's conditional delete (``service.gc``) never takes a row a
# commit is adopting (on PostgreSQL the touched row stays locked until the commit ends, and the
# sweep skips locked rows).
_BLOCK_IDS = prepared(
    update(Block)
    .where(Block.user_id == bindparam("uid"), Block.hash.in_(bindparam("hashes", expanding=True)))
    .values(last_access=bindparam("now"))
    .returning(Block.hash, Block.id)
)

_DROP_VERSION = prepared(delete(FileVersion).where(FileVersion.id == bindparam("vid")))

_INSERT_NODE = prepared(insert(Node).returning(Node.id))

_INSERT_VERSION = prepared(insert(FileVersion).returning(FileVersion.id))

_INSERT_VERSION_BLOCK = prepared(insert(VersionBlock))

_SET_CURRENT = prepared(
    update(Node)
    .where(Node.id == bindparam("nid"))
    .values(current_version_id=bindparam("vid"), status="ok", mtime=bindparam("mtime"))
)

UNKNOWN: Any = object()  # "not looked up yet"

_ACCOUNT = prepared(
    select(User.login, User.quota_bytes, User.used_bytes, User.change_seq, User.shares_out).where(
        User.id == bindparam("uid")
    )
)


@dataclass(frozen=True)
class _Target:
    """What a write reads before it acts (``Content._read_target``)."""

    account: Any  # login, quota_bytes, used_bytes, change_seq
    row: Any  # lookup.chain_query's row with the member (None: the folder does not exist)
    maybe_locked: bool  # a live lock is rooted where it could protect the write
    vacated: Any  # the file that left the path in the handover window, None, or UNKNOWN


@lru_cache(maxsize=MAX_CHAIN + 1)
def _prologue(depth: int) -> Select[Any]:
    """The first statement of a commit (``commit_version``): the account row and
    ``lookup.chain_query`` of the folder at ``depth`` with the member ``:child`` (NULL columns
    when the folder is missing), how many live locks are rooted at
    ``:lock_roots``, and the file that was moved away from or deleted at ``:path`` within the
    handover window (``Versions.vacated``)."""
    chain = chain_query(depth, True).subquery("t")
    locks = (
        select(func.count())
        .select_from(DavLock)
        .where(
            DavLock.root.in_(bindparam("lock_roots", expanding=True)),
            DavLock.expire >= bindparam("now"),
        )
        .scalar_subquery()
    )
    vacated = (
        vacated_query(User.id, User.change_seq - HANDOVER_SCAN, bindparam("since"), "path")
        .correlate(User)
        .scalar_subquery()
    )
    return prepared(
        select(
            User.login,
            User.quota_bytes,
            User.used_bytes,
            User.change_seq,
            User.shares_out,
            locks.label("locks"),
            vacated.label("vacated"),
            *chain.c,
        )
        .select_from(User.__table__.outerjoin(chain, true()))
        .where(User.id == bindparam("uid"))
    )


# PostgreSQL: lock the account row before the prologue reads, so that the prologue's snapshot
# (READ COMMITTED: taken when the statement starts) sees what the previous writer committed.
# A row lock taken by the prologue itself would recheck only the row, not the tree it read.
_LOCK_ACCOUNT_ROW = prepared(select(User.id).where(User.id == bindparam("uid")).with_for_update())


class Upload:
    """A file body being received. Nothing is visible to readers until ``commit``.

    ``write`` streams into the block pipeline (bounded memory); it raises ``FileTooLarge`` or
    ``QuotaExceeded`` as soon as the bytes received pass the limits known at ``begin_upload``.
    ``checksum``: ``(type, hex)`` the body must match (``service.checksums``), checked by
    ``commit`` before anything is committed.
    """

    def __init__(
        self,
        content: Content,
        p: Principal,
        target: Target,
        *,
        expected_etag: str | None,
        create_only: bool,
        max_bytes: int,
        quota_headroom: int,
        checksum: tuple[str, str] | None = None,
    ) -> None:
        self._content = content
        self._p = p
        self._target = target
        self._owner_id = owner_id = target.owner_id
        self.path = target.path  # in the owner's tree
        self._expected_etag = expected_etag
        self._create_only = create_only
        self._max_bytes = max_bytes
        self._quota_headroom = quota_headroom
        self.received = 0
        self.created = False  # after ``commit``: whether the file was new
        self._done = False
        self._expected_sum = checksum[1] if checksum is not None else None
        self._sum = ContentChecksum(checksum[0]) if checksum is not None else None
        core = content.core
        self._ingest = core.store.ingest(
            core.account_keys(owner_id), known=lambda h: core.has_block(owner_id, h)
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
        if self._sum is not None:
            self._sum.update(data)

    def commit(self, *, mtime: float | None = None, expected_size: int | None = None) -> NodeInfo:
        """Make the new version current in one transaction.

        Raises ``IncompleteUpload`` when ``expected_size`` differs from the bytes received,
        ``PreconditionFailed`` when the head moved away from ``expected_etag`` (compare-and-swap
        inside the transaction), ``ParentNotFound`` if the folder vanished meanwhile,
        ``QuotaExceeded`` (atomic check), ``Conflict`` if a folder now stands at the path,
        ``ChecksumMismatch`` when the body does not match the ``checksum`` given at
        ``begin_upload``. The blocks of an upload that does not commit are reclaimed at once.
        """
        if self._done:
            raise BadRequest("upload already finished")
        if expected_size is not None and expected_size != self.received:
            self.abort()
            raise IncompleteUpload(
                f"received {self.received} of {expected_size} bytes; nothing was saved"
            )
        if self._sum is not None and self._expected_sum is not None:
            try:
                self._sum.verify(self._expected_sum)
            except BaseException:
                self.abort()
                raise
        try:
            result = self._ingest.finish()
        except BaseException:
            self.abort()
            raise
        self._done = True
        try:
            info, self.created = self._content.commit_version(
                self._p,
                self._target,
                result,
                mtime=mtime,
                expected_etag=self._expected_etag,
                create_only=self._create_only,
            )
            return info
        except BaseException:
            # Refused at commit (412, 423, 507, ...): what it stored is referenced by nothing.
            written = [ref.object_key for ref in result.blocks if ref.new and ref.inline is None]
            self._content.core.reclaim(self._owner_id, written)
            raise

    def abort(self) -> None:
        """Discard the upload and reclaim the blocks it stored; idempotent."""
        if not self._done:
            self._done = True
            self._content.core.reclaim(self._owner_id, self._ingest.abort())


class Content:
    """Writing and reading file content."""

    def __init__(self, core: DriveCore, versions: Versions) -> None:
        self.core = core
        self.versions = versions

    def begin_upload(
        self,
        p: Principal,
        path: str,
        *,
        expected_etag: str | None = None,
        create_only: bool = False,
        declared_size: int | None = None,
        checksum: tuple[str, str] | None = None,
    ) -> Upload:
        """Check the parent, permission, size and quota up front (before the body), then stream.
        A body declared no larger than ``PRECHECK_MIN`` skips the checks before it: the commit
        makes them all atomically anyway, and a small body costs nothing to read.

        ``expected_etag``: the write must replace exactly that version (If-Match / base_rev);
        ``"*"`` means "must exist". ``create_only``: fail if the path exists (If-None-Match: *).
        ``checksum``: ``(type, hex)`` of the whole body (``checksums.parse_oc_checksum``); a
        body that does not match is refused at commit (``ChecksumMismatch``), nothing stored.
        """
        if checksum is not None:
            ContentChecksum(checksum[0])  # BadRequest for an unsupported type, before the body
        parent_and_name(path)  # BadRequest for the root
        t = self.core.target(p, path, Perm.NONE)
        if not t.perms & (Perm.WRITE | Perm.CREATE):
            raise PermissionDenied("not allowed: write")
        if not t.perms & (Perm.READ | Perm.WRITE):  # a drop: never overwrite, never tell
            t, create_only, expected_etag = self.core.free_target(p, t), True, None
            path = t.shown(t.path)
        if declared_size is not None and declared_size > self.core.max_file_size:
            raise FileTooLarge(f"file is larger than {self.core.max_file_size} bytes")
        if declared_size is not None and declared_size <= PRECHECK_MIN and t.view is None:
            # (through a share or a link the rights are checked now: a door may count a use)
            headroom = self.core.max_file_size
        else:
            headroom = self.check_upload(
                p,
                path,
                expected_etag=expected_etag,
                create_only=create_only,
                declared_size=declared_size,
                target=t,
            )
        return Upload(
            self,
            p,
            t,
            expected_etag=expected_etag,
            create_only=create_only,
            max_bytes=self.core.max_file_size,
            quota_headroom=max(headroom, 0),
            checksum=checksum,
        )

    def check_upload(
        self,
        p: Principal,
        path: str,
        *,
        expected_etag: str | None = None,
        create_only: bool = False,
        declared_size: int | None = None,
        target: Target | None = None,
    ) -> int:
        """Whether a write of ``declared_size`` bytes to ``path`` (of ``p``'s view; ``target``
        if already resolved) would be accepted now (rights, size, parent, preconditions, locks,
        quota); returns the quota headroom in bytes."""
        t = target if target is not None else self.core.target(p, path, Perm.NONE)
        if not t.perms & (Perm.READ | Perm.WRITE):  # a drop: the name it will really get
            t = self.core.free_target(p, t)
        owner = t.owner_id
        parent_parts, name = parent_and_name(t.path)
        if declared_size is not None and declared_size > self.core.max_file_size:
            raise FileTooLarge(f"file is larger than {self.core.max_file_size} bytes")
        with self.core.db.read() as s:
            found = self._read_target(s, owner, parent_parts, name, time.time(), lock=False)
            path = join([*parent_parts, name])
            self._verify_target(
                s.connection(), found, p, t, parent_parts, path, expected_etag, create_only
            )
        account, row = found.account, found.row
        old = (row.c_size or 0) if row.c_id is not None else 0
        headroom = account.quota_bytes - account.used_bytes + old
        if declared_size is not None and declared_size > headroom:
            raise QuotaExceeded("the file does not fit in the remaining quota")
        return headroom

    def commit_version(
        self,
        p: Principal,
        t: Target,
        result: IngestResult,
        *,
        mtime: float | None,
        expected_etag: str | None,
        create_only: bool,
        on_commit: Callable[[Session, AccountWrite, NodeInfo], None] | None = None,
    ) -> tuple[NodeInfo, bool]:
        """Make ``result`` the current version of the file at ``path`` in one transaction of
        plain statements (the hot path of every upload): lock the account row, resolve the
        folder and the file in one query, check preconditions, locks and quota, register the
        blocks, write node, version, block list and journal rows, save the account row.
        ``t``: where the path landed by the access rule (``DriveCore.target``); the answer
        shows the file as ``p`` sees it."""
        owner, path = t.owner_id, t.path
        parent_parts, name = parent_and_name(path)
        now = time.time()
        with self.core.mutation() as s:
            conn = connection_of(s)
            target = self._read_target(s, owner, parent_parts, name, now, lock=True)
            acct = AccountWrite(s, owner, target.account)
            row, vacated = target.row, target.vacated
            self._verify_target(conn, target, p, t, parent_parts, path, expected_etag, create_only)
            self.core.recheck(conn, t)
            parent_id, node_id = row.n_id, row.c_id
            old_size, placeholder = 0, None
            if node_id is not None and row.c_current_version_id is not None:
                old_size = row.c_size or 0
                if (
                    old_size == 0
                    and not row.c_pinned
                    and now - row.c_version_created < PLACEHOLDER_WINDOW
                ):
                    placeholder = row.c_current_version_id
            acct.charge(result.size - old_size)
            block_ids = self._register_blocks(conn, owner, result, now)
            vtime = parse_mtime(mtime) if mtime is not None else now
            created = node_id is None
            if node_id is None:
                node_id = conn.execute(
                    _INSERT_NODE,
                    {
                        "user_id": owner,
                        "parent_id": parent_id,
                        "name": name,
                        "is_dir": False,
                        "status": "ok",
                        "mtime": vtime,
                        "created_at": now,
                    },
                ).scalar_one()
                if vacated is UNKNOWN:
                    vacated = self.versions.vacated(conn, owner, acct.seq, path)
                if vacated is not None:
                    self.versions.inherit_history(s, vacated, node_id, None)
            version_id = conn.execute(
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
                            "version_id": version_id,
                            "seq": i,
                            "block_id": block_ids[ref.hash],
                            "offset": ref.offset,
                            "size": ref.size,
                        }
                        for i, ref in enumerate(result.blocks)
                    ],
                )
            conn.execute(_SET_CURRENT, {"nid": node_id, "vid": version_id, "mtime": vtime})
            conn.execute(TOUCH_UP, {"nid": parent_id, "now": now})  # the folders' ETags
            if placeholder is not None:
                conn.execute(_DROP_VERSION, {"vid": placeholder})
            info = NodeInfo(
                node_id,
                owner,
                parent_id,
                name,
                path,
                False,
                result.size,
                result.sha256,
                version_id,
                node_etag(node_id, False, version_id, vtime),
                shown_mtime(vtime),
                now if created else row.c_created_at,
                "ok",
            )
            acct.journal(
                p,
                "created" if created else "updated",
                path,
                node_id=node_id,
                version_id=version_id,
                is_dir=False,
            )
            if on_commit is not None:
                on_commit(s, acct, info)
            acct.save()
        written = sum(1 for ref in result.blocks if ref.new)
        count_blocks(written, len(result.blocks) - written)
        return t.show(info), created

    def _read_target(
        self,
        s: Session,
        owner: int,
        parent_parts: list[str],
        name: str,
        now: float,
        *,
        lock: bool,
    ) -> _Target:
        """The account row, the folder and its member ``name`` for a write, in one statement
        (``_prologue``) where the path allows. ``lock``: lock the account row first (a
        commit; on SQLite the write transaction is exclusive already)."""
        conn = connection_of(s)
        path = join([*parent_parts, name])
        if lock and conn.dialect.name != "sqlite":
            conn.execute(_LOCK_ACCOUNT_ROW, {"uid": owner})
        if len(parent_parts) > MAX_CHAIN:
            account = conn.execute(_ACCOUNT, {"uid": owner}).first()
            if account is None:
                raise NotFound("no such account")
            row = self._target(s, conn, owner, parent_parts, name)
            return _Target(account, row, True, UNKNOWN)
        login = self.core.login_of(conn, owner)
        params = chain_params(self.core.root_id(conn, owner), parent_parts, name)
        params.update(
            uid=owner,
            lock_roots=lock_roots(login, [join(parent_parts), path]),
            now=now,
            since=now - history.HANDOVER_WINDOW,
            path=path,
        )
        row = conn.execute(_prologue(len(parent_parts)), params).first()
        if row is None:
            raise NotFound("no such account")
        return _Target(row, row if row.n_id is not None else None, row.locks > 0, row.vacated)

    def _verify_target(
        self,
        conn: Connection,
        target: _Target,
        p: Principal,
        t: Target,
        parent_parts: list[str],
        path: str,
        expected_etag: str | None,
        create_only: bool,
    ) -> None:
        """The checks of a write to ``path`` (folder, not a folder, rights, preconditions,
        locks)."""
        row = target.row
        if row is None:
            raise ParentNotFound(f"folder {t.shown(join(parent_parts))} does not exist")
        if not row.n_is_dir:
            raise Conflict(f"{t.shown(join(parent_parts))} is a file")
        node_id = row.c_id
        if node_id is not None and row.c_is_dir:
            raise IsAFolder(f"{t.shown(path)} is a folder")
        t.require(Perm.CREATE if node_id is None else Perm.WRITE)
        if create_only and node_id is not None:
            raise PreconditionFailed("the file exists")
        if expected_etag is not None:
            if node_id is None:
                raise PreconditionFailed("the file does not exist")
            current = node_etag(node_id, False, row.c_current_version_id, row.c_mtime)
            if expected_etag not in ("*", current):
                raise PreconditionFailed("the file changed since that version")
        if target.maybe_locked:
            check_write(
                conn,
                target.account.login,
                p.lock_tokens,
                who=p.login,
                nodes=[path] if node_id is not None else [join(parent_parts), path],
            )

    def _target(
        self, s: Session, conn: Connection, owner: int, parent_parts: list[str], name: str
    ) -> Row[Any] | None:
        """The folder ``parent_parts`` and its member ``name`` (``lookup.chain_query`` row)."""
        if len(parent_parts) <= MAX_CHAIN:
            return find(conn, self.core.root_id(conn, owner), parent_parts, name)
        parent = self.core.resolve(s, owner, parent_parts)
        if parent is None:
            return None
        return find(conn, parent.id, [], name)

    def _register_blocks(
        self, conn: Connection, owner: int, result: IngestResult, now: float
    ) -> dict[str, int]:
        """Insert rows for newly stored blocks; return hash -> row id for every block used."""
        ids: dict[str, int] = {}
        new_rows = {}
        for ref in result.blocks:
            if ref.inline is not None:
                if ref.hash not in ids:
                    ids[ref.hash] = self._register_inline(conn, owner, ref, now)
            elif ref.new and ref.hash not in new_rows:
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
        for row in new_rows.values():
            # A reclaim (of another upload of the same block that was refused) may have
            # removed the object after this upload stored it: never commit a missing block.
            if not self.core.store.has_object(row["object_key"]):
                raise Conflict("a stored block vanished during the upload; please retry")
        if new_rows:
            # a row the account has already is kept (a lost one is whole again)
            upsert = upsert_blocks(conn.dialect.name, LOST)
            for row in conn.execute(upsert, list(new_rows.values())):
                ids[row.hash] = row.id
        wanted = sorted({ref.hash for ref in result.blocks} - ids.keys())  # deduplicated
        for i in range(0, len(wanted), IN_BATCH):
            batch = wanted[i : i + IN_BATCH]
            for row in conn.execute(_BLOCK_IDS, {"uid": owner, "hashes": batch, "now": now}):
                ids[row.hash] = row.id
        if any(ref.hash not in ids for ref in result.blocks):
            # A deduplicated block was collected between the check and the commit: the caller
            # must send the file again (GC's grace period makes this all but impossible).
            raise Conflict("a stored block vanished during the upload; please retry")
        return ids

    @staticmethod
    def _register_inline(conn: Connection, owner: int, ref: BlockRef, now: float) -> int:
        """Record an inline block; its row id. Dedup is settled here: a row the account
        already has is kept, and given these sealed bytes when it has none (lost, or its object
        is not checked on this path), so the block is readable whatever became of its object."""
        row = {
            "user_id": owner,
            "hash": ref.hash,
            "object_key": ref.object_key,
            "raw_size": ref.size,
            "stored_size": ref.stored_size,
            "tier": "hot",
            "created_at": now,
            "last_access": now,
            "inline_data": ref.inline,
        }
        return conn.execute(upsert_inline(conn.dialect.name), row).scalar_one()

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
