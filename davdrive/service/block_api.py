"""The block API of delta sync: which blocks an account holds, uploading single blocks, and
reading a block back through a file the caller may read.

A delta-sync client cuts a file into blocks with the published chunking parameters
(``davdrive.protocol``), asks which of them the server lacks (``check``), uploads those
(``put``), then commits the file as a list of block ids (``service.delta_commit``).

"Held" means what a commit can use without the client sending the bytes again: a ``block`` row
of the account that fsck has not marked lost (stored as an object or kept inline: both read
back the same), or a block uploaded here and not committed yet (``staged_block``). An uploaded
block is sealed and stored exactly like an ingested one (zstd, AES-GCM with the account's keys,
object key HMAC(account, id)), always as an object (a staged block has no file to be inline
in). It stays referenced, and counts against the account's free space like the parts of a
chunked upload in flight, until a commit adopts it or ``grace`` seconds after its last upload;
upkeep then drops the row and reclaims the object (``expire``).
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from sqlalchemy import delete, func, select, update

from davdrive.blockstore.blockformat import block_hash
from davdrive.errors import BadRequest, Conflict, FileTooLarge, NotFound, QuotaExceeded
from davdrive.metadata.schema import (
    Block,
    ChunkedPart,
    ChunkedUpload,
    FileVersion,
    StagedBlock,
    User,
    VersionBlock,
)
from davdrive.protocol import MAX_SIZE
from davdrive.service.access import Perm
from davdrive.service.checksums import ChecksumMismatch
from davdrive.service.core import IN_BATCH, LOST

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from davdrive.service.drive import Drive
    from davdrive.service.types import Principal

MAX_CHECK = 10_000  # block ids per check
STAGED_GRACE = 24 * 3600.0  # seconds an uploaded block waits for a commit
READABLE_SCAN = 5_000  # files of other accounts looked at to find one that shares a block
_BLOCK_ID = re.compile(r"[0-9a-f]{64}")
_PUT_TRIES = 3


def block_id(value: object) -> str:
    """A block id as the API takes it (64 lowercase hex digits); ``BadRequest`` otherwise."""
    if not isinstance(value, str) or not _BLOCK_ID.fullmatch(value):
        raise BadRequest("a block id is 64 lowercase hex digits (BLAKE3-256 of the block)")
    return value


def own_account(p: Principal) -> int:
    """The account whose blocks ``p`` uses: its own (a share link's holder has none)."""
    if p.link is not None:
        raise NotFound("the block API needs an account")
    return p.user_id


def batches(items: Sequence[str]) -> Iterable[list[str]]:
    """``items`` in lists short enough for ``IN (...)``."""
    for i in range(0, len(items), IN_BATCH):
        yield list(items[i : i + IN_BATCH])


class BlockApi:
    """Check, upload, read and expire the blocks of delta sync."""

    def __init__(
        self,
        drive: Drive,
        *,
        grace: float = STAGED_GRACE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.drive = drive
        self.grace = grace
        self.clock = clock

    # -- check --------------------------------------------------------------------------------
    def check(self, p: Principal, hashes: Sequence[object]) -> list[str]:
        """The ids among ``hashes`` the caller's account does not hold, in the order given,
        each once. At most ``MAX_CHECK`` ids; each must be a block id (``BadRequest``)."""
        owner = own_account(p)
        if len(hashes) > MAX_CHECK:
            raise BadRequest(f"at most {MAX_CHECK} block ids per check")
        ids = [block_id(h) for h in hashes]
        held = self.held(owner, ids)
        missing: list[str] = []
        for h in ids:
            if h not in held:
                missing.append(h)
                held.add(h)  # each once
        return missing

    def held(self, owner: int, ids: Iterable[str]) -> set[str]:
        """The ids among ``ids`` the account holds (a usable block row or a staged block)."""
        wanted = sorted(set(ids))
        found: set[str] = set()
        with self.drive.db.read_conn(snapshot=False) as conn:
            for batch in batches(wanted):
                found.update(
                    conn.scalars(
                        select(Block.hash).where(
                            Block.user_id == owner, Block.hash.in_(batch), Block.tier != LOST
                        )
                    )
                )
                found.update(
                    conn.scalars(
                        select(StagedBlock.hash).where(
                            StagedBlock.user_id == owner, StagedBlock.hash.in_(batch)
                        )
                    )
                )
        return found

    # -- upload -------------------------------------------------------------------------------
    def put(self, p: Principal, block: str, data: bytes) -> bool:
        """Store ``data`` as block ``block`` of the caller's account, durably; True when it was
        stored now, False when the account held it already (nothing written; a staged block's
        grace period starts again). ``BadRequest`` for an empty block or one whose BLAKE3-256
        is not ``block``, ``FileTooLarge`` past ``protocol.MAX_SIZE``, ``QuotaExceeded``."""
        owner = own_account(p)
        h = block_id(block)
        if len(data) > MAX_SIZE:
            raise FileTooLarge(f"a block is at most {MAX_SIZE} bytes")
        if not data:
            raise BadRequest("a block is at least 1 byte")
        actual = block_hash(data)
        if actual != h:
            raise ChecksumMismatch(
                f"the body's BLAKE3-256 is {actual}, not {h}", expected=h, actual=actual
            )
        if self._restage(owner, h):
            return False
        core, store = self.drive.core, self.drive.store
        if core.has_block(owner, h):
            return False
        if len(data) > self.room(owner):
            raise QuotaExceeded("the block does not fit in the remaining quota")
        keys = core.account_keys(owner)
        for _ in range(_PUT_TRIES):
            ref = store.put_block(keys, data, block_hash=h)
            try:
                with self.drive.db.write() as s:
                    # Under the account lock, like a reclaim: an object another request's
                    # reclaim removed meanwhile is never recorded.
                    core.lock_account(s, owner)
                    row = s.get(StagedBlock, (owner, h))
                    if row is not None:  # a concurrent upload of the same block won
                        row.staged_at = self.clock()
                        return False
                    if not store.has_object(ref.object_key):
                        continue  # reclaimed between the write and this transaction: again
                    if len(data) > self._room(s, owner):
                        raise QuotaExceeded("the block does not fit in the remaining quota")
                    s.add(
                        StagedBlock(
                            user_id=owner,
                            hash=h,
                            object_key=ref.object_key,
                            size=len(data),
                            stored_size=ref.stored_size,
                            staged_at=self.clock(),
                        )
                    )
                return True
            except BaseException:
                core.reclaim(owner, [ref.object_key])  # only if nothing refers to it
                raise
        raise Conflict("the block was collected while it was stored; send it again")

    def _restage(self, owner: int, h: str) -> bool:
        """Restart the grace period of a staged block; whether there was one."""
        with self.drive.db.write() as s:
            done = s.execute(
                update(StagedBlock)
                .where(StagedBlock.user_id == owner, StagedBlock.hash == h)
                .values(staged_at=self.clock())
            )
            return bool(done.rowcount)

    def room(self, owner: int) -> int:
        """Bytes the account may still stage (quota minus use minus uploads in flight)."""
        with self.drive.db.read() as s:
            return self._room(s, owner)

    @staticmethod
    def _room(s: Session, owner: int) -> int:
        quota, used = s.execute(
            select(User.quota_bytes, User.used_bytes).where(User.id == owner)
        ).one()
        parts = s.scalar(
            select(func.coalesce(func.sum(ChunkedPart.size), 0))
            .join(ChunkedUpload, ChunkedUpload.id == ChunkedPart.upload_id)
            .where(ChunkedUpload.owner_id == owner)
        )
        staged = s.scalar(
            select(func.coalesce(func.sum(StagedBlock.size), 0)).where(StagedBlock.user_id == owner)
        )
        return int(quota) - int(used) - int(parts or 0) - int(staged or 0)

    # -- read ---------------------------------------------------------------------------------
    def get(self, p: Principal, block: str) -> bytes:
        """The plaintext of block ``block`` when a file ``p`` may read uses it (a current
        version or a kept revision, in ``p``'s own tree or in a share ``p`` can read);
        ``NotFound`` otherwise, the same answer as for an id nobody has."""
        h = block_id(block)
        core = self.drive.core
        with core.db.read_conn(snapshot=False) as conn:
            owners = {p.user_id} | {m.owner_id for m in core.mounts(conn, p)}
            found = None
            candidates = conn.execute(
                select(Block.user_id, FileVersion.node_id)
                .distinct()
                .join(VersionBlock, VersionBlock.block_id == Block.id)
                .join(FileVersion, FileVersion.id == VersionBlock.version_id)
                .where(Block.hash == h, Block.user_id.in_(sorted(owners)))
                .limit(READABLE_SCAN)
            ).all()
            # the caller's own files first: the access rule answers those without a query
            candidates.sort(key=lambda r: r.user_id != p.user_id)
            for row in candidates:
                if core.node_perms(conn, p, row.user_id, row.node_id) & Perm.READ:
                    found = row.user_id
                    break
            if found is None:
                raise NotFound("no such block")
            stored = conn.execute(
                select(Block.object_key, Block.inline_data).where(
                    Block.user_id == found, Block.hash == h
                )
            ).one()
        return self.drive.store.read_block(
            core.account_keys(found), h, stored.object_key, stored.inline_data
        )

    # -- expiry -------------------------------------------------------------------------------
    def expire(self, now: float | None = None) -> int:
        """Drop staged blocks whose grace period ended and reclaim their objects (those no
        block row or upload refers to); returns how many rows went."""
        now = self.clock() if now is None else now
        cutoff = now - self.grace
        with self.drive.db.read() as s:
            owners = list(
                s.scalars(
                    select(StagedBlock.user_id).where(StagedBlock.staged_at < cutoff).distinct()
                )
            )
        dropped = 0
        for owner in owners:
            with self.drive.db.write() as s:
                with contextlib.suppress(NotFound):  # deleted meanwhile: its rows went too
                    self.drive.core.lock_account(s, owner)
                where = (StagedBlock.user_id == owner) & (StagedBlock.staged_at < cutoff)
                keys = list(s.scalars(select(StagedBlock.object_key).where(where)))
                s.execute(delete(StagedBlock).where(where))
            dropped += len(keys)
            self.drive.core.reclaim(owner, keys)
        return dropped

    def unstage(self, owner: int, ids: Iterable[str], *, reclaim: bool) -> None:
        """Forget the staged rows of ``ids`` (their blocks were committed elsewhere);
        ``reclaim``: and delete their objects if nothing else refers to them."""
        wanted = sorted(set(ids))
        keys: list[str] = []
        with self.drive.db.write() as s:
            self.unstage_in(s, owner, wanted, keys)
        if reclaim:
            self.drive.core.reclaim(owner, keys)

    @staticmethod
    def unstage_in(s: Session, owner: int, ids: Sequence[str], keys: list[str]) -> None:
        """Inside a transaction: delete the staged rows of ``ids``, adding their object keys
        to ``keys``."""
        for batch in batches(ids):
            where = (StagedBlock.user_id == owner) & StagedBlock.hash.in_(batch)
            keys += s.scalars(select(StagedBlock.object_key).where(where))
            s.execute(delete(StagedBlock).where(where))


__all__ = ["MAX_CHECK", "STAGED_GRACE", "BlockApi", "block_id", "own_account"]
