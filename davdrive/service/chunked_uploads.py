"""Nextcloud chunked uploads (v2): a folder of numbered parts, assembled by one MOVE.

A client opens an upload folder (MKCOL), PUTs parts whose names start with a number (16-digit
indexes, byte offsets, ``<start>-<end>`` ranges: any), then MOVEs ``.file`` onto the
destination. Each part streams through the block pipeline as it arrives and is kept as its own
list of sealed blocks (``chunked_block``): no second copy of the file on disk, bounded memory.
The MOVE concatenates the parts' block lists, ordered by their leading number, into one version
(the same commit as every other write); nothing is visible to readers before it.

Each part is cut into content-defined blocks on its own, so a file uploaded in parts has a
different cut near each part boundary than the same file uploaded in one piece (dedup loses at
most a block or two per part).

The whole file's SHA-256 (and SHA-1, the checksum the clients send) cannot be carried across
processes; a process keeps them running in memory while the parts it receives arrive in order,
so the MOVE is only a commit. After a restart, parts out of order, or parts spread over several
processes, the MOVE reads the staged blocks back once.

The parts are sealed with the keys of the account the file will land in: the uploader's own, or
the owner of the share that MKCOL's ``Destination`` points into. A MOVE into another account's
tree reseals the content once (streamed). Parts in flight count against that account's free
space; upload folders expire 24 hours after their last part.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError as SQLIntegrityError

from davdrive.blockstore.store import BlockRef, IngestResult
from davdrive.errors import (
    AlreadyExists,
    BadRequest,
    Conflict,
    FileTooLarge,
    IncompleteUpload,
    NotFound,
    PermissionDenied,
    QuotaExceeded,
)
from davdrive.metadata.schema import ChunkedBlock, ChunkedJob, ChunkedPart, ChunkedUpload, User
from davdrive.service.access import Perm
from davdrive.service.checksums import ChecksumMismatch, ContentChecksum
from davdrive.service.paths import join, parent_and_name, split_path

if TYPE_CHECKING:
    from davdrive.service.drive import Drive
    from davdrive.service.types import NodeInfo, Principal

SESSION_TTL = 24 * 3600.0
READ_PIECE = 1 << 20
MAX_NAME = 255
MAX_RUNNING = 1000  # uploads whose hashes a process keeps running at once
JOB_STALE = 3600.0  # a job "started" this long ago died with its process
_LEADING_NUMBER = re.compile(r"^0*(\d{1,18})")  # at most 18 digits: fits a BIGINT


@dataclass(frozen=True)
class PartInfo:
    name: str
    size: int
    created: float


@dataclass(frozen=True)
class ChunkedInfo:
    name: str
    created: float
    expires: float
    total_length: int | None
    destination: str | None
    parts: tuple[PartInfo, ...] = ()

    @property
    def size(self) -> int:
        return sum(part.size for part in self.parts)


@dataclass(frozen=True)
class JobInfo:
    """An assembly that outlived its MOVE: ``started``, ``finished`` (``node_id``, ``etag``)
    or ``error`` (``error_status``, ``error``)."""

    id: str
    status: str
    node_id: int | None = None
    etag: str | None = None
    error_status: int | None = None
    error: str | None = None


@dataclass
class _Running:
    """The hashes of the parts received so far, in order (``order``: (key, name, size))."""

    order: list[tuple[int, str, int]] = field(default_factory=list)
    sha256: Any = field(default_factory=hashlib.sha256)
    sha1: Any = field(default_factory=hashlib.sha1)

    def extended(self) -> _Running:
        return _Running(list(self.order), self.sha256.copy(), self.sha1.copy())


def upload_name(name: str) -> str:
    """An upload folder's name as the client chose it; ``BadRequest`` if unusable."""
    if not name or len(name) > MAX_NAME or name in (".", "..") or "/" in name or "\0" in name:
        raise BadRequest(f"bad upload folder name {name!r}")
    return name


def part_key(name: str) -> int:
    """The number a part's name starts with (its place in the file); ``BadRequest`` else."""
    m = _LEADING_NUMBER.match(name)
    if not m or len(name) > MAX_NAME or "/" in name or "\0" in name:
        raise BadRequest(f"a part's name must start with a number: {name!r}")
    return int(m.group(1))


def _order(parts: list[tuple[int, str, int]]) -> list[tuple[int, str, int]]:
    return sorted(parts, key=lambda x: (x[0], x[1]))


