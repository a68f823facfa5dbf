"""Retention (issue 12): the rule as properties of the planner over any history and any clock,
then end to end on a real drive (SQLite and PostgreSQL): the issue's case, pins, trash
expiry, per-account settings, the journal, dry runs and drops raced by a pin."""

from __future__ import annotations

import itertools
import os
import time
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update

from davdrive.config import Retention, load_config
from davdrive.errors import NotFound
from davdrive.metadata.schema import Block, FileVersion, Node, User, VersionBlock
from davdrive.service import retention
from davdrive.service.changes import Changes
from davdrive.service.retention import account_retention, prune, set_account_retention
from davdrive.service.retention_plan import (
    HISTORY_SHARE,
    MAX_VERSIONS,
    THINNED,
    History,
    TrashEntry,
    Version,
    plan,
)

DAY = 86400.0
NOW = 1_800_000_000.0  # 2027-01-15


# -- the rule, restated from docs/STORAGE.md with datetime (not the planner's arithmetic) ------
def documented_bucket(created_at: float, now: float, keep_all_days: float) -> tuple | None:
    past = (now - created_at) - keep_all_days * DAY
    if past < 0:
        return None
    t = datetime.fromtimestamp(created_at, UTC)
    if past < DAY:
        return ("hour", t.replace(minute=0, second=0, microsecond=0))
    if past < 30 * DAY:
        return ("day", t.date())
    year, week, _ = t.isocalendar()  # ISO weeks run Monday to Monday
    return ("week", year, week)


def history_held(versions: list[Version], sizes: dict[int, int]) -> int:
    current = set()
    for v in versions:
        if v.current:
            current |= v.blocks
    history = set()
    for v in versions:
        if not v.current:
            history |= v.blocks
    return sum(sizes[b] for b in history - current)


def age_order(v: Version) -> tuple[float, int]:
    return (v.created_at, v.id)


# -- any history ------------------------------------------------------------------------------
@st.composite
def histories(draw: st.DrawFn) -> tuple[History, Retention, float]:
    now = draw(st.floats(1e9, 2e9, allow_nan=False))
    sizes = {b: draw(st.integers(0, 1000)) for b in range(draw(st.integers(1, 10)))}
    ids = itertools.count(1)
    versions: list[Version] = []
    trash: list[TrashEntry] = []
    for node in range(1, draw(st.integers(1, 4)) + 1):
        count = draw(st.integers(0, 14))
        ages = draw(st.lists(st.floats(-2 * DAY, 400 * DAY), min_size=count, max_size=count))
        if draw(st.booleans()):  # bursts: many versions within an hour or a day
            base = draw(st.floats(0, 120 * DAY))
            ages = [base + a / 400 for a in ages]
        current = draw(st.integers(0, count - 1)) if count and draw(st.integers(0, 9)) else None
        for i, age in enumerate(sorted(ages, reverse=True)):
            blocks = draw(st.frozensets(st.sampled_from(sorted(sizes)), max_size=3))
            versions.append(
                Version(next(ids), node, now - age, draw(st.booleans()), i == current, blocks)
            )
        if draw(st.integers(0, 3)) == 0:
            trash.append(TrashEntry(node, now - draw(st.floats(0, 60 * DAY)), frozenset({node})))
    if trash and draw(st.booleans()):  # a trashed folder holding the other trashed files
        top = TrashEntry(100, now - draw(st.floats(0, 60 * DAY)), frozenset({100}))
        inner = [e for e in trash if e.trashed_at <= top.trashed_at]
        nodes = frozenset({100, *(n for e in inner for n in e.nodes)})
        trash.append(TrashEntry(100, top.trashed_at, nodes))
    rules = Retention(
        keep_all_days=draw(st.sampled_from([0, 0.5, 1, 7, 30, 45])),
        max_versions=draw(st.integers(1, 12)),
        history_share=draw(st.sampled_from([0, 0.1, 0.5, 1])),
        trash_days=draw(st.sampled_from([0, 1, 30])),
    )
    quota = draw(st.integers(0, 5000))
    return History(versions, sizes, quota, trash), rules, now


