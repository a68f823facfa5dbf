"""Which stored objects are referenced: the one answer fsck, upload expiry and GC share.

An object in the block store is referenced while a ``block`` row names it (a block of some
version, or one not yet collected; hot, archiving or cold: an archived object is referenced in
the cold tier as much as a hot one), or an unfinished resumable upload staged it (a complete
block listed in ``upload_block``, or the session's tail), or an unfinished chunked upload
holds it as part of a part (``chunked_block``), or a delta-sync client uploaded it through
the block API and no commit has used it yet (``staged_block``, kept for a grace period; upkeep
drops expired rows), or a replicated backend still owes a store a copy of it
(``replication_queue``). Anything else is an orphan: written by an upload that never
committed, or left by a crash.

A ``block`` row is collectable (``collectable``) when no version uses it (a trashed file's
versions still do), no unfinished upload holds its object (an upload that deduplicated against
it commits by its row), and no writer has used it within the grace period (``last_access``: set
when the row is made and by every commit that references it, in the commit's transaction).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, select, union
from sqlalchemy.orm import Session

from davdrive.metadata.schema import (
    Block,
    ChunkedBlock,
    ReplicationQueue,
    StagedBlock,
    UploadBlock,
    UploadSession,
    VersionBlock,
)

IN_BATCH = 500


def _held(only: Collection[str] | None = None) -> list[Any]:
    """SELECTs of the object keys held by something other than a ``block`` row."""
    staged = select(UploadBlock.object_key.label("key"))
    tail = select(UploadSession.tail_key.label("key")).where(UploadSession.tail_key.is_not(None))
    parts = select(ChunkedBlock.object_key.label("key"))
    uploaded = select(StagedBlock.object_key.label("key"))
    owed = select(ReplicationQueue.object_key.label("key"))
    if only is not None:
        keys = list(only)
        staged = staged.where(UploadBlock.object_key.in_(keys))
        tail = tail.where(UploadSession.tail_key.in_(keys))
        parts = parts.where(ChunkedBlock.object_key.in_(keys))
        uploaded = uploaded.where(StagedBlock.object_key.in_(keys))
        owed = owed.where(ReplicationQueue.object_key.in_(keys))
    return [staged, tail, parts, uploaded, owed]


def _referenced(only: Collection[str] | None = None):  # noqa: ANN202 - a SQL union
    block = select(Block.object_key.label("key"))
    if only is not None:
        block = block.where(Block.object_key.in_(list(only)))
    return union(block, *_held(only))


def referenced_keys(s: Session, only: Collection[str] | None = None) -> set[str]:
    """The object keys something refers to; with ``only``, those of ``only`` that are."""
    if only is None:
        return set(s.scalars(_referenced()))
    wanted = sorted(set(only))
    found: set[str] = set()
    for i in range(0, len(wanted), IN_BATCH):
        found.update(s.scalars(_referenced(wanted[i : i + IN_BATCH])))
    return found


def each_referenced_key(s: Session) -> Iterator[str]:
    """Every referenced object key (some more than once), streamed in batches: for a pass over
    the whole store (GC's and fsck's listing), without one query per batch of listed keys."""
    yield from s.scalars(_referenced(), execution_options={"yield_per": 10_000})


def unused_block() -> ColumnElement[bool]:
    """A condition on ``block``: no version uses the row and no unfinished upload holds its
    object (correlated: usable in a SELECT or a DELETE of ``block``)."""
    used = exists().where(VersionBlock.block_id == Block.id)
    return and_(~used, Block.object_key.not_in(union(*_held())))


def collectable(cutoff: float) -> ColumnElement[bool]:
    """``unused_block`` and untouched by any writer since ``cutoff`` (``last_access``)."""
    return and_(Block.last_access < cutoff, unused_block())


__all__ = ["collectable", "each_referenced_key", "referenced_keys", "unused_block"]
