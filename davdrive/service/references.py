"""Which stored objects are referenced: the one answer fsck, upload expiry and GC share.

An object in the block store is referenced while a ``block`` row names it (a block of some
version, or one not yet collected), or an unfinished resumable upload staged it (a complete
block listed in ``upload_block``, or the session's tail), or an unfinished chunked upload
holds it as part of a part (``chunked_block``), or a delta-sync client uploaded it through
the block API and no commit has used it yet (``staged_block``, kept for a grace period; upkeep
drops expired rows). Anything else is an orphan: written by an upload that never committed,
or left by a crash.
"""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import select, union
from sqlalchemy.orm import Session

from davdrive.metadata.schema import (
    Block,
    ChunkedBlock,
    StagedBlock,
    UploadBlock,
    UploadSession,
)

IN_BATCH = 500


def _referenced(only: Collection[str] | None = None):  # noqa: ANN202 - a SQL union
    block = select(Block.object_key.label("key"))
    staged = select(UploadBlock.object_key.label("key"))
    tail = select(UploadSession.tail_key.label("key")).where(UploadSession.tail_key.is_not(None))
    parts = select(ChunkedBlock.object_key.label("key"))
    uploaded = select(StagedBlock.object_key.label("key"))
    if only is not None:
        keys = list(only)
        block = block.where(Block.object_key.in_(keys))
        staged = staged.where(UploadBlock.object_key.in_(keys))
        tail = tail.where(UploadSession.tail_key.in_(keys))
        parts = parts.where(ChunkedBlock.object_key.in_(keys))
        uploaded = uploaded.where(StagedBlock.object_key.in_(keys))
    return union(block, staged, tail, parts, uploaded)


def referenced_keys(s: Session, only: Collection[str] | None = None) -> set[str]:
    """The object keys something refers to; with ``only``, those of ``only`` that are."""
    if only is None:
        return set(s.scalars(_referenced()))
    wanted = sorted(set(only))
    found: set[str] = set()
    for i in range(0, len(wanted), IN_BATCH):
        found.update(s.scalars(_referenced(wanted[i : i + IN_BATCH])))
    return found


__all__ = ["referenced_keys"]