@settings(max_examples=400, deadline=None)
@given(histories())
def test_the_rule_holds_for_any_history_and_any_clock(case):
    history, rules, now = case
    p = plan(history, rules, now)
    cutoff = now - rules.trash_days * DAY
    expired = [e for e in history.trash if e.trashed_at <= cutoff]
    gone = {n for e in expired for n in e.nodes}
    # trash: exactly the expired entries go, each once, with what is below them
    assert {e.node_id for e in p.purged} <= {e.node_id for e in expired}
    assert {n for e in p.purged for n in e.nodes} == gone
    alive = [v for v in history.versions if v.node_id not in gone]
    assert set(p.drops) <= {v.id for v in alive}
    kept = [v for v in alive if v.id not in p.drops]
    by_id = {v.id: v for v in history.versions}

    # pinned and current versions always survive
    assert not [vid for vid in p.drops if by_id[vid].pinned or by_id[vid].current]

    for node in {v.node_id for v in alive}:
        mine = [v for v in alive if v.node_id == node]
        left = [v for v in kept if v.node_id == node]
        protected = [v for v in mine if v.pinned or v.current]
        # the version cap holds (pinned and current versions may exceed it)
        assert len(left) <= max(rules.max_versions, len(protected))
        # the schedule: no two kept unpinned versions past keep_all_days share a bucket
        seen = {}
        for v in left:
            b = documented_bucket(v.created_at, now, rules.keep_all_days)
            if b is not None and not v.pinned:
                assert b not in seen, (v, seen[b])
                seen[b] = v
        # a thinned version was past keep_all_days and its bucket kept a newer or current one
        thinned = [v for v in mine if p.drops.get(v.id) == THINNED]
        schedule_kept = [
            v for v in mine if p.drops.get(v.id) != THINNED and (v.current or not v.pinned)
        ]
        for v in thinned:
            b = documented_bucket(v.created_at, now, rules.keep_all_days)
            assert b is not None
            assert any(
                documented_bucket(w.created_at, now, rules.keep_all_days) == b
                and (w.current or age_order(w) > age_order(v))
                for w in schedule_kept
            )
        # the count cap dropped the oldest droppable, and no more than needed
        capped = [v for v in mine if p.drops.get(v.id) == MAX_VERSIONS]
        after_thinning = [v for v in mine if p.drops.get(v.id) != THINNED]
        droppable = sorted(
            (v for v in after_thinning if not v.pinned and not v.current), key=age_order
        )
        excess = max(0, len(after_thinning) - rules.max_versions)
        assert sorted(capped, key=age_order) == droppable[:excess]

    # the history cap holds when it can (pinned versions may keep more)
    held = history_held(kept, history.block_sizes)
    assert held == p.history_after
    assert held <= p.history_cap or all(v.pinned for v in kept if not v.current)
    assert p.history_cap == int(rules.history_share * history.quota)
    # ... by dropping the oldest unpinned history first, and no more than needed
    capped = sorted((v for v in alive if p.drops.get(v.id) == HISTORY_SHARE), key=age_order)
    before_cap = [v for v in alive if p.drops.get(v.id) in (None, HISTORY_SHARE)]
    droppable = sorted((v for v in before_cap if not v.current and not v.pinned), key=age_order)
    assert capped == droppable[: len(capped)]
    if capped:
        spared = [v for v in before_cap if v not in capped[:-1]]
        assert history_held(spared, history.block_sizes) > p.history_cap
    # nothing younger than keep_all_days goes but by the caps (or with its trash entry)
    for vid, why in p.drops.items():
        if now - by_id[vid].created_at < rules.keep_all_days * DAY:
            assert why in (MAX_VERSIONS, HISTORY_SHARE)


def test_buckets_nest_so_a_later_run_never_needs_what_an_earlier_one_dropped():
    """An hour of versions past the keep-all period keeps its newest; days later the day's
    newest survives, and it is one the first run kept."""
    rules = Retention(keep_all_days=30, max_versions=1000, history_share=1, trash_days=30)
    start = datetime(2026, 1, 5, 10, 0, tzinfo=UTC).timestamp()  # a Monday
    versions = [
        Version(i + 1, 1, start + i * 600, False, False, frozenset()) for i in range(30)
    ] + [Version(99, 1, start + 100 * DAY, False, True, frozenset())]
    history = History(versions, {}, 10**9)
    first = plan(history, rules, start + 30 * DAY + 6 * 3600)
    kept_first = {v.id for v in versions} - set(first.drops)
    # past keep_all_days by 6 h to 11 h: one per clock hour (10:00..14:50 spans 5 hours)
    assert sorted(kept_first - {99}) == [6, 12, 18, 24, 30]
    later = plan(history, rules, start + 40 * DAY)  # past by 10 days: one per day
    assert sorted({v.id for v in versions} - set(later.drops)) == [30, 99]
    much_later = plan(history, rules, start + 90 * DAY)  # one per week
    assert sorted({v.id for v in versions} - set(much_later.drops)) == [30, 99]