class ChunkedUploads:
    """Open, fill, list, assemble, cancel and expire chunked upload folders."""

    def __init__(self, drive: Drive, *, ttl: float = SESSION_TTL) -> None:
        self.drive = drive
        self.ttl = ttl

    # -- folders ----------------------------------------------------------------------------------
    def open(
        self,
        p: Principal,
        name: str,
        *,
        total_length: int | None = None,
        destination: str | None = None,
    ) -> ChunkedInfo:
        """Create the upload folder ``name`` (MKCOL). ``destination`` (a path of ``p``'s view)
        and ``total_length``, when the client announces them, are checked now (rights, size,
        quota). ``AlreadyExists`` if ``p`` has a live folder of that name."""
        name = upload_name(name)
        core = self.drive.core
        if total_length is not None:
            if total_length < 0:
                raise BadRequest("OC-Total-Length must be >= 0")
            if total_length > core.max_file_size:
                raise FileTooLarge(f"file is larger than {core.max_file_size} bytes")
        owner = p.user_id
        if destination is not None:
            destination = join(split_path(destination))
            parent_and_name(destination)  # BadRequest for the root
            t = core.target(p, destination, Perm.NONE)
            _check_rights(t.perms)
            self.drive.check_upload(p, destination, declared_size=total_length, target=t)
            owner = t.owner_id
        elif total_length is not None and total_length > self._headroom(owner):
            raise QuotaExceeded("the file does not fit in the remaining quota")
        now = time.time()
        self._drop_expired(p, name, now)
        try:
            with self.drive.db.write() as s:
                s.add(
                    ChunkedUpload(
                        id=secrets.token_hex(16),
                        user_id=p.user_id,
                        name=name,
                        owner_id=owner,
                        destination=destination,
                        total_length=total_length,
                        created_at=now,
                        expires_at=now + self.ttl,
                    )
                )
        except SQLIntegrityError:
            raise AlreadyExists(f"the upload folder {name!r} exists") from None
        return self.get(p, name)

    def get(self, p: Principal, name: str) -> ChunkedInfo:
        """The folder and its parts in assembly order; ``NotFound`` if absent or expired."""
        with self.drive.db.read() as s:
            row = self._row(s, p, name)
            parts = s.execute(
                select(ChunkedPart.name, ChunkedPart.size, ChunkedPart.created_at)
                .where(ChunkedPart.upload_id == row.id)
                .order_by(ChunkedPart.sort_key, ChunkedPart.name)
            ).all()
            return _info(row, tuple(PartInfo(*x) for x in parts))

    def list(self, p: Principal) -> list[ChunkedInfo]:
        """``p``'s live upload folders (without their parts), by name."""
        with self.drive.db.read() as s:
            rows = s.scalars(
                select(ChunkedUpload)
                .where(ChunkedUpload.user_id == p.user_id, ChunkedUpload.expires_at >= time.time())
                .order_by(ChunkedUpload.name)
            ).all()
            return [_info(row) for row in rows]

    def cancel(self, p: Principal, name: str) -> None:
        """Delete the folder and what its parts stored (DELETE)."""
        with self.drive.db.write() as s:
            row = self._row(s, p, name)
            (keys, _), owner = self._forget(s, row.id), row.owner_id
        _RUNNING.drop(row.id)
        self.drive.core.reclaim(owner, keys)

    def delete_part(self, p: Principal, name: str, part: str) -> None:
        """Delete one part (a client discarding what it will send again)."""
        with self.drive.db.write() as s:
            row = self._row(s, p, name)
            keys = self._forget_part(s, row.id, part)
            owner = row.owner_id
        _RUNNING.drop(row.id)
        self.drive.core.reclaim(owner, keys)

    def expire(self, now: float | None = None) -> int:
        """Drop folders past their expiry and reclaim their parts' blocks."""
        now = time.time() if now is None else now
        with self.drive.db.read() as s:
            ids = s.scalars(
                select(ChunkedUpload.id).where(ChunkedUpload.expires_at < now).limit(1000)
            ).all()
        for uid in ids:
            with self.drive.db.write() as s:
                row = s.get(ChunkedUpload, uid)
                if row is None:
                    continue
                (keys, _), owner = self._forget(s, uid), row.owner_id
            _RUNNING.drop(uid)
            self.drive.core.reclaim(owner, keys)
        with self.drive.db.write() as s:
            s.execute(delete(ChunkedJob).where(ChunkedJob.expires_at < now))
        return len(ids)

    # -- parts ------------------------------------------------------------------------------------
    def put_part(
        self,
        p: Principal,
        name: str,
        part: str,
        read: Callable[[int], bytes],
        content_length: int | None,
    ) -> tuple[PartInfo, bool]:
        """Store the body of part ``part`` (PUT); returns (the part, whether it is new). A part
        sent again replaces the earlier one. A body cut short stores nothing
        (``IncompleteUpload``)."""
        key = part_key(part)
        core, store = self.drive.core, self.drive.store
        with self.drive.db.read() as s:
            row = self._row(s, p, name)
            upload_id, owner, total = row.id, row.owner_id, row.total_length
            others = s.execute(
                select(ChunkedPart.sort_key, ChunkedPart.name, ChunkedPart.size).where(
                    ChunkedPart.upload_id == upload_id
                )
            ).all()
            in_flight = self._in_flight(s, owner)
        held = sum(size for _, n, size in others if n != part)
        limit = min(core.max_file_size, total if total is not None else core.max_file_size)
        room = self._headroom(owner) - in_flight + sum(x.size for x in others if x.name == part)
        if content_length is not None:
            if held + content_length > limit:
                raise _too_large(total, limit)
            if content_length > room:
                raise QuotaExceeded("the file does not fit in the remaining quota")
        held_parts = _order([(x.sort_key, x.name, x.size) for x in others])
        running = _RUNNING.extendable(upload_id, held_parts, key, part)
        keys = core.account_keys(owner)
        ingest = store.ingest(keys, known=lambda h: core.has_block(owner, h, as_object=True))
        small = bytearray()
        received = 0
        try:
            while content_length is None or received < content_length:
                want = READ_PIECE if content_length is None else content_length - received
                piece = read(min(READ_PIECE, want))
                if not piece:
                    break
                received += len(piece)
                if held + received > limit:
                    raise _too_large(total, limit)
                if received > room:
                    raise QuotaExceeded("the file does not fit in the remaining quota")
                if received <= store.inline_max:
                    small += piece
                ingest.write(piece)
                if running is not None:
                    running.sha256.update(piece)
                    running.sha1.update(piece)
            if content_length is not None and received < content_length:
                raise IncompleteUpload(
                    f"received {received} of {content_length} bytes; the part was not stored"
                )
            result = ingest.finish()
        except BaseException:
            core.reclaim(owner, ingest.abort())
            raise
        refs = [
            store.put_block(keys, bytes(small), offset=0, block_hash=r.hash)
            if r.inline is not None
            else r
            for r in result.blocks
        ]
        written = [r.object_key for r in refs if r.new]
        now = time.time()
        try:
            with self.drive.db.write() as s:
                # Under the account lock, like a reclaim: a block another upload's reclaim
                # removed meanwhile is never recorded.
                core.lock_account(s, owner)
                if any(not store.has_object(k) for k in written):
                    raise Conflict("a stored block vanished meanwhile; send this part again")
                if s.get(ChunkedUpload, upload_id) is None:
                    raise NotFound("no such upload folder (cancelled or assembled meanwhile)")
                old = self._forget_part(s, upload_id, part)
                s.execute(
                    insert(ChunkedPart).values(
                        upload_id=upload_id, name=part, sort_key=key, size=received, created_at=now
                    )
                )
                if refs:
                    s.execute(insert(ChunkedBlock), _block_rows(upload_id, part, refs))
                s.execute(
                    update(ChunkedUpload)
                    .where(ChunkedUpload.id == upload_id)
                    .values(expires_at=now + self.ttl)
                )
        except BaseException:
            core.reclaim(owner, written)
            raise
        replaced = any(x.name == part for x in others)
        if replaced:
            core.reclaim(owner, old)
        _RUNNING.settle(upload_id, running, (key, part, received))
        return PartInfo(part, received, now), not replaced

    # -- assembly ---------------------------------------------------------------------------------
    def assemble(
        self,
        p: Principal,
        name: str,
        path: str,
        *,
        total_length: int | None = None,
        mtime: float | None = None,
        expected_etag: str | None = None,
        create_only: bool = False,
        checksum: tuple[str, str] | None = None,
    ) -> tuple[NodeInfo, bool]:
        """Make the parts, in order, the new content of ``path`` (the final MOVE); returns
        (the file, whether it was created). ``total_length`` (OC-Total-Length) must equal the
        parts' sum; ``checksum`` ((type, hex), OC-Checksum) must match the whole content, else
        the upload is discarded (``ChecksumMismatch``). The folder is gone once it commits."""
        core = self.drive.core
        with self.drive.db.read() as s:
            row = self._row(s, p, name)
            upload_id, owner, announced = row.id, row.owner_id, row.total_length
            parts = s.execute(
                select(ChunkedPart.sort_key, ChunkedPart.name, ChunkedPart.size)
                .where(ChunkedPart.upload_id == upload_id)
                .order_by(ChunkedPart.sort_key, ChunkedPart.name)
            ).all()
            staged = (
                s.execute(
                    select(ChunkedBlock)
                    .join(
                        ChunkedPart,
                        (ChunkedPart.upload_id == ChunkedBlock.upload_id)
                        & (ChunkedPart.name == ChunkedBlock.part),
                    )
                    .where(ChunkedBlock.upload_id == upload_id)
                    .order_by(ChunkedPart.sort_key, ChunkedPart.name, ChunkedBlock.seq)
                )
                .scalars()
                .all()
            )
            blocks = _absolute(staged, {x.name: x.size for x in parts}, [x.name for x in parts])
        length = sum(x.size for x in parts)
        for expected in (total_length, announced):
            if expected is not None and expected != length:
                raise BadRequest(
                    f"the parts add up to {length} bytes, not the announced {expected}"
                )
        if checksum is not None:
            ContentChecksum(checksum[0])  # BadRequest for an unsupported type
        path = join(split_path(path))
        parent_and_name(path)
        t = core.target(p, path, Perm.NONE)
        _check_rights(t.perms)
        if t.owner_id != owner or not t.perms & (Perm.READ | Perm.WRITE):
            return self._reseal(
                p, name, path, blocks, length, owner, mtime, expected_etag, create_only, checksum
            )
        sha256 = self._digests(
            upload_id, [tuple(x) for x in parts], blocks, length, owner, checksum
        )
        refs = [
            BlockRef(b.hash, b.object_key, b.offset, b.size, b.stored_size, True) for b in blocks
        ]

        def finish(s, account, node) -> None:  # noqa: ANN001
            _, gone = self._forget(s, upload_id)  # its blocks now belong to the version
            if not gone:
                raise Conflict("the upload was assembled or cancelled meanwhile")

        info, created = self.drive.content.commit_version(
            p,
            t,
            IngestResult(length, sha256, refs),
            mtime=mtime,
            expected_etag=expected_etag,
            create_only=create_only,
            on_commit=finish,
        )
        _RUNNING.drop(upload_id)
        return info, created

    # -- jobs: assemblies that outlive their MOVE ------------------------------------------------
    def start_job(self, p: Principal) -> str:
        """Record an assembly still running for ``p``; its id (the client polls it)."""
        now = time.time()
        job = secrets.token_hex(16)
        with self.drive.db.write() as s:
            s.add(
                ChunkedJob(
                    id=job,
                    user_id=p.user_id,
                    status="started",
                    updated_at=now,
                    expires_at=now + self.ttl,
                )
            )
        return job

    def finish_job(
        self,
        job: str,
        *,
        node: NodeInfo | None = None,
        error_status: int | None = None,
        error: str | None = None,
    ) -> None:
        """Record how the assembly ``job`` ended: the file, or the failure to report."""
        values: dict[str, Any] = {"updated_at": time.time()}
        if node is not None:
            values.update(status="finished", node_id=node.id, etag=node.etag)
        else:
            values.update(status="error", error_status=error_status or 500, error=error)
        with self.drive.db.write() as s:
            s.execute(update(ChunkedJob).where(ChunkedJob.id == job).values(**values))

    def job(self, p: Principal, job: str) -> JobInfo:
        """The state of ``p``'s job ``job``; ``NotFound`` if unknown or expired. A job left
        ``started`` by a process that died reports an error."""
        now = time.time()
        with self.drive.db.read() as s:
            row = s.get(ChunkedJob, job)
            if row is None or row.user_id != p.user_id or row.expires_at < now:
                raise NotFound("no such upload job")
            if row.status == "started" and row.updated_at < now - JOB_STALE:
                return JobInfo(row.id, "error", error_status=500, error="the assembly stopped")
            return JobInfo(row.id, row.status, row.node_id, row.etag, row.error_status, row.error)

    # -- internals --------------------------------------------------------------------------------
    def _digests(
        self,
        upload_id: str,
        parts: list[tuple[int, str, int]],
        blocks: list[BlockRef],
        length: int,
        owner: int,
        checksum: tuple[str, str] | None,
    ) -> str:
        """The SHA-256 of the assembled content, after checking ``checksum``: from the running
        hashes when they cover exactly ``parts``, else by reading the blocks back once."""
        running = _RUNNING.get(upload_id)
        if (
            running is not None
            and running.order == parts
            and (checksum is None or checksum[0] == "SHA1")
        ):
            if checksum is not None:
                self._verify(upload_id, owner, "SHA1", running.sha1.hexdigest(), checksum[1])
            return str(running.sha256.hexdigest())
        sha = hashlib.sha256()
        check = ContentChecksum(checksum[0]) if checksum is not None else None
        for piece in self._read_back(owner, blocks, length):
            sha.update(piece)
            if check is not None:
                check.update(piece)
        if check is not None and checksum is not None:
            self._verify(upload_id, owner, check.kind, check.hexdigest(), checksum[1])
        return sha.hexdigest()

    def _read_back(self, owner: int, blocks: list[BlockRef], length: int) -> Iterator[bytes]:
        """The staged content, in pieces of 4 MiB (bounded memory)."""
        reader = self.drive.store.open_reader(
            self.drive.core.account_keys(owner),
            [(b.hash, b.object_key, b.offset, b.size) for b in blocks],
            length,
        )
        try:
            while piece := reader.read(4 << 20):
                yield piece
        finally:
            reader.close()

    def _verify(self, upload_id: str, owner: int, kind: str, actual: str, expected: str) -> None:
        """Discard the upload when its content does not match the client's checksum."""
        if actual == expected.lower():
            return
        with self.drive.db.write() as s:
            keys, _ = self._forget(s, upload_id)
        _RUNNING.drop(upload_id)
        self.drive.core.reclaim(owner, keys)
        raise ChecksumMismatch(
            f"{kind} checksum mismatch: expected {expected.lower()}, got {actual}",
            expected=expected.lower(),
            actual=actual,
            type=kind,
        )

    def _reseal(
        self,
        p: Principal,
        name: str,
        path: str,
        blocks: list[BlockRef],
        length: int,
        owner: int,
        mtime: float | None,
        expected_etag: str | None,
        create_only: bool,
        checksum: tuple[str, str] | None,
    ) -> tuple[NodeInfo, bool]:
        """Assemble into another account's tree (or a drop folder): stream the parts through
        an ordinary upload there, then drop the folder."""
        upload = self.drive.content.begin_upload(
            p,
            path,
            expected_etag=expected_etag,
            create_only=create_only,
            declared_size=length,
            checksum=checksum,
        )
        try:
            for piece in self._read_back(owner, blocks, length):
                upload.write(piece)
        except BaseException:
            upload.abort()
            raise
        info = upload.commit(mtime=mtime, expected_size=length)
        with contextlib.suppress(NotFound):
            self.cancel(p, name)
        return info, upload.created

    def _row(self, s, p: Principal, name: str) -> ChunkedUpload:  # noqa: ANN001
        row = s.scalars(
            select(ChunkedUpload).where(
                ChunkedUpload.user_id == p.user_id, ChunkedUpload.name == name
            )
        ).first()
        if row is None or row.expires_at < time.time():
            raise NotFound(f"no upload folder {name!r}")
        return row

    def _drop_expired(self, p: Principal, name: str, now: float) -> None:
        """Make room for a new folder where an expired one of the same name lingers."""
        with self.drive.db.write() as s:
            row = s.scalars(
                select(ChunkedUpload).where(
                    ChunkedUpload.user_id == p.user_id,
                    ChunkedUpload.name == name,
                    ChunkedUpload.expires_at < now,
                )
            ).first()
            if row is None:
                return
            (keys, _), owner, uid = self._forget(s, row.id), row.owner_id, row.id
        _RUNNING.drop(uid)
        self.drive.core.reclaim(owner, keys)

    @staticmethod
    def _forget(s, upload_id: str) -> tuple[list[str], bool]:  # noqa: ANN001
        """Delete a folder, its parts and blocks; return the object keys its parts stored (to
        reclaim after the transaction) and whether the folder was still there."""
        keys = list(
            s.scalars(
                select(ChunkedBlock.object_key).where(
                    ChunkedBlock.upload_id == upload_id, ChunkedBlock.new.is_(True)
                )
            )
        )
        s.execute(delete(ChunkedBlock).where(ChunkedBlock.upload_id == upload_id))
        s.execute(delete(ChunkedPart).where(ChunkedPart.upload_id == upload_id))
        gone = s.execute(delete(ChunkedUpload).where(ChunkedUpload.id == upload_id)).rowcount
        return keys, bool(gone)

    @staticmethod
    def _forget_part(s, upload_id: str, part: str) -> list[str]:  # noqa: ANN001
        where = (ChunkedBlock.upload_id == upload_id) & (ChunkedBlock.part == part)
        keys = list(
            s.scalars(select(ChunkedBlock.object_key).where(where, ChunkedBlock.new.is_(True)))
        )
        s.execute(delete(ChunkedBlock).where(where))
        s.execute(
            delete(ChunkedPart).where(ChunkedPart.upload_id == upload_id, ChunkedPart.name == part)
        )
        return keys

    def _headroom(self, owner: int) -> int:
        with self.drive.db.read() as s:
            quota, used = s.execute(
                select(User.quota_bytes, User.used_bytes).where(User.id == owner)
            ).one()
        return int(quota) - int(used)

    @staticmethod
    def _in_flight(s, owner: int) -> int:  # noqa: ANN001
        """Bytes held by the live chunked uploads sealed for ``owner``."""
        total = s.scalar(
            select(func.coalesce(func.sum(ChunkedPart.size), 0))
            .join(ChunkedUpload, ChunkedUpload.id == ChunkedPart.upload_id)
            .where(ChunkedUpload.owner_id == owner)
        )
        return int(total or 0)


