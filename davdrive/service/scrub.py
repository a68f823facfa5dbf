"""Scrub: read every stored copy of every block at a bounded rate, check it against its block id,
report the missing and damaged copies and, with replicas, repair them from a good copy.

A copy is good when the block store authenticates (AES-GCM, the block id as associated data),
decompresses and hashes (BLAKE3) it back to its block id: ``BlockStore.read_block`` with the
copy's bytes, the check ``fsck`` and every download use. Each replica of a replicated backend
is read on its own (``BlockBackend.replicas``); a plain backend is one replica, where scrub can
report but not repair. Scrub first drains the replication queue (copies owed to a store that
was down), so that a copy written late is not reported missing.

Entry points for the scheduler and the CLI: ``scrub(drive, rate=..., dry_run=...)`` and
``drain_replication(drive)``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from davdrive.errors import DriveError, IntegrityError, NotFound, StoreUnavailable
from davdrive.metadata.schema import Block
from davdrive.service.fsck import AffectedFile, _affected_files
from davdrive.storage.replicated import DrainReport, ReplicatedBackend

if TYPE_CHECKING:
    from davdrive.service.drive import Drive
    from davdrive.storage.base import BlockBackend

log = logging.getLogger("davdrive.scrub")
BATCH = 500  # block rows read per query
HOT = "hot"  # block.tier of blocks kept in the block backend (others: lost, or a cold tier)


@dataclass(frozen=True)
class BadCopy:
    """One copy of a block that is not what its id says."""

    store: str
    object_key: str
    block_id: str
    problem: str  # "missing" or "damaged"
    repaired: bool = False

    def describe(self) -> str:
        state = "repaired from a good copy" if self.repaired else "not repaired"
        return f"{self.problem}: {self.object_key} (block {self.block_id}) in {self.store}: {state}"


@dataclass
class ScrubReport:
    """What one scrub read, found and repaired."""

    dry_run: bool = False
    stores: list[str] = field(default_factory=list)
    blocks: int = 0
    copies_checked: int = 0
    bytes_read: int = 0
    seconds: float = 0.0
    bad: list[BadCopy] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)  # object keys with no good copy anywhere
    unreachable: dict[str, str] = field(default_factory=dict)  # store -> why it was skipped
    drained: DrainReport | None = None
    affected: dict[str, list[AffectedFile]] = field(default_factory=dict)  # lost key -> files

    @property
    def repaired(self) -> int:
        return sum(1 for b in self.bad if b.repaired)

    @property
    def ok(self) -> bool:
        """Every copy of every block was read and is good (or was repaired)."""
        return not self.unreachable and all(b.repaired for b in self.bad)

    def summary(self) -> str:
        missing = sum(1 for b in self.bad if b.problem == "missing")
        damaged = len(self.bad) - missing
        text = (
            f"scrub{' (dry run)' if self.dry_run else ''}: {self.blocks} blocks, "
            f"{self.copies_checked} copies in {len(self.stores)} store(s) "
            f"({self.bytes_read} bytes in {self.seconds:.1f} s); missing copies: {missing}; "
            f"damaged copies: {damaged}; repaired: {self.repaired}; "
            f"blocks with no good copy: {len(self.lost)}"
        )
        if self.unreachable:
            text += f"; stores unreachable: {', '.join(sorted(self.unreachable))}"
        if self.drained is not None:
            text += f"; {self.drained.summary()}"
        return text


class _Throttle:
    """Sleeps so that reading stays at or below ``rate`` bytes per second."""

    def __init__(
        self, rate: float | None, clock: Callable[[], float], sleep: Callable[[float], None]
    ):
        self.rate = rate if rate and rate > 0 else None
        self.clock, self.sleep = clock, sleep
        self.start = clock()
        self.done = 0

    def __call__(self, nbytes: int) -> None:
        self.done += nbytes
        if self.rate is not None:
            ahead = self.done / self.rate - (self.clock() - self.start)
            if ahead > 0:
                self.sleep(ahead)


def _replicated(drive: Drive) -> ReplicatedBackend | None:
    backend = drive.store.backend
    return backend if isinstance(backend, ReplicatedBackend) else None


def copy_is_good(drive: Drive, user_id: int, block_id: str, object_key: str, blob: bytes) -> bool:
    """Whether ``blob`` is a good copy of the account's block (the check every read makes)."""
    try:
        drive.store.read_block(drive.account_keys(user_id), block_id, object_key, blob)
    except IntegrityError:
        return False
    return True


def _verifier(drive: Drive) -> Callable[[str, bytes], bool]:
    """``verify(object_key, data)`` for ``drain``: a block row's object is checked; an object
    no block row names (a piece of an unfinished upload) cannot be and passes."""

    def verify(object_key: str, data: bytes) -> bool:
        with drive.db.read() as s:
            row = s.execute(
                select(Block.user_id, Block.hash).where(Block.object_key == object_key)
            ).first()
        return row is None or copy_is_good(drive, row.user_id, row.hash, object_key, data)

    return verify