def test_current_version_claims_its_bucket():
    rules = Retention(keep_all_days=0, max_versions=10, history_share=1, trash_days=30)
    t = datetime(2026, 3, 2, 12, 0, tzinfo=UTC).timestamp()
    versions = [
        Version(1, 1, t + 10, False, True, frozenset()),  # current, older
        Version(2, 1, t + 20, False, False, frozenset()),  # newer, same hour
        Version(3, 1, t + 30, True, False, frozenset()),  # pinned, same hour
    ]
    p = plan(History(versions, {}, 0), rules, t + 3 * DAY)
    assert p.drops == {2: THINNED}


# -- end to end on a real drive -----------------------------------------------------------------
def history_bytes(drive, user_id: int) -> int:
    """Plaintext bytes of blocks non-current versions use and no current version uses."""
    with drive.db.read() as s:
        current = select(Node.current_version_id).where(Node.current_version_id.is_not(None))
        rows = s.execute(
            select(VersionBlock.block_id, FileVersion.id.in_(current).label("is_current"))
            .join(FileVersion, FileVersion.id == VersionBlock.version_id)
            .where(FileVersion.user_id == user_id)
        ).all()
        sizes = dict(
            s.execute(select(Block.id, Block.raw_size).where(Block.user_id == user_id)).all()
        )
    cur = {r.block_id for r in rows if r.is_current}
    hist = {r.block_id for r in rows if not r.is_current}
    return sum(sizes[b] for b in hist - cur)


def used_bytes(drive, user_id: int) -> int:
    with drive.db.read() as s:
        return s.scalar(select(User.used_bytes).where(User.id == user_id))


def set_created(drive, version_id: int, created_at: float) -> None:
    with drive.db.write() as s:
        s.execute(
            update(FileVersion).where(FileVersion.id == version_id).values(created_at=created_at)
        )


def test_ten_overwrites_of_700kB_with_a_1MB_quota_keep_history_bounded(drive):
    """The issue's case: history held 6.3 MB of a 1 MB quota; after prune it fits in half the
    quota, the file reads back, the quota use is unchanged and the blocks wait for GC."""
    alice = drive.create_account("alice", "x", quota=1_000_000)
    bodies = [os.urandom(700_000) for _ in range(10)]
    for body in bodies:
        drive.write_file(alice, "/big.bin", body)
    assert history_bytes(drive, alice.user_id) == 9 * 700_000
    blocks_before = drive.account_overview(alice).stored

    plan_only = prune(drive, dry_run=True)
    assert plan_only.versions_dropped == 9
    assert len(drive.list_versions(alice, "/big.bin")) == 10  # a dry run changes nothing

    report = prune(drive)
    (a,) = report.accounts
    assert (a.login, a.versions_dropped, a.plan.count(HISTORY_SHARE)) == ("alice", 9, 9)
    assert a.plan.history_before == 9 * 700_000 and a.plan.history_after == 0
    assert history_bytes(drive, alice.user_id) <= 500_000
    versions = drive.list_versions(alice, "/big.bin")
    assert [v.is_current for v in versions] == [True]
    assert drive.read_bytes(alice, "/big.bin") == bodies[-1]
    assert used_bytes(drive, alice.user_id) == 700_000
    overview = drive.account_overview(alice)
    assert (overview.history, overview.trash) == (0, 0)
    assert overview.stored == blocks_before  # unreferenced blocks are GC's to collect
    assert a.plan.released == 9 * 700_000
    # clients hear of it: one journal row for the file, at its current revision
    changes, _, _ = Changes(drive).since(alice, 10)
    assert [(c.kind, c.path, c.rev) for c in changes] == [
        ("versions_pruned", "/big.bin", str(versions[0].id))
    ]
    assert report.summary() == (
        "1 accounts, 9 versions dropped, 0 trash entries purged, 6300000 bytes released for gc, "
        "0 failed"
    )
    # a second run finds nothing left to do
    assert prune(drive).versions_dropped == 0


