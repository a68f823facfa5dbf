"""Consistency check of metadata against the block backend (``davdrive fsck``)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from davdrive.errors import IntegrityError
from davdrive.metadata.schema import Block, UploadBlock, UploadSession, VersionBlock

if TYPE_CHECKING:
    from davdrive.service.drive import Drive

# An object younger than this may belong to a PUT still streaming (its block rows are written
# in the commit), so repair leaves it alone: a single upload must finish within a day.
# Resumable uploads are safe at any age: their blocks are listed in upload_block.
ORPHAN_GRACE = 24 * 3600.0


@dataclass
class FsckReport:
    blocks_checked: int = 0
    missing: list[str] = field(default_factory=list)  # object keys referenced but absent
    damaged: list[str] = field(default_factory=list)  # present but failing GCM/id checks
    orphans: list[str] = field(default_factory=list)  # stored but referenced by no block row
    unreferenced_blocks: int = 0  # block rows no version uses (GC candidates)
    versions_affected: int = 0  # versions that use a missing or damaged block
    repaired: int = 0

    @property
    def ok(self) -> bool:
        return not (self.missing or self.damaged)

    def summary(self) -> str:
        return (
            f"blocks checked: {self.blocks_checked}; missing: {len(self.missing)}; "
            f"damaged: {len(self.damaged)}; orphan objects: {len(self.orphans)}; "
            f"unreferenced blocks: {self.unreferenced_blocks}; "
            f"versions affected: {self.versions_affected}; repaired: {self.repaired}"
        )


def fsck(drive: Drive, *, repair: bool = False, verify: bool = True) -> FsckReport:
    """Walk every block row (reading and authenticating it when ``verify``) and every stored
    object. ``repair`` deletes orphan objects (referenced by no block row and no unfinished
    resumable upload) older than the grace period; it never touches referenced data."""
    report = FsckReport()
    backend = drive.store.backend
    known_keys: set[str] = set()
    bad_ids: list[int] = []
    with drive.db.read() as s:
        rows = s.execute(
            select(Block.id, Block.user_id, Block.hash, Block.object_key).order_by(Block.user_id)
        ).all()
        staged = set(s.scalars(select(UploadBlock.object_key)))
        staged.update(
            s.scalars(select(UploadSession.tail_key).where(UploadSession.tail_key.is_not(None)))
        )
        used = select(VersionBlock.block_id)
        report.unreferenced_blocks = int(
            s.scalar(select(func.count()).select_from(Block).where(Block.id.not_in(used))) or 0
        )
    for row in rows:
        known_keys.add(row.object_key)
        report.blocks_checked += 1
        if not backend.exists(row.object_key):
            report.missing.append(row.object_key)
            bad_ids.append(row.id)
            continue
        if verify:
            try:
                drive.store.read_block(drive._account_keys(row.user_id), row.hash, row.object_key)
            except IntegrityError:
                report.damaged.append(row.object_key)
                bad_ids.append(row.id)
    if bad_ids:
        with drive.db.read() as s:
            report.versions_affected = int(
                s.scalar(
                    select(func.count(func.distinct(VersionBlock.version_id))).where(
                        VersionBlock.block_id.in_(bad_ids)
                    )
                )
                or 0
            )
    cutoff = time.time() - ORPHAN_GRACE
    for obj in backend.list():
        if obj.key not in known_keys and obj.key not in staged:
            report.orphans.append(obj.key)
            if repair and obj.mtime < cutoff:
                backend.delete(obj.key)
                report.repaired += 1
    return report