def drain_replication(drive: Drive, *, limit: int = 10000) -> DrainReport | None:
    """Write the copies a replicated backend owes stores that were down (each read from a store
    that holds a good one); None when the blocks are not replicated. For a scheduled job."""
    backend = _replicated(drive)
    if backend is None:
        return None
    return backend.drain(verify=_verifier(drive), limit=limit)


def scrub_size(drive: Drive) -> int:
    """Stored bytes a scrub reads once per copy (the length of its progress bar)."""
    with drive.db.read() as s:
        total = s.scalar(
            select(func.coalesce(func.sum(Block.stored_size), 0)).where(
                Block.inline_data.is_(None), Block.tier == HOT
            )
        )
    return int(total or 0)


def scrub(
    drive: Drive,
    *,
    rate: float | None = None,
    dry_run: bool = False,
    on_block: Callable[[int], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> ScrubReport:
    """Verify every copy of every stored block, reading at most ``rate`` bytes per second
    (None or 0: no limit), and repair bad copies from a good one (not with ``dry_run``, which
    changes nothing, the replication queue included). ``on_block(stored_size)`` is called after
    each block (a progress bar). Problems are logged too."""
    report = ScrubReport(dry_run=dry_run)
    replicated = _replicated(drive)
    if replicated is not None and not dry_run:
        report.drained = drain_replication(drive)
    elif replicated is not None:
        replicated.retry_down_stores()
    replicas = drive.store.backend.replicas()
    report.stores = [name for name, _ in replicas]
    throttle = _Throttle(rate, clock, sleep)
    started = clock()
    lost_ids: dict[int, str] = {}
    last_id = 0
    while True:
        with drive.db.read() as s:
            rows = s.execute(
                select(Block.id, Block.user_id, Block.hash, Block.object_key, Block.stored_size)
                .where(Block.id > last_id, Block.inline_data.is_(None), Block.tier == HOT)
                .order_by(Block.id)
                .limit(BATCH)
            ).all()
        if not rows:
            break
        last_id = rows[-1].id
        for row in rows:
            if not _scrub_block(drive, row, replicas, report, throttle, dry_run):
                lost_ids[row.id] = row.object_key
            report.blocks += 1
            if on_block is not None:
                on_block(row.stored_size or 0)
    if lost_ids:
        with drive.db.read() as s:
            report.affected = _affected_files(s, lost_ids)
    report.bytes_read = throttle.done
    report.seconds = clock() - started
    log.info("%s", report.summary())
    return report


def _scrub_block(
    drive: Drive,
    row: Any,
    replicas: list[tuple[str, BlockBackend]],
    report: ScrubReport,
    throttle: _Throttle,
    dry_run: bool,
) -> bool:
    """Check (and repair) every copy of one block; False when no copy is good."""
    key: str = row.object_key
    block_id: str = row.hash
    user_id: int = row.user_id
    good: bytes | None = None
    bad: list[tuple[str, BlockBackend, str]] = []
    skipped = False  # a store was not read: it may hold the good copy
    for name, store in replicas:
        if name in report.unreachable:
            skipped = True
            continue
        try:
            blob = store.get(key)
        except NotFound:
            bad.append((name, store, "missing"))
            continue
        except StoreUnavailable as exc:
            report.unreachable[name] = exc.message
            log.warning("scrub: store %s skipped: %s", name, exc.message)
            skipped = True
            continue
        report.copies_checked += 1
        throttle(len(blob))
        if copy_is_good(drive, user_id, block_id, key, blob):
            good = good or blob
        else:
            bad.append((name, store, "damaged"))
    for name, store, problem in bad:
        repaired = False
        if good is not None and not dry_run:
            repaired = _repair(store, key, good, problem)
        copy = BadCopy(name, key, block_id, problem, repaired)
        report.bad.append(copy)
        log.warning("scrub: %s", copy.describe())
    if good is None and not skipped:
        report.lost.append(key)
        log.error("scrub: block %s (object %s) has no good copy", block_id, key)
        return False
    return True


def _repair(store: BlockBackend, key: str, good: bytes, problem: str) -> bool:
    """Replace one store's copy with ``good``; True when it reads back right."""
    try:
        if problem == "damaged":
            store.delete(key)  # an S3 store keeps an existing object on a put (create-if-absent)
        store.put(key, good)
        return store.get(key) == good
    except (DriveError, OSError) as exc:
        log.warning("scrub: repair of %s failed: %s", key, exc)
        return False


__all__ = ["BadCopy", "ScrubReport", "copy_is_good", "drain_replication", "scrub"]