def test_pinned_versions_survive_the_history_cap(drive):
    alice = drive.create_account("alice", "x", quota=1_000_000)
    for _ in range(5):
        drive.write_file(alice, "/big.bin", os.urandom(700_000))
    versions = drive.list_versions(alice, "/big.bin")
    drive.pin_version(alice, "/big.bin", versions[3].id)
    prune(drive)
    left = drive.list_versions(alice, "/big.bin")
    assert [v.id for v in left] == [versions[0].id, versions[3].id]
    assert history_bytes(drive, alice.user_id) == 700_000  # over the cap: pinned bytes
    assert len(drive.read_bytes(alice, "/big.bin", version_id=versions[3].id)) == 700_000


def test_thinning_and_version_cap_on_a_real_history(drive):
    bob = drive.create_account("bob", "x")
    for i in range(12):
        drive.write_file(bob, "/notes.txt", f"edit {i}".encode())
    ids = [v.id for v in reversed(drive.list_versions(bob, "/notes.txt"))]  # oldest first
    monday = datetime(2026, 6, 1, tzinfo=UTC).timestamp()
    for i, vid in enumerate(ids[:8]):  # eight edits on one Monday, two hours apart
        set_created(drive, vid, monday + i * 7200)
    for i, vid in enumerate(ids[8:]):  # four recent ones
        set_created(drive, vid, NOW - (4 - i) * 3600)
    rules = Retention(keep_all_days=30, max_versions=4, history_share=1, trash_days=30)
    report = prune(drive, now=NOW, settings=rules)
    assert report.accounts[0].plan.count(THINNED) == 7  # one per week that far back
    assert report.accounts[0].plan.count(MAX_VERSIONS) == 1  # 5 left, cap 4: the oldest
    assert [v.id for v in reversed(drive.list_versions(bob, "/notes.txt"))] == ids[8:]


def test_trash_expires_after_trash_days(drive):
    alice = drive.create_account("alice", "x")
    drive.mkdir(alice, "/old")
    drive.write_file(alice, "/old/a.txt", b"a" * 1000)
    drive.write_file(alice, "/old/a.txt", b"b" * 1000)
    drive.write_file(alice, "/fresh.txt", b"c" * 10)
    drive.write_file(alice, "/kept.txt", b"d" * 10)
    drive.delete(alice, "/old")
    drive.delete(alice, "/fresh.txt")
    now = time.time()
    old_id = next(t.id for t in drive.list_trash(alice) if t.name == "old")
    with drive.db.write() as s:
        s.execute(update(Node).where(Node.id == old_id).values(trashed_at=now - 31 * DAY))
    used = used_bytes(drive, alice.user_id)

    dry = prune(drive, now=now, dry_run=True)
    assert [t.path for t in dry.accounts[0].plan.purged] == ["/old (in trash)"]
    assert len(drive.list_trash(alice)) == 2

    report = prune(drive, now=now)
    assert report.trash_purged == 1
    assert [t.name for t in drive.list_trash(alice)] == ["fresh.txt"]
    with pytest.raises(NotFound):
        drive.restore_trash(alice, old_id)
    with drive.db.read() as s:
        assert s.scalar(select(Node.id).where(Node.name == "a.txt")) is None
        assert not s.scalars(select(FileVersion.id).where(FileVersion.size == 1000)).all()
    assert used_bytes(drive, alice.user_id) == used == 10  # trash was never in the quota
    assert drive.read_bytes(alice, "/kept.txt") == b"d" * 10


def test_per_account_settings_override_the_defaults(drive):
    alice = drive.create_account("alice", "x")
    bob = drive.create_account("bob", "x")
    for p in (alice, bob):
        for i in range(5):
            drive.write_file(p, "/f.txt", f"v{i}".encode())
    base = Retention()
    overrides, rules = set_account_retention(drive, "alice", {"max_versions": 2}, base)
    assert overrides == {"max_versions": 2} and rules.max_versions == 2
    assert rules.keep_all_days == base.keep_all_days
    with pytest.raises(ValueError, match="max_versions"):
        set_account_retention(drive, "alice", {"max_versions": 0}, base)
    with pytest.raises(ValueError, match="unknown"):
        set_account_retention(drive, "alice", {"keep_forever": 1}, base)
    with pytest.raises(NotFound):
        set_account_retention(drive, "nobody", {"max_versions": 2}, base)
    prune(drive)
    assert len(drive.list_versions(alice, "/f.txt")) == 2
    assert len(drive.list_versions(bob, "/f.txt")) == 5
    assert account_retention(drive, "ALICE", base)[0] == {"max_versions": 2}
    overrides, rules = set_account_retention(drive, "alice", {}, base, reset=True)
    assert overrides == {} and rules == base


