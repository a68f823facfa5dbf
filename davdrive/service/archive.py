"""The cold tier (``davdrive archive`` and the scheduled ``archive`` job): plan, report, move.

**The rule.** A block is archived when it is stored as an object (not inline in the database),
still hot, used by at least one file version, used by no version that is *current* (the
node's current version, of a live file or of one in the trash: restoring from the trash makes
it live again, and the trash is purged long before ``after_days``) or *pinned*, and untouched
for ``after_days`` (``block.last_access``: set when the block is stored and by every commit
that reuses it). **Archive now** (``plan_file_archive``) takes the blocks of every version of
one file, current and pinned ones included, except blocks a current or pinned version of
another file uses; it has no age condition.

**The move** is journaled in the block row and the log, and safe to interrupt anywhere:

1. ``tier`` hot -> ``archiving``, for the planned rows that still satisfy the rule (one
   conditional UPDATE per batch: a version made current or pinned since the plan keeps its
   blocks hot);
2. the object moves (``BlockStore.archive_block``: copy to the cold store, read back, delete the
   hot copy; or an S3 CopyObject to the storage class). Idempotent: a second run finishes it;
3. ``tier`` archiving -> ``cold`` and ``archived_at``, with a log line per block.

Reads work at every step (a cold store is read when the hot store lacks the object). A run
starts by finishing the moves an earlier run left ``archiving``. A row GC removed meanwhile has
its object reclaimed (re-checked under the account lock, cold copy included).

**Back to hot.** A cold block that a commit referenced after it was archived (a dedup hit
sets ``last_access > archived_at``) and that a current or pinned version uses is brought back
by the next run (``reused``), before the rule's moves: copied back to the hot store, or (S3)
copied back to STANDARD once readable; then its row is ``hot`` again.

**Reading** (``check_cold``, called by ``service.reading`` before any byte is sent): for a cold
tier that needs a restore (S3 GLACIER, DEEP_ARCHIVE) every archived block of the version is
checked (HEAD); if one is not readable yet its restore is requested (idempotent), the request
is recorded (``block.restore_requested_at`` and a log line), and the read is refused with
``Archived`` (409, ``Retry-After``). Other cold tiers read transparently.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, and_, or_, select, update

from davdrive.errors import Archived, BadRequest, Conflict, DriveError, NotFound
from davdrive.metadata.schema import Block, FileVersion, Node, VersionBlock
from davdrive.service.access import Perm
from davdrive.service.paths import join, split_path
from davdrive.storage.tiered import READY, REQUESTED

if TYPE_CHECKING:
    from davdrive.service.core import DriveCore
    from davdrive.service.drive import Drive
    from davdrive.service.types import Principal

log = logging.getLogger("davdrive.archive")

HOT, ARCHIVING, COLD = "hot", "archiving", "cold"
DAY = 24 * 3600.0
BATCH = 200  # rows marked ``archiving`` per transaction


# -- the rule -----------------------------------------------------------------------------------
def _used_by(*conditions: ColumnElement[bool]) -> ColumnElement[bool]:
    """Some version satisfying ``conditions`` uses the block (correlated on ``block``)."""
    return (
        select(VersionBlock.block_id)
        .join(FileVersion, FileVersion.id == VersionBlock.version_id)
        .join(Node, Node.id == FileVersion.node_id)
        .where(VersionBlock.block_id == Block.id, *conditions)
        .exists()
    )


def _kept() -> ColumnElement[bool]:
    """A version is current (of its node, trashed or not) or pinned."""
    return or_(FileVersion.pinned.is_(True), Node.current_version_id == FileVersion.id)


def rule(cutoff: float) -> ColumnElement[bool]:
    """The archive rule on ``block`` (see the module docstring), for blocks still hot."""
    return and_(
        Block.tier == HOT,
        Block.inline_data.is_(None),
        Block.last_access < cutoff,
        _used_by(),
        ~_used_by(_kept()),
    )


def file_rule(node_id: int) -> ColumnElement[bool]:
    """Archive now: hot object blocks of ``node_id``'s versions that no current or pinned
    version of another file uses."""
    return and_(
        Block.tier == HOT,
        Block.inline_data.is_(None),
        _used_by(FileVersion.node_id == node_id),
        ~_used_by(FileVersion.node_id != node_id, _kept()),
    )


def reused() -> ColumnElement[bool]:
    """Cold blocks a writer referenced after they were archived (a dedup hit: its commit set
    ``last_access``) and a current or pinned version uses: they go back to the hot tier."""
    return and_(
        Block.tier == COLD,
        Block.archived_at.is_not(None),
        Block.last_access > Block.archived_at,
        _used_by(_kept()),
    )


# -- plan and report ----------------------------------------------------------------------------
@dataclass(frozen=True)
class ArchiveItem:
    """One block row to move."""

    id: int
    user_id: int
    hash: str
    object_key: str
    stored_size: int


@dataclass
class ArchivePlan:
    """What a run would move, as found when it was planned."""

    condition: ColumnElement[bool] | None  # re-checked when a row is marked (None: no tier)
    blocks: list[ArchiveItem] = field(default_factory=list)  # hot rows the rule picked
    unfinished: list[ArchiveItem] = field(default_factory=list)  # left ``archiving``
    thaw: list[ArchiveItem] = field(default_factory=list)  # cold, used again: back to hot
    scope: str = "rule"  # "rule", or the file archived now
    tier: str = ""  # the cold tier's description ("" when archive is off)

    @property
    def items(self) -> int:
        """Rows the execution goes through (a progress bar's length)."""
        return len(self.blocks) + len(self.unfinished) + len(self.thaw)

    @property
    def bytes(self) -> int:
        return sum(b.stored_size for b in self.blocks) + sum(b.stored_size for b in self.unfinished)

    def report(self) -> ArchiveReport:
        """What executing the plan would move if nothing changed meanwhile (a dry run)."""
        return ArchiveReport(
            dry_run=True,
            enabled=bool(self.tier),
            tier=self.tier,
            moved=len(self.blocks),
            resumed=len(self.unfinished),
            bytes_moved=self.bytes,
            thawed=len(self.thaw),
        )


@dataclass
class ArchiveReport:
    """What a run moved (or, dry, would move)."""

    dry_run: bool = False
    enabled: bool = True
    tier: str = ""
    moved: int = 0  # blocks moved to the cold tier
    resumed: int = 0  # of an earlier, interrupted run
    bytes_moved: int = 0  # stored bytes of those blocks
    kept: int = 0  # planned blocks a version made current or pinned meanwhile (left hot)
    failed: int = 0  # moves that failed (left ``archiving``: the next run tries again)
    thawed: int = 0  # cold blocks a new version used again, brought back to hot
    thaw_waiting: int = 0  # of those, still being restored (the next run brings them back)
    errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        if not self.enabled:
            return "archive is off (no archive.url or archive.storage_class in the config)"
        verb = "would move" if self.dry_run else "moved"
        text = (
            f"archive {verb} {self.moved + self.resumed} blocks ({self.bytes_moved} bytes) to "
            f"{self.tier}; {self.resumed} {'unfinished' if self.dry_run else 'finished'} from "
            "an earlier run"
        )
        if self.kept:
            text += f"; {self.kept} kept hot (now used by a current or pinned version)"
        if self.thawed:
            text += f"; {self.thawed} {'would come' if self.dry_run else 'came'} back to hot "
            text += "(used again since archived)"
        if self.thaw_waiting:
            text += f"; {self.thaw_waiting} to come back once restored"
        if self.failed:
            text += f"; {self.failed} failed (retried by the next run)"
        return text


_COLUMNS = (Block.id, Block.user_id, Block.hash, Block.object_key, Block.stored_size)


def _items(rows: Sequence[Any]) -> list[ArchiveItem]:
    return [ArchiveItem(r.id, r.user_id, r.hash, r.object_key, r.stored_size) for r in rows]


def plan_archive(drive: Drive, *, after_days: float, now: float | None = None) -> ArchivePlan:
    """Mark: the hot blocks the rule picks, and the moves an earlier run left unfinished."""
    cold = drive.store.cold
    if cold is None:
        return ArchivePlan(None)
    cutoff = (time.time() if now is None else now) - after_days * DAY
    condition = rule(cutoff)
    with drive.db.read() as s:
        picked = s.execute(select(*_COLUMNS).where(condition).order_by(Block.id)).all()
        left = s.execute(select(*_COLUMNS).where(Block.tier == ARCHIVING).order_by(Block.id)).all()
        back = s.execute(select(*_COLUMNS).where(reused()).order_by(Block.id)).all()
    return ArchivePlan(condition, _items(picked), _items(left), _items(back), tier=cold.description)


def plan_file_archive(drive: Drive, p: Principal, path: str) -> ArchivePlan:
    """Archive now: the blocks of the file at ``path`` (every version) that no current or
    pinned version of another file uses. ``p`` needs write access to the file."""
    core = drive.core
    t = core.target(p, path, Perm.WRITE)
    shown = join(split_path(path))
    with drive.db.read() as s:
        node = core.resolve(s, t.owner_id, split_path(t.path))
        if node is None:
            raise NotFound(f"{shown} not found")
        if node.is_dir:
            raise BadRequest(f"{shown} is a folder: archive its files one by one")
        node_id = node.id
    cold = drive.store.cold
    if cold is None:
        return ArchivePlan(None, scope=shown)
    condition = and_(Block.user_id == t.owner_id, file_rule(node_id))
    mine = and_(
        Block.user_id == t.owner_id,
        Block.tier == ARCHIVING,
        _used_by(FileVersion.node_id == node_id),
    )
    with drive.db.read() as s:
        picked = s.execute(select(*_COLUMNS).where(condition).order_by(Block.id)).all()
        left = s.execute(select(*_COLUMNS).where(mine).order_by(Block.id)).all()
    return ArchivePlan(condition, _items(picked), _items(left), scope=shown, tier=cold.description)


# -- execution ----------------------------------------------------------------------------------
def execute_archive(
    drive: Drive, plan: ArchivePlan, *, progress: Callable[[int], None] | None = None
) -> ArchiveReport:
    """Move: finish the unfinished moves, then mark and move the planned rows still picked."""
    cold = drive.store.cold
    report = ArchiveReport(enabled=cold is not None, tier=plan.tier)
    if cold is None or plan.condition is None:
        return report
    for item in plan.thaw:
        _thaw(drive, item, report)
        if progress is not None:
            progress(1)
    for item in plan.unfinished:
        if _move(drive, item, report):
            report.resumed += 1
        if progress is not None:
            progress(1)
    for i in range(0, len(plan.blocks), BATCH):
        batch = plan.blocks[i : i + BATCH]
        with drive.db.write() as s:
            marked = set(
                s.scalars(
                    update(Block)
                    .where(Block.id.in_([b.id for b in batch]), plan.condition)
                    .values(tier=ARCHIVING)
                    .returning(Block.id)
                ).all()
            )
        for item in batch:
            if item.id not in marked:
                report.kept += 1
            elif _move(drive, item, report):
                report.moved += 1
            if progress is not None:
                progress(1)
    if report.moved or report.resumed or report.failed or report.thawed:
        log.info("%s (%s)", report.summary(), plan.scope)
    return report


def _move(drive: Drive, item: ArchiveItem, report: ArchiveReport) -> bool:
    """Move one ``archiving`` row's object, then flip the row to ``cold``; False on failure
    (the row stays ``archiving`` for the next run) or when the row went meanwhile."""
    cold = drive.store.cold
    assert cold is not None
    try:
        drive.store.archive_block(drive.account_keys(item.user_id), item.hash, item.object_key)
    except (DriveError, OSError) as exc:
        report.failed += 1
        report.errors.append(f"block {item.hash[:16]} (account {item.user_id}): {exc}")
        log.warning("archive: block %s of account %d not moved: %s", item.hash[:16],
                    item.user_id, exc)  # fmt: skip
        return False
    now = time.time()
    with drive.db.write() as s:
        flipped = s.execute(
            update(Block)
            .where(Block.id == item.id, Block.tier == ARCHIVING)
            .values(tier=COLD, archived_at=now)
        ).rowcount
    if not flipped:
        # GC removed the row meanwhile (or fsck marked it lost): nothing may be left behind
        # that no row names; reclaim re-checks under the account lock.
        drive.core.reclaim(item.user_id, [item.object_key])
        report.kept += 1
        return False
    report.bytes_moved += item.stored_size
    log.info("archive: block %s of account %d (%d bytes, key %s) moved to %s", item.hash[:16],
             item.user_id, item.stored_size, item.object_key[:16], cold.description)  # fmt: skip
    return True


def _thaw(drive: Drive, item: ArchiveItem, report: ArchiveReport) -> None:
    """Bring one cold block a current or pinned version uses again back to hot, then flip
    its row (a crash in between leaves it cold and readable; the next run finishes)."""
    try:
        back = drive.store.thaw_block(item.object_key)
    except (DriveError, OSError) as exc:
        report.failed += 1
        report.errors.append(f"block {item.hash[:16]} (account {item.user_id}): {exc}")
        log.warning("archive: block %s of account %d not brought back: %s", item.hash[:16],
                    item.user_id, exc)  # fmt: skip
        return
    if not back:
        report.thaw_waiting += 1
        return
    with drive.db.write() as s:
        flipped = s.execute(
            update(Block)
            .where(Block.id == item.id, Block.tier == COLD)
            .values(tier=HOT, archived_at=None)
        ).rowcount
    if not flipped:
        drive.core.reclaim(item.user_id, [item.object_key])
        return
    report.thawed += 1
    log.info("archive: block %s of account %d back to hot (used again since archived)",
             item.hash[:16], item.user_id)  # fmt: skip


def run_archive(
    drive: Drive,
    *,
    after_days: float,
    dry_run: bool = False,
    now: float | None = None,
    progress: Callable[[int], None] | None = None,
) -> ArchiveReport:
    """The rule now: plan, then (unless ``dry_run``) execute. Off: an empty report."""
    plan = plan_archive(drive, after_days=after_days, now=now)
    if dry_run or plan.condition is None:
        return plan.report()
    return execute_archive(drive, plan, progress=progress)


def archive_file(drive: Drive, p: Principal, path: str) -> ArchiveReport:
    """Archive now (``POST /api/v1/files/archive``): plan and move one file's blocks.
    ``Conflict`` when the server has no cold tier."""
    if drive.store.cold is None:
        raise Conflict("archive is off on this server (no cold tier is configured)")
    return execute_archive(drive, plan_file_archive(drive, p, path))


# -- reading ------------------------------------------------------------------------------------
def check_cold(core: DriveCore, owner: int, rows: Sequence[Any]) -> None:
    """Before a version is read (rows of ``reading._VERSION_MANIFEST``): ``Archived`` when a
    block is in a cold tier that must restore it first; its restore is requested."""
    cold = core.store.cold
    if cold is None or not cold.needs_restore:
        return
    ids = {r.object_key: r.block_id for r in rows if r.tier in (ARCHIVING, COLD)}
    if not ids:
        return
    states = core.store.restore_states(list(ids))
    waiting = [key for key, state in states.items() if state != READY]
    if not waiting:
        return
    asked = [ids[key] for key, state in states.items() if state == REQUESTED]
    if asked:
        with core.db.write() as s:
            s.execute(
                update(Block).where(Block.id.in_(asked)).values(restore_requested_at=time.time())
            )
        log.info("restore requested: %d blocks of account %d from %s (%d already under way)",
                 len(asked), owner, cold.description, len(waiting) - len(asked))  # fmt: skip
    retry = cold.retry_after()
    raise Archived(
        f"archived; restore requested, retry after {retry} s",
        retry_after=retry,
        blocks=len(waiting),
    )


@dataclass
class RestoreReport:
    """``request_restore``: the archived blocks of a file's current version, by state."""

    path: str
    ready: int = 0
    requested: int = 0
    pending: int = 0

    def summary(self) -> str:
        if not (self.requested or self.pending):
            return f"{self.path}: readable ({self.ready} archived blocks ready)"
        return (
            f"{self.path}: restore requested for {self.requested} blocks, {self.pending} "
            f"already under way, {self.ready} ready"
        )


def request_restore(drive: Drive, p: Principal, path: str) -> RestoreReport:
    """Ask the cold tier to restore the archived blocks of a file's current version (what a
    read does, without refusing anything); recorded like a reader's request."""
    shown = join(split_path(path))
    core = drive.core
    t = core.target(p, path, Perm.READ)
    with drive.db.read() as s:
        node = core.resolve(s, t.owner_id, split_path(t.path))
        if node is None or node.is_dir or node.current_version_id is None:
            raise NotFound(f"{shown} is no file")
        rows = s.execute(
            select(Block.id, Block.object_key)
            .join(VersionBlock, VersionBlock.block_id == Block.id)
            .where(
                VersionBlock.version_id == node.current_version_id,
                Block.tier.in_([ARCHIVING, COLD]),
            )
        ).all()
    ids = {r.object_key: r.id for r in rows}
    report = RestoreReport(shown)
    states = drive.store.restore_states(list(ids))
    for state in states.values():
        setattr(report, state, getattr(report, state) + 1)
    asked = [ids[key] for key, state in states.items() if state == REQUESTED]
    if asked:
        with drive.db.write() as s:
            s.execute(
                update(Block).where(Block.id.in_(asked)).values(restore_requested_at=time.time())
            )
        log.info("restore requested: %d blocks of account %d (%s)", len(asked), t.owner_id, shown)
    return report


__all__ = [
    "ArchiveItem",
    "ArchivePlan",
    "ArchiveReport",
    "RestoreReport",
    "archive_file",
    "check_cold",
    "execute_archive",
    "file_rule",
    "plan_archive",
    "plan_file_archive",
    "request_restore",
    "reused",
    "rule",
    "run_archive",
]
