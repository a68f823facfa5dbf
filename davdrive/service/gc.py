"""Garbage collection (``davdrive gc`` and the scheduled job): mark, report, then sweep.

Two kinds of garbage, both collected only after a grace period (``gc_grace``, default a day):

- **unused block rows**: rows no version uses and no unfinished upload holds
  (``references.collectable``), untouched by any writer for the grace period. They are deleted
  with their objects (an inline block has none).
- **orphan objects**: objects in the backend no row refers to (``references.referenced_keys``)
  whose time is older than the grace period (a crashed upload's blocks). fsck's ``--repair``
  uses the same sweep (``sweep_orphans``).

Cold blocks (``service.archive``) are rows like any other: a row names its object whatever its
tier, so the orphan sweep never takes a referenced cold object. With a cold store
(``archive.url``) the backend lists and deletes in both stores, so a collected cold row's object
goes from the cold store, and a cold object nothing names (a crash) is an orphan like a hot one.

GC runs online, while clients write. The races it must not lose, and how they are closed:

- *A dedup hit adopts a row the sweep is deleting.* The sweep deletes rows with one conditional
  DELETE that re-checks "unused and untouched since the cutoff" in the statement itself, and a
  commit touches (``last_access``) every existing row it references in its own transaction
  (``Content._register_blocks``). On SQLite the two transactions are serial; on PostgreSQL the
  sweep first locks its candidates (``FOR UPDATE SKIP LOCKED``: a row a commit holds is left
  for the next run) and a commit that waits for the sweep's lock finds the row gone and answers
  409 "retry" instead of referencing it. A writer that checked "the account has this block"
  before the sweep and commits after it gets that 409 too: no version ever points to a swept
  block.
- *An upload stores a block with the same (deterministic) object key again right after its row
  was swept.* Objects are deleted after the rows' transaction commits, through
  ``DriveCore.reclaim``, which re-checks every reference under the account's row lock; commits
  check their new objects under that lock. A crash between the two leaves an orphan object,
  which the next run collects.
- *An orphan is re-used by an upload between the listing and the delete.* ``sweep_orphans``
  re-checks the references of each batch in a write transaction that excludes every commit
  (SQLite's write lock; PostgreSQL: ``LOCK TABLE users IN EXCLUSIVE MODE``, which waits for the
  account row locks commits hold) and deletes the objects before it ends; a writer that stored
  the object meanwhile finds it missing when it commits and answers 409.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import delete, select, text
from sqlalchemy.exc import IntegrityError as SqlIntegrityError

from davdrive.metadata.schema import Block, User
from davdrive.service.references import collectable, each_referenced_key, referenced_keys

if TYPE_CHECKING:
    from davdrive.service.drive import Drive
    from davdrive.storage.base import ObjectInfo

log = logging.getLogger("davdrive.gc")

DEFAULT_GRACE = 24 * 3600.0
ROW_BATCH = 200  # block rows per sweep transaction
ORPHAN_BATCH = 100  # objects per orphan transaction (it holds every account's writes back)


@dataclass(frozen=True)
class UnusedBlock:
    """A block row the sweep may delete (if still collectable then)."""

    id: int
    user_id: int
    object_key: str
    stored_size: int
    inline: bool


@dataclass
class GcPlan:
    """What a run would collect, as found when it was planned."""

    cutoff: float  # rows untouched and objects older than this are collectable
    blocks: list[UnusedBlock] = field(default_factory=list)
    orphans: list[ObjectInfo] = field(default_factory=list)

    @property
    def block_bytes(self) -> int:
        return sum(b.stored_size for b in self.blocks)

    @property
    def orphan_bytes(self) -> int:
        return sum(o.size for o in self.orphans)

    @property
    def items(self) -> int:
        """How many rows and orphans the sweep goes through (a progress bar's length)."""
        return len(self.blocks) + len(self.orphans)

    def report(self) -> GcReport:
        """What executing the plan would remove if nobody wrote meanwhile (a dry run)."""
        return GcReport(
            dry_run=True,
            rows_removed=len(self.blocks),
            objects_removed=sum(1 for b in self.blocks if not b.inline) + len(self.orphans),
            orphans_removed=len(self.orphans),
            bytes_freed=self.block_bytes + self.orphan_bytes,
        )


@dataclass
class GcReport:
    """What a run removed (or, for a dry run, would remove)."""

    dry_run: bool = False
    rows_removed: int = 0  # block rows deleted
    objects_removed: int = 0  # objects deleted (of those rows, and orphans)
    orphans_removed: int = 0  # of which orphans
    bytes_freed: int = 0  # stored bytes of the deleted rows (objects or inline) and orphans
    rows_kept: int = 0  # planned rows a writer used meanwhile (kept)

    def summary(self) -> str:
        verb = "would remove" if self.dry_run else "removed"
        text_ = (
            f"gc {verb}: {self.rows_removed} unused block rows, {self.objects_removed} objects "
            f"({self.orphans_removed} orphans); {'would free' if self.dry_run else 'freed'} "
            f"{self.bytes_freed} bytes"
        )
        if self.rows_kept:
            text_ += f"; {self.rows_kept} rows kept (used by a writer meanwhile)"
        return text_


def plan_gc(drive: Drive, *, grace: float = DEFAULT_GRACE, now: float | None = None) -> GcPlan:
    """Mark: the collectable block rows and the orphan objects older than ``grace``."""
    cutoff = (time.time() if now is None else now) - grace
    plan = GcPlan(cutoff)
    with drive.db.read() as s:
        rows = s.execute(
            select(
                Block.id,
                Block.user_id,
                Block.object_key,
                Block.stored_size,
                Block.inline_data.is_not(None).label("inline"),
            )
            .where(collectable(cutoff))
            .order_by(Block.user_id, Block.id)
        ).all()
    plan.blocks = [
        UnusedBlock(r.id, r.user_id, r.object_key, r.stored_size, r.inline) for r in rows
    ]
    plan.orphans = [o for o in unreferenced_objects(drive) if o.mtime < cutoff]
    return plan


def run_gc(
    drive: Drive,
    *,
    grace: float = DEFAULT_GRACE,
    dry_run: bool = False,
    now: float | None = None,
    progress: Callable[[int], None] | None = None,
) -> GcReport:
    """Plan, then (unless ``dry_run``) execute; ``progress(n)`` after each n items swept."""
    plan = plan_gc(drive, grace=grace, now=now)
    if dry_run:
        return plan.report()
    return execute_gc(drive, plan, progress=progress)


def execute_gc(
    drive: Drive, plan: GcPlan, *, progress: Callable[[int], None] | None = None
) -> GcReport:
    """Sweep: delete the planned rows still collectable, then their objects, then the orphans
    still referenced by nothing."""
    report = GcReport()
    by_owner: dict[int, list[UnusedBlock]] = defaultdict(list)
    for b in plan.blocks:
        by_owner[b.user_id].append(b)
    for owner, blocks in by_owner.items():
        for i in range(0, len(blocks), ROW_BATCH):
            batch = blocks[i : i + ROW_BATCH]
            gone = _sweep_rows(drive, batch, plan.cutoff)
            report.rows_removed += len(gone)
            report.rows_kept += len(batch) - len(gone)
            report.bytes_freed += sum(size for _key, size, _inline in gone)
            # After the rows' transaction: reclaim re-checks every reference under the account
            # lock (an upload may have stored the same block again meanwhile).
            # (An inline row has no object to delete; should it have one too, stored before
            # the block was kept inline, that object is an orphan for the next run.)
            stored = [key for key, _size, inline in gone if not inline]
            report.objects_removed += drive.core.reclaim(owner, stored)
            if progress is not None:
                progress(len(batch))
    orphans = sweep_orphans(drive, plan.orphans, progress=progress)
    report.orphans_removed = len(orphans)
    report.objects_removed += len(orphans)
    report.bytes_freed += sum(o.size for o in orphans)
    return report


def _sweep_rows(
    drive: Drive, batch: list[UnusedBlock], cutoff: float
) -> list[tuple[str, int, bool]]:
    """Delete the rows of ``batch`` that are still collectable, in one transaction; return
    (object key, stored size, inline) of each deleted row."""
    planned = {b.id: b for b in batch}
    try:
        with drive.db.write() as s:
            # PostgreSQL: lock the candidates first; a row a commit holds (it is touching or
            # referencing it) is skipped, never waited for. SQLite ignores FOR UPDATE.
            locked = s.scalars(
                select(Block.id)
                .where(Block.id.in_(list(planned)), collectable(cutoff))
                .with_for_update(skip_locked=True)
            ).all()
            if not locked:
                return []
            gone = s.scalars(
                delete(Block).where(Block.id.in_(locked), collectable(cutoff)).returning(Block.id)
            ).all()
    except SqlIntegrityError:
        # A version came to reference a row after the DELETE's snapshot (the foreign key
        # refused it): nothing was deleted; the next run looks again.
        log.info("gc: a writer used some of %d planned block rows meanwhile; kept", len(batch))
        return []
    # (SQLite 3.40 answers ``inline_data IS NOT NULL`` wrongly in a DELETE's RETURNING: the
    # plan's flags are used; a row's key, size and inline state do not change while unused.)
    return [(planned[i].object_key, planned[i].stored_size, planned[i].inline) for i in gone]


def unreferenced_objects(drive: Drive) -> Iterator[ObjectInfo]:
    """Every stored object no row referred to when the pass started (listing order).

    The references are read once, before the listing (a compact set: 32 bytes a key), not per
    batch of listed keys (``block.object_key`` has no index). An object referenced after that
    is young (its writer stored it just now) or is re-checked by ``sweep_orphans`` before it
    is deleted."""
    with drive.db.read() as s:
        used = {_compact(key) for key in each_referenced_key(s)}
    for obj in drive.store.backend.list():
        if _compact(obj.key) not in used:
            yield obj


def _compact(key: str) -> bytes | str:
    """A hex key as bytes (half the memory of the string); anything else as it is."""
    try:
        return bytes.fromhex(key)
    except ValueError:
        return key


def sweep_orphans(
    drive: Drive,
    orphans: Iterable[ObjectInfo],
    *,
    progress: Callable[[int], None] | None = None,
) -> list[ObjectInfo]:
    """Delete the objects among ``orphans`` that nothing refers to, each batch while every
    commit is held back (see the module docstring); return those deleted."""
    batch: list[ObjectInfo] = []
    deleted: list[ObjectInfo] = []
    for obj in orphans:
        batch.append(obj)
        if len(batch) >= ORPHAN_BATCH:
            deleted += _sweep_orphan_batch(drive, batch)
            if progress is not None:
                progress(len(batch))
            batch = []
    if batch:
        deleted += _sweep_orphan_batch(drive, batch)
        if progress is not None:
            progress(len(batch))
    return deleted


def _sweep_orphan_batch(drive: Drive, batch: list[ObjectInfo]) -> list[ObjectInfo]:
    with drive.db.write() as s:
        if not drive.db.is_sqlite:
            # Waits for every account row lock (commits hold theirs while they check their new
            # objects and record them) and keeps new ones out until this transaction ends.
            s.execute(text(f"LOCK TABLE {User.__tablename__} IN EXCLUSIVE MODE"))
        used = referenced_keys(s, [o.key for o in batch])
        gone = []
        for obj in batch:
            if obj.key in used:
                continue
            try:
                drive.store.delete_object(obj.key)
            except ValueError:  # not an object key: a stray file an admin put there
                log.warning("gc: left %r alone (not an object key)", obj.key)
                continue
            gone.append(obj)
    return gone


__all__ = [
    "DEFAULT_GRACE",
    "GcPlan",
    "GcReport",
    "UnusedBlock",
    "execute_gc",
    "plan_gc",
    "run_gc",
    "sweep_orphans",
    "unreferenced_objects",
]