def test_settings_from_the_config_file(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("retention:\n  keep_all_days: 7\n  history_share: 0.25\n")
    loaded = load_config(cfg, data_dir=tmp_path)
    assert loaded.retention == Retention(keep_all_days=7, history_share=0.25)
    assert load_config(None, data_dir=tmp_path).retention == Retention()
    cfg.write_text("retention:\n  history_share: 2\n")
    with pytest.raises(ValueError, match="history_share"):
        load_config(cfg)
    cfg.write_text("retention:\n  trash_days: -1\n")
    with pytest.raises(ValueError, match="trash_days"):
        load_config(cfg)


def test_a_version_pinned_or_a_trash_entry_restored_after_the_plan_stays(drive):
    """Execution checks every drop again under the account lock."""
    alice = drive.create_account("alice", "x", quota=10_000)
    for i in range(4):
        drive.write_file(alice, "/f.bin", bytes([i]) * 4000)
    drive.write_file(alice, "/gone.txt", b"x")
    drive.delete(alice, "/gone.txt")
    trash_id = drive.list_trash(alice)[0].id
    rules = Retention(trash_days=0, history_share=0)
    with drive.db.read() as s:
        history, _ = retention._load(s, alice.user_id)
    stale = plan(history, rules, NOW)
    assert len(stale.drops) == 3 and len(stale.purged) == 1
    versions = drive.list_versions(alice, "/f.bin")
    drive.pin_version(alice, "/f.bin", versions[2].id)
    drive.restore_trash(alice, trash_id)
    dropped, purged = retention._execute(drive.core, alice.user_id, stale, NOW)
    assert (dropped, purged) == (2, 0)
    left = {v.id for v in drive.list_versions(alice, "/f.bin")}
    assert left == {versions[0].id, versions[2].id}
    assert drive.read_bytes(alice, "/gone.txt") == b"x"


# -- any history, end to end ------------------------------------------------------------------
BODIES = [bytes([i]) * (200 + 300 * i) for i in range(6)]


@settings(
    max_examples=20,
    deadline=None,
    # one drive (fixture) for all examples: each example is a new account
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    files=st.lists(
        st.lists(
            st.tuples(st.sampled_from(range(6)), st.floats(0, 200 * DAY), st.booleans()),
            min_size=1,
            max_size=8,
        ),
        min_size=1,
        max_size=3,
    ),
    rules=st.builds(
        Retention,
        keep_all_days=st.sampled_from([0, 1, 30]),
        max_versions=st.integers(1, 6),
        history_share=st.sampled_from([0, 0.2, 1]),
        trash_days=st.just(30),
    ),
)
def test_any_history_end_to_end(drive, files, rules):
    login = f"u{os.urandom(6).hex()}"
    p = drive.create_account(login, "x", quota=6000)
    for f, edits in enumerate(files):
        for body, _, _ in edits:
            drive.write_file(p, f"/f{f}.bin", BODIES[body])
    before: dict[int, list] = {}
    for f, edits in enumerate(files):
        versions = list(reversed(drive.list_versions(p, f"/f{f}.bin")))
        before[f] = versions
        for v, (_, age, pinned) in zip(versions, edits, strict=False):
            set_created(drive, v.id, NOW - age)
            if pinned:
                drive.pin_version(p, f"/f{f}.bin", v.id)
    used = used_bytes(drive, p.user_id)
    report = prune(drive, now=NOW, settings=rules)
    (mine,) = [a for a in report.accounts if a.login == login]
    event(f"versions dropped: {min(mine.versions_dropped, 3)}")
    assert mine.error is None
    pinned_history = True  # every version left beside the current ones is pinned
    for f, versions in before.items():
        pinned = {v.id for v, e in zip(versions, files[f], strict=False) if e[2]}
        current = versions[-1].id
        left = {v.id for v in drive.list_versions(p, f"/f{f}.bin")}
        assert pinned | {current} <= left
        assert len(left) <= max(rules.max_versions, len(pinned | {current}))
        pinned_history &= left - {current} <= pinned
        dropped = {v.id for v in versions} - left
        assert dropped == {d.version_id for d in mine.versions if d.path == f"/f{f}.bin"}
    held = history_bytes(drive, p.user_id)
    assert held == mine.plan.history_after
    assert held <= int(rules.history_share * 6000) or pinned_history
    assert used_bytes(drive, p.user_id) == used
    for f, edits in enumerate(files):
        assert drive.read_bytes(p, f"/f{f}.bin") == BODIES[edits[-1][0]]
