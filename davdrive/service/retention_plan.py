"""The retention rule as a pure function: which versions and trash entries of one account to
drop, given its history, its settings and the clock (no SQL; ``service.retention`` loads the
history, prints the plan and executes it).

The rule (docs/STORAGE.md "Retention"), in order:

1. **Trash** entries trashed ``trash_days`` or more ago are purged with everything below them.
2. **Thinning.** A version younger than ``keep_all_days`` is kept. An older one falls in a
   bucket chosen by how long it has been past that period (``past = age - keep_all_days``):
   ``past`` under one day: its clock hour (UTC); under 30 days: its UTC day; else its week
   (Monday 00:00 UTC to Monday). Each bucket keeps one version of a file: the current version
   if it falls there, else the newest. Other pinned versions are outside the schedule (never
   dropped, they take no bucket's place). Hours nest in days and days in weeks, so a version
   thinned away would also have been thinned by any later run.
3. **Version cap.** A file keeps at most ``max_versions`` versions (the current one included):
   the oldest unpinned, non-current versions go first.
4. **History cap.** The unique block bytes (plaintext) held only by history — blocks that some
   non-current version uses and no current version (of a live or trashed file) does — stay
   within ``history_share`` of the account's quota: the oldest unpinned non-current versions of
   the whole account go first until they fit. Pinned versions may keep history above the cap.

The current version of a file and pinned versions are never dropped. "Oldest" and "newest"
order versions by creation time, then id.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from davdrive.config import Retention

HOUR = 3600.0
DAY = 24 * HOUR
WEEK = 7 * DAY
THIN_HOURLY = DAY  # past the keep-all period: one per hour for a day,
THIN_DAILY = 30 * DAY  # one per day for a month, then one per week
WEEK_START = 4 * DAY  # 1970-01-01 was a Thursday: weeks run from Monday 00:00 UTC

THINNED = "thinned"
MAX_VERSIONS = "max_versions"
HISTORY_SHARE = "history_share"


@dataclass(frozen=True)
class Version:
    """A file version as the planner sees it."""

    id: int
    node_id: int
    created_at: float
    pinned: bool
    current: bool
    blocks: frozenset[int] = frozenset()


@dataclass(frozen=True)
class TrashEntry:
    """A top item of the trash: ``nodes`` are it and every node below it."""

    node_id: int
    trashed_at: float
    nodes: frozenset[int]
    path: str = ""


@dataclass(frozen=True)
class History:
    """Everything the rule looks at for one account."""

    versions: Sequence[Version]
    block_sizes: Mapping[int, int]  # block id -> plaintext bytes
    quota: int
    trash: Sequence[TrashEntry] = ()


@dataclass
class Plan:
    """What to drop, and the history bytes before and after."""

    drops: dict[int, str] = field(default_factory=dict)  # version id -> reason
    purged: list[TrashEntry] = field(default_factory=list)
    history_cap: int = 0
    history_before: int = 0  # unique block bytes held only by history
    history_after: int = 0
    released: int = 0  # unique block bytes no remaining version uses (GC may reclaim them)

    def count(self, reason: str) -> int:
        return sum(1 for r in self.drops.values() if r == reason)


def bucket(created_at: float, now: float, keep_all_days: float) -> tuple[str, int] | None:
    """The thinning bucket of a version created at ``created_at`` (None: inside the keep-all
    period, kept). Buckets are calendar-aligned (UTC); the tier depends on the age."""
    past = (now - created_at) - keep_all_days * DAY
    if past < 0:
        return None
    if past < THIN_HOURLY:
        return ("hour", math.floor(created_at / HOUR))
    if past < THIN_DAILY:
        return ("day", math.floor(created_at / DAY))
    return ("week", math.floor((created_at - WEEK_START) / WEEK))


def _age_order(v: Version) -> tuple[float, int]:
    return (v.created_at, v.id)


def held_by_history(versions: Iterable[Version], sizes: Mapping[int, int]) -> int:
    """Unique block bytes that non-current versions use and no current version does."""
    versions = list(versions)
    current = set().union(*(v.blocks for v in versions if v.current))
    history = set().union(*(v.blocks for v in versions if not v.current))
    return sum(sizes.get(b, 0) for b in history - current)


def _thin(versions: list[Version], settings: Retention, now: float) -> set[int]:
    """The versions of one file the schedule drops."""
    claimed: set[tuple[str, int]] = set()
    drop: set[int] = set()
    placed = [(v, bucket(v.created_at, now, settings.keep_all_days)) for v in versions]
    for v, b in placed:
        if v.current and b is not None:
            claimed.add(b)
    for v, b in sorted(placed, key=lambda item: _age_order(item[0]), reverse=True):
        if b is None or v.pinned or v.current:
            continue
        if b in claimed:
            drop.add(v.id)
        else:
            claimed.add(b)
    return drop


def _cap_count(versions: list[Version], max_versions: int) -> list[int]:
    """The oldest unpinned non-current versions of one file beyond ``max_versions``."""
    excess = len(versions) - max_versions
    if excess <= 0:
        return []
    droppable = sorted((v for v in versions if not v.pinned and not v.current), key=_age_order)
    return [v.id for v in droppable[:excess]]


def plan(history: History, settings: Retention, now: float) -> Plan:
    """Apply the rule (module docstring) to one account's history at time ``now``."""
    result = Plan(history_cap=int(settings.history_share * max(history.quota, 0)))
    sizes = history.block_sizes
    cutoff = now - settings.trash_days * DAY
    expired = [e for e in history.trash if e.trashed_at <= cutoff]
    gone: set[int] = set().union(*(e.nodes for e in expired))
    inner = set().union(*(e.nodes - {e.node_id} for e in expired))
    result.purged = [e for e in expired if e.node_id not in inner]  # not twice
    before = list(history.versions)
    result.history_before = held_by_history(before, sizes)
    alive = [v for v in before if v.node_id not in gone]

    by_node: dict[int, list[Version]] = {}
    for v in alive:
        by_node.setdefault(v.node_id, []).append(v)
    for versions in by_node.values():
        for vid in _thin(versions, settings, now):
            result.drops[vid] = THINNED
        kept = [v for v in versions if v.id not in result.drops]
        for vid in _cap_count(kept, settings.max_versions):
            result.drops[vid] = MAX_VERSIONS

    kept = [v for v in alive if v.id not in result.drops]
    current = set().union(*(v.blocks for v in kept if v.current))
    users = Counter(b for v in kept if not v.current for b in v.blocks - current)
    held = sum(sizes.get(b, 0) for b in users)
    if held > result.history_cap:
        for v in sorted((v for v in kept if not v.current and not v.pinned), key=_age_order):
            if held <= result.history_cap:
                break
            result.drops[v.id] = HISTORY_SHARE
            for b in v.blocks - current:
                users[b] -= 1
                if users[b] == 0:
                    held -= sizes.get(b, 0)
    result.history_after = held

    remaining = set().union(*(v.blocks for v in alive if v.id not in result.drops))
    used = set().union(*(v.blocks for v in before))
    result.released = sum(sizes.get(b, 0) for b in used - remaining)
    return result