def _check_rights(perms: Perm) -> None:
    if not perms & (Perm.WRITE | Perm.CREATE):
        raise PermissionDenied("not allowed: write")


def _too_large(total: int | None, limit: int) -> BadRequest | FileTooLarge:
    if total is not None and limit == total:
        return BadRequest(f"the parts would pass the announced length of {total} bytes")
    return FileTooLarge(f"file is larger than {limit} bytes")


def _info(row: ChunkedUpload, parts: tuple[PartInfo, ...] = ()) -> ChunkedInfo:
    return ChunkedInfo(
        row.name, row.created_at, row.expires_at, row.total_length, row.destination, parts
    )


def _block_rows(upload_id: str, part: str, refs: list[BlockRef]) -> list[dict[str, object]]:
    return [
        {
            "upload_id": upload_id,
            "part": part,
            "seq": i,
            "hash": r.hash,
            "object_key": r.object_key,
            "offset": r.offset,
            "size": r.size,
            "stored_size": r.stored_size,
            "new": r.new,
        }
        for i, r in enumerate(refs)
    ]


def _absolute(staged: Any, sizes: dict[str, int], order: list[str]) -> list[BlockRef]:
    """The parts' blocks with offsets in the whole file (rows come in assembly order)."""
    starts: dict[str, int] = {}
    pos = 0
    for name in order:
        starts[name] = pos
        pos += sizes[name]
    return [
        BlockRef(b.hash, b.object_key, starts[b.part] + b.offset, b.size, b.stored_size, b.new)
        for b in staged
    ]


