"""The cold tier over a second directory (SQLite and PostgreSQL): the rule picks only blocks
of old, unpinned versions untouched for ``after_days``; archived blocks read transparently;
the move is idempotent and finishes after a crash; GC, the orphan sweep and fsck treat cold
objects right; archive-now leaves blocks another file's current version uses hot."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from sqlalchemy import delete, select, update

from davdrive.blockstore.blockformat import block_hash
from davdrive.blockstore.keys import KeyRing
from davdrive.blockstore.store import BlockStore
from davdrive.config import check_archive, load_config
from davdrive.errors import Conflict
from davdrive.metadata.db import Database
from davdrive.metadata.schema import Block, FileVersion
from davdrive.service.archive import (
    archive_file,
    plan_archive,
    plan_file_archive,
    run_archive,
)
from davdrive.service.drive import Drive
from davdrive.service.gc import run_gc
from davdrive.storage.local import LocalBackend
from davdrive.storage.memory import MemoryBackend
from davdrive.storage.tiered import ColdStoreBackend

KiB = 1 << 10
DAY = 24 * 3600.0


def body(tag: int) -> bytes:
    """One block (larger than inline_max) of random bytes."""
    return bytes([tag]) + os.urandom(80 * KiB)


def keys_in(root: Path) -> set[str]:
    return {p.name for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")}


@pytest.fixture
def tiers(tmp_path):
    return tmp_path / "hot", tmp_path / "cold"


@pytest.fixture
def drive(db_url, tmp_path, tiers):
    db = Database(db_url)
    db.upgrade()
    hot, cold = tiers
    backend = ColdStoreBackend(LocalBackend(hot), LocalBackend(cold), "file:cold")
    d = Drive(db, BlockStore(backend, threads=2), KeyRing.load_or_create(str(tmp_path / "k")))
    yield d
    d.store.close()
    d.db.dispose()


@pytest.fixture
def alice(drive):
    return drive.create_account("alice", "x")


def row_of(drive, user_id: int, data: bytes) -> Block:
    with drive.db.read() as s:
        row = s.scalar(
            select(Block).where(Block.user_id == user_id, Block.hash == block_hash(data))
        )
    assert row is not None
    return row


def age(drive, days: float = 100) -> None:
    with drive.db.write() as s:
        s.execute(update(Block).values(last_access=time.time() - days * DAY))


def versions(drive, p, path):
    return sorted(drive.list_versions(p, path), key=lambda v: v.id)


def test_the_rule_moves_only_old_unpinned_untouched_versions(drive, alice, tiers):
    hot, cold = tiers
    v1, v2, v3, v4 = body(1), body(2), body(3), body(4)
    for data in (v1, v2, v3):
        drive.write_file(alice, "/f.bin", data)
    drive.write_file(alice, "/trashed.bin", v4)
    drive.delete(alice, "/trashed.bin")
    pinned = versions(drive, alice, "/f.bin")[0]
    drive.pin_version(alice, "/f.bin", pinned.id)

    assert run_archive(drive, after_days=90).moved == 0, "young blocks stay hot"
    age(drive)
    report = run_archive(drive, after_days=90)
    assert (report.moved, report.failed) == (1, 0), report.summary()
    tiers_now = {
        tag: row_of(drive, alice.user_id, d).tier for tag, d in enumerate((v1, v2, v3, v4))
    }
    # v1 pinned, v3 current, v4 the current version of a trashed file: hot; v2 cold
    assert tiers_now == {0: "hot", 1: "cold", 2: "hot", 3: "hot"}
    moved = row_of(drive, alice.user_id, v2)
    assert moved.archived_at is not None
    assert moved.object_key in keys_in(cold) and moved.object_key not in keys_in(hot)
    assert row_of(drive, alice.user_id, v1).object_key in keys_in(hot)

    old = versions(drive, alice, "/f.bin")[1]
    assert drive.read_bytes(alice, "/f.bin", version_id=old.id) == v2  # transparent
    assert drive.read_bytes(alice, "/f.bin") == v3
    assert drive.fsck().ok, drive.fsck().summary()  # cold is not "missing"
    again = run_archive(drive, after_days=90)
    assert (again.moved, again.resumed) == (0, 0), "a second run has nothing to do"


def test_a_dry_run_changes_nothing(drive, alice, tiers):
    hot, cold = tiers
    drive.write_file(alice, "/f.bin", body(1))
    drive.write_file(alice, "/f.bin", body(2))
    age(drive)
    before = keys_in(hot)
    dry = run_archive(drive, after_days=90, dry_run=True)
    assert dry.dry_run and dry.moved == 1 and dry.bytes_moved > 0
    assert "would move 1 blocks" in dry.summary()
    assert keys_in(hot) == before and not keys_in(cold)
    with drive.db.read() as s:
        assert set(s.scalars(select(Block.tier))) == {"hot"}


def test_the_move_is_idempotent_and_finishes_after_a_crash(drive, alice, tiers, monkeypatch):
    hot, cold = tiers
    drive.write_file(alice, "/f.bin", body(1))
    drive.write_file(alice, "/f.bin", body(2))
    drive.write_file(alice, "/f.bin", body(3))
    age(drive)
    plan = plan_archive(drive, after_days=90)
    a, b = plan.blocks
    keys = drive.account_keys(alice.user_id)

    # Crash 1: the row is marked and the object copied (and the hot copy deleted), but the
    # process died before the row flipped to cold.
    with drive.db.write() as s:
        s.execute(update(Block).where(Block.id == a.id).values(tier="archiving"))
    drive.store.archive_block(keys, a.hash, a.object_key)
    # Crash 2: the copy is in the cold store, the hot copy still there (died before deleting).
    with drive.db.write() as s:
        s.execute(update(Block).where(Block.id == b.id).values(tier="archiving"))
    drive.store.backend.cold.put(b.object_key, drive.store.backend.hot.get(b.object_key))
    assert b.object_key in keys_in(hot) and b.object_key in keys_in(cold)
    # Reads work meanwhile
    for v in versions(drive, alice, "/f.bin")[:2]:
        assert len(drive.read_bytes(alice, "/f.bin", version_id=v.id)) == 80 * KiB + 1

    report = run_archive(drive, after_days=90)
    assert (report.resumed, report.moved, report.failed) == (2, 0, 0), report.summary()
    with drive.db.read() as s:
        assert set(s.scalars(select(Block.tier).where(Block.id.in_([a.id, b.id])))) == {"cold"}
    assert {a.object_key, b.object_key} <= keys_in(cold)
    assert not {a.object_key, b.object_key} & keys_in(hot)
    assert run_archive(drive, after_days=90).resumed == 0


def test_a_failed_copy_leaves_the_block_readable_and_the_next_run_moves_it(
    drive, alice, tiers, monkeypatch
):
    old_body = body(1)
    drive.write_file(alice, "/f.bin", old_body)
    drive.write_file(alice, "/f.bin", body(2))
    age(drive)
    cold_backend = drive.store.backend.cold

    def broken(key, data):
        raise OSError("cold store full")

    monkeypatch.setattr(cold_backend, "put", broken)
    report = run_archive(drive, after_days=90)
    assert report.failed == 1 and "cold store full" in report.errors[0]
    old = versions(drive, alice, "/f.bin")[0]
    assert drive.read_bytes(alice, "/f.bin", version_id=old.id) == old_body
    assert row_of(drive, alice.user_id, old_body).tier == "archiving"
    monkeypatch.undo()
    again = run_archive(drive, after_days=90)
    assert (again.resumed, again.failed) == (1, 0)
    assert row_of(drive, alice.user_id, old_body).tier == "cold"
    assert row_of(drive, alice.user_id, old_body).object_key in keys_in(tiers[1])


def test_gc_of_a_pruned_cold_block_deletes_its_cold_object(drive, alice, tiers):
    hot, cold = tiers
    old_body = body(1)
    drive.write_file(alice, "/f.bin", old_body)
    drive.write_file(alice, "/f.bin", body(2))
    age(drive)
    assert run_archive(drive, after_days=90).moved == 1
    key = row_of(drive, alice.user_id, old_body).object_key
    assert key in keys_in(cold)

    later = time.time() + 2 * DAY
    assert run_gc(drive, now=later).objects_removed == 0, "the orphan sweep keeps cold objects"
    assert key in keys_in(cold)
    drive.store.backend.cold.put("ab" * 32, b"a cold orphan")
    os.utime(next(cold.rglob("ab" * 32)), (1.0, 1.0))

    with drive.db.write() as s:  # what retention does
        s.execute(
            delete(FileVersion).where(FileVersion.id == versions(drive, alice, "/f.bin")[0].id)
        )
    report = run_gc(drive, now=later)
    assert (report.rows_removed, report.orphans_removed) == (1, 1), report.summary()
    assert key not in keys_in(cold) and "ab" * 32 not in keys_in(cold)
    assert drive.fsck().ok


def test_archive_now_leaves_blocks_another_files_current_version_uses(drive, alice, tiers):
    hot, cold = tiers
    shared, own_old, own_current = body(1), body(2), body(3)
    drive.write_file(alice, "/a.bin", own_old)
    drive.write_file(alice, "/a.bin", shared)
    drive.write_file(alice, "/a.bin", own_current)
    drive.write_file(alice, "/b.bin", shared)  # b's current version uses a block of a's
    plan = plan_file_archive(drive, alice, "/a.bin")
    assert {i.hash for i in plan.blocks} == {block_hash(own_old), block_hash(own_current)}
    report = archive_file(drive, alice, "/a.bin")
    assert report.moved == 2
    assert row_of(drive, alice.user_id, shared).tier == "hot"
    assert row_of(drive, alice.user_id, own_current).tier == "cold"
    assert drive.read_bytes(alice, "/a.bin") == own_current  # a cold directory: transparent
    assert drive.read_bytes(alice, "/b.bin") == shared


def test_archive_is_off_without_a_cold_tier(db_url, tmp_path):
    db = Database(db_url)
    db.upgrade()
    d = Drive(db, BlockStore(MemoryBackend()), KeyRing.load_or_create(str(tmp_path / "k")))
    try:
        p = d.create_account("alice", "x")
        d.write_file(p, "/f.bin", body(1))
        report = run_archive(d, after_days=0)
        assert not report.enabled and "archive is off" in report.summary()
        with pytest.raises(Conflict, match="archive is off"):
            archive_file(d, p, "/f.bin")
    finally:
        d.store.close()
        db.dispose()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"url": "file:///x", "storage_class": "GLACIER"}, "not both"),
        ({"storage_class": "ICE"}, "is not one of"),
        ({"url": "ftp://x"}, "archive.url"),
        ({"after_days": -1}, "archive.after_days"),
        ({"restore_days": 1.5}, "restore_days"),
        ({"restore_tier": "Fast"}, "restore_tier"),
        ({"colour": 1}, "unknown settings colour"),
        ("GLACIER", "must be a mapping"),
    ],
)
def test_bad_archive_settings_are_refused_clearly(value, message):
    with pytest.raises(ValueError, match=message):
        check_archive(value)


def test_archive_settings_load(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("archive: {storage_class: glacier, restore_tier: bulk, after_days: 30}\n")
    a = load_config(cfg).archive
    assert (a.storage_class, a.restore_tier, a.after_days, a.enabled) == (
        "GLACIER",
        "Bulk",
        30,
        True,
    )
    assert not load_config(None).archive.enabled


def test_a_cold_block_a_new_upload_reuses_comes_back_to_hot(drive, alice, tiers):
    hot, cold = tiers
    old_body = body(1)
    drive.write_file(alice, "/f.bin", old_body)
    drive.write_file(alice, "/f.bin", body(2))
    age(drive)
    assert run_archive(drive, after_days=90).moved == 1
    key = row_of(drive, alice.user_id, old_body).object_key
    assert run_archive(drive, after_days=90, dry_run=True).thawed == 0

    drive.write_file(alice, "/again.bin", old_body)  # deduplicated against the cold block
    assert row_of(drive, alice.user_id, old_body).tier == "cold"
    assert drive.read_bytes(alice, "/again.bin") == old_body  # transparent meanwhile
    dry = run_archive(drive, after_days=90, dry_run=True)
    assert dry.thawed == 1 and "would come back to hot" in dry.summary()
    report = run_archive(drive, after_days=90)
    assert (report.thawed, report.moved, report.failed) == (1, 0, 0), report.summary()
    row = row_of(drive, alice.user_id, old_body)
    assert (row.tier, row.archived_at) == ("hot", None)
    assert key in keys_in(hot) and key not in keys_in(cold)
    assert drive.read_bytes(alice, "/again.bin") == old_body
    assert run_archive(drive, after_days=90).thawed == 0
