"""Resumable uploads (the tus model): durable sessions that survive disconnects and restarts.

A session stores complete content-defined blocks as they arrive and keeps the bytes after the
last cut as one encrypted block (the "tail"), so after a restart the chunker continues exactly
where it stopped and the finished file has the same blocks as a one-shot upload. Nothing is
visible to readers until the last byte: then one transaction commits the version (the same
commit as every other write) and journals ``upload_completed``. Creating a session journals
``upload_pending``. Stale sessions expire and their staged blocks are deleted.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import delete, func, insert, select, update

from davdrive.blockstore import blockformat
from davdrive.blockstore.chunker import Chunker
from davdrive.blockstore.store import BlockRef, IngestResult
from davdrive.errors import BadRequest, Conflict, IntegrityError, NotFound
from davdrive.metadata.schema import UploadBlock, UploadSession
from davdrive.service.access import Perm
from davdrive.service.paths import join, split_path
from davdrive.service.timestamps import parse_mtime

if TYPE_CHECKING:
    from davdrive.service.drive import Drive
    from davdrive.service.types import NodeInfo, Principal

SESSION_TTL = 24 * 3600.0
READ_PIECE = 1 << 20


class ChecksumMismatch(BadRequest):
    """The PATCH body does not match its Upload-Checksum (tus answers 460)."""

    code = "checksum_mismatch"


@dataclass(frozen=True)
class SessionInfo:
    id: str
    path: str
    length: int
    offset: int
    metadata_raw: str
    created: float
    expires: float


def _owner(row: UploadSession) -> int:
    """The account whose tree and keys a session writes to (the uploader's before 0006)."""
    return row.owner_id if row.owner_id is not None else row.user_id


def _info(row: UploadSession) -> SessionInfo:
    return SessionInfo(
        row.id, row.path, row.length, row.offset, row.metadata_raw, row.created_at, row.expires_at
    )


class ResumableUploads:
    """Create, append to, finish, cancel and expire resumable upload sessions."""

    CHECKSUMS = ("sha1", "sha256", "md5")

    def __init__(self, drive: Drive, *, ttl: float = SESSION_TTL) -> None:
        self.drive = drive
        self.ttl = ttl
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    # -- sessions ---------------------------------------------------------------------------------
    def create(
        self,
        p: Principal,
        path: str,
        length: int,
        *,
        metadata_raw: str = "",
        mtime: float | None = None,
    ) -> SessionInfo:
        """Open a session; checks path, parent, size limit and quota now (413/507/409)."""
        if length < 0:
            raise BadRequest("Upload-Length must be >= 0")
        if mtime is not None:
            mtime = parse_mtime(mtime)
        path = join(split_path(path))
        if path == "/":
            raise BadRequest("cannot upload to the root")
        # The same up-front checks as any upload: parent folder, size limit, quota headroom.
        # (and the rights: inside a share, the blocks are sealed with the owner's keys)
        t = self.drive.core.target(p, path, Perm.NONE)
        self.drive.check_upload(p, path, declared_size=length, target=t)
        now = time.time()
        sid = secrets.token_hex(16)
        owner = t.owner_id
        with self.drive.core.mutation() as s:
            user = self.drive.core.lock_account(s, owner)
            self.drive.core.recheck(s, t)
            s.add(
                UploadSession(
                    id=sid,
                    user_id=p.user_id,
                    owner_id=owner,
                    device_id=p.device_id,
                    path=path,
                    length=length,
                    offset=0,
                    metadata_raw=metadata_raw,
                    tail_size=0,
                    blocks_count=0,
                    mtime=mtime,
                    created_at=now,
                    expires_at=now + self.ttl,
                )
            )
            self.drive.core.journal(s, user, p, "upload_pending", None, t.path)
        return self.get(p, sid)

    def _row(self, s, p: Principal, sid: str) -> UploadSession:  # noqa: ANN001
        row = s.get(UploadSession, sid)
        if row is None or row.user_id != p.user_id or row.expires_at < time.time():
            raise NotFound("no such upload session")
        return row

    def get(self, p: Principal, sid: str) -> SessionInfo:
        with self.drive.db.read() as s:
            return _info(self._row(s, p, sid))

    def pending(self, p: Principal, path: str) -> SessionInfo | None:
        """The newest live session writing ``path``, if any."""
        path = join(split_path(path))
        with self.drive.db.read() as s:
            row = s.scalars(
                select(UploadSession)
                .where(
                    UploadSession.user_id == p.user_id,
                    UploadSession.path == path,
                    UploadSession.expires_at >= time.time(),
                )
                .order_by(UploadSession.created_at.desc())
            ).first()
            return _info(row) if row is not None else None

    def cancel(self, p: Principal, sid: str) -> None:
        """Terminate a session and delete what it staged."""
        with self._lock(sid):
            with self.drive.db.write() as s:
                row = self._row(s, p, sid)
                staged, owner = self._staged(s, row), _owner(row)
                s.delete(row)
            self._reclaim(owner, staged)

    def expire(self, now: float | None = None) -> int:
        """Drop sessions past their expiry and reclaim their staged blocks."""
        now = time.time() if now is None else now
        with self.drive.db.read() as s:
            ids = s.scalars(
                select(UploadSession.id).where(UploadSession.expires_at < now).limit(1000)
            ).all()
        for sid in ids:
            with self.drive.db.write() as s:
                row = s.get(UploadSession, sid)
                if row is None:
                    continue
                staged, owner = self._staged(s, row), _owner(row)
                s.delete(row)
            self._reclaim(owner, staged)
        return len(ids)

    def count_sessions(self, now: float | None = None) -> int:
        """How many sessions are open (not past their expiry), over every account."""
        now = time.time() if now is None else now
        query = select(func.count()).where(UploadSession.expires_at >= now)
        with self.drive.db.read() as s:
            return s.scalar(query) or 0

    # -- data -------------------------------------------------------------------------------------
    def append(
        self,
        p: Principal,
        sid: str,
        offset: int,
        read: Callable[[int], bytes],
        content_length: int | None,
        checksum: tuple[str, bytes] | None = None,
    ) -> tuple[int, NodeInfo | None]:
        """Append a PATCH body at ``offset``; returns (new offset, the file when complete).

        A body cut short by a disconnect keeps every byte that arrived (unless a checksum was
        given, which then cannot match). ``Conflict`` if ``offset`` is not the session's.
        """
        with self._lock(sid):
            with self.drive.db.read() as s:
                row = self._row(s, p, sid)
                if offset != row.offset:
                    raise Conflict(f"Upload-Offset is {row.offset}, not {offset}")
                length, path, mtime = row.length, row.path, row.mtime
                old_tail = (row.tail_hash, row.tail_key) if row.tail_hash else None
                seq0 = row.blocks_count
                owner = _owner(row)
            keys = self.drive.core.account_keys(owner)
            store = self.drive.store
            chunker = Chunker()
            if old_tail is not None:
                assert old_tail[1] is not None
                list(chunker.feed(store.read_block(keys, old_tail[0], old_tail[1])))
            digest = hashlib.new(checksum[0]) if checksum else None
            budget = length - offset
            if content_length is not None and content_length > budget:
                raise BadRequest("the body would pass Upload-Length")
            refs: list[BlockRef] = []
            pos = offset - len(chunker.pending())
            seen: set[str] = set()
            received = 0
            broken: BaseException | None = None
            try:
                while True:
                    want = READ_PIECE if content_length is None else content_length - received
                    if want <= 0:
                        break
                    piece = read(min(READ_PIECE, want))
                    if not piece:
                        break
                    if received + len(piece) > budget:
                        raise BadRequest("the body would pass Upload-Length")
                    received += len(piece)
                    if digest is not None:
                        digest.update(piece)
                    for block in chunker.feed(piece):
                        refs.append(self._put(keys, owner, block, pos, seen))
                        pos += len(block)
            except BadRequest:
                raise
            except Exception as exc:  # the client went away: keep what arrived
                broken = exc
            if digest is not None and (broken is not None or digest.digest() != checksum[1]):
                if broken is not None:
                    raise broken
                raise ChecksumMismatch("the body does not match Upload-Checksum")
            new_offset = offset + received
            if content_length is not None and received < content_length and broken is None:
                broken = ConnectionError("body shorter than Content-Length")
            if new_offset == length:
                for block in chunker.finish():
                    refs.append(self._put(keys, owner, block, pos, seen))
                    pos += len(block)
                info = self._complete(p, sid, offset, seq0, refs, length, path, mtime, keys, owner)
                if old_tail is not None:
                    self._reclaim(owner, [old_tail])
                return new_offset, info
            tail = chunker.pending()
            tail_ref = None
            if tail:
                tail_ref = store.put_block(keys, tail)
            with self.drive.db.write() as s:
                # Under the account lock, like a reclaim: blocks that vanished meanwhile (a
                # refused upload of the same content reclaimed them) are never recorded.
                self.drive.core.lock_account(s, owner)
                stored = [r for r in [*refs, tail_ref] if r is not None and r.new]
                if any(not store.has_object(r.object_key) for r in stored):
                    raise Conflict("a stored block vanished meanwhile; send this part again")
                done = s.execute(
                    update(UploadSession)
                    .where(UploadSession.id == sid, UploadSession.offset == offset)
                    .values(
                        offset=new_offset,
                        tail_hash=tail_ref.hash if tail_ref else None,
                        tail_key=tail_ref.object_key if tail_ref else None,
                        tail_size=len(tail),
                        blocks_count=seq0 + len(refs),
                        expires_at=time.time() + self.ttl,
                    )
                ).rowcount
                if not done:
                    raise Conflict("the session moved on meanwhile")
                if refs:
                    s.execute(insert(UploadBlock), self._rows(sid, seq0, refs))
            if old_tail is not None and (tail_ref is None or tail_ref.hash != old_tail[0]):
                self._reclaim(owner, [old_tail])
            if broken is not None:
                raise broken
            return new_offset, None

    # -- internals --------------------------------------------------------------------------------
    def _lock(self, sid: str) -> threading.Lock:
        with self._locks_guard:
            lock = self._locks.get(sid)
            if lock is None:
                if len(self._locks) > 10000:
                    self._locks = {k: v for k, v in self._locks.items() if v.locked()}
                lock = self._locks[sid] = threading.Lock()
        return _TimedLock(lock)  # type: ignore[return-value]

    def _put(self, keys, user_id: int, block: bytes, pos: int, seen: set[str]) -> BlockRef:  # noqa: ANN001
        h = blockformat.block_hash(block)
        # Staged blocks are read back by object key at completion: an inline copy does not do.
        known = h in seen or self.drive.core.has_block(user_id, h, as_object=True)
        seen.add(h)
        return self.drive.store.put_block(keys, block, known=known, offset=pos, block_hash=h)

    @staticmethod
    def _rows(sid: str, seq0: int, refs: list[BlockRef]) -> list[dict[str, object]]:
        return [
            {
                "session_id": sid,
                "seq": seq0 + i,
                "hash": r.hash,
                "object_key": r.object_key,
                "offset": r.offset,
                "size": r.size,
                "stored_size": r.stored_size,
                "new": r.new,
            }
            for i, r in enumerate(refs)
        ]

    def _complete(
        self,
        p: Principal,
        sid: str,
        offset: int,
        seq0: int,
        refs: list[BlockRef],
        length: int,
        path: str,
        mtime: float | None,
        keys,  # noqa: ANN001
        owner: int,
    ) -> NodeInfo:
        t = self.drive.core.target(p, path, Perm.NONE)
        if t.owner_id != owner:
            raise Conflict("the upload's folder is no longer the one it started in")
        with self.drive.db.read() as s:
            staged = [
                BlockRef(b.hash, b.object_key, b.offset, b.size, b.stored_size, b.new)
                for b in s.scalars(
                    select(UploadBlock)
                    .where(UploadBlock.session_id == sid)
                    .order_by(UploadBlock.seq)
                )
            ]
        blocks = staged + refs
        if sum(b.size for b in blocks) != length:
            raise IntegrityError("staged blocks do not add up to Upload-Length")
        # The whole-file SHA-256 cannot be carried across processes; read the blocks back once.
        sha = hashlib.sha256()
        reader = self.drive.store.open_reader(
            keys, [(b.hash, b.object_key, b.offset, b.size) for b in blocks], length
        )
        try:
            while chunk := reader.read(4 << 20):
                sha.update(chunk)
        finally:
            reader.close()
        # Every block is registered as if new: insert-if-absent keeps existing rows.
        result = IngestResult(
            length,
            sha.hexdigest(),
            [BlockRef(b.hash, b.object_key, b.offset, b.size, b.stored_size, True) for b in blocks],
        )

        def finish(s, account, node) -> None:  # noqa: ANN001
            gone = s.execute(
                delete(UploadSession).where(UploadSession.id == sid, UploadSession.offset == offset)
            ).rowcount
            if not gone:
                raise Conflict("the session moved on meanwhile")
            account.journal(
                p,
                "upload_completed",
                t.path,
                node_id=node.id,
                version_id=node.version_id,
                is_dir=False,
            )

        info, _created = self.drive.content.commit_version(
            p,
            t,
            result,
            mtime=mtime,
            expected_etag=None,
            create_only=False,
            on_commit=finish,
        )
        return info

    @staticmethod
    def _staged(s, row: UploadSession) -> list[tuple[str, str]]:  # noqa: ANN001
        staged = [
            (b.hash, b.object_key)
            for b in s.scalars(select(UploadBlock).where(UploadBlock.session_id == row.id))
            if b.new
        ]
        if row.tail_hash and row.tail_key:
            staged.append((row.tail_hash, row.tail_key))
        return staged

    def _reclaim(self, user_id: int, staged: list[tuple[str | None, str | None]]) -> None:
        """Delete staged objects nothing refers to any more (``DriveCore.reclaim``)."""
        self.drive.core.reclaim(user_id, [key for h, key in staged if h and key])


class _TimedLock:
    """Serialise PATCHes of one session; a second one waits briefly, then gets 409."""

    def __init__(self, lock: threading.Lock) -> None:
        self._lock = lock

    def __enter__(self) -> None:
        if not self._lock.acquire(timeout=30):
            raise Conflict("another request is appending to this upload")

    def __exit__(self, *exc: object) -> None:
        self._lock.release()