class _RunningHashes:
    """Per process: the running hashes of uploads whose parts arrived here in order."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._states: OrderedDict[str, _Running] = OrderedDict()

    def get(self, upload_id: str) -> _Running | None:
        with self._lock:
            return self._states.get(upload_id)

    def drop(self, upload_id: str) -> None:
        with self._lock:
            self._states.pop(upload_id, None)

    def extendable(
        self, upload_id: str, parts: list[tuple[int, str, int]], key: int, name: str
    ) -> _Running | None:
        """A copy to extend with part ``name`` when it follows every part held, in order."""
        with self._lock:
            state = self._states.get(upload_id)
            if state is None and not parts:
                return _Running()
            if state is None or state.order != parts:
                return None
            if parts and (key, name) <= parts[-1][:2]:
                return None
            return state.extended()

    def settle(self, upload_id: str, running: _Running | None, part: tuple[int, str, int]) -> None:
        """After a part is stored: keep ``running`` (extended by ``part``) if nothing else
        moved meanwhile, else forget the upload (its MOVE reads back)."""
        with self._lock:
            state = self._states.get(upload_id)
            expected = running.order if running is not None else None
            if running is None or (state is not None and state.order != expected):
                self._states.pop(upload_id, None)
                return
            if state is None and expected:
                return  # dropped meanwhile
            running.order.append(part)
            self._states[upload_id] = running
            self._states.move_to_end(upload_id)
            while len(self._states) > MAX_RUNNING:
                self._states.popitem(last=False)


_RUNNING = _RunningHashes()

__all__ = ["ChunkedInfo", "ChunkedUploads", "JobInfo", "PartInfo", "part_key", "upload_name"]
