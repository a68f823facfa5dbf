"""Integrity end to end: tamper, fsck, encryption at rest, dedup, master key rotation."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from davdrive.blockstore.keys import KeyRing
from davdrive.blockstore.store import BlockStore
from davdrive.errors import IntegrityError
from davdrive.metadata.db import Database
from davdrive.service.drive import Drive
from davdrive.storage.local import LocalBackend

MiB = 1 << 20


def local_drive(tmp_path: Path, db_url: str | None = None) -> Drive:
    db = Database(db_url or f"sqlite:///{tmp_path / 'davdrive.db'}")
    db.upgrade()
    store = BlockStore(LocalBackend(tmp_path / "blocks"), zstd_level=1, threads=2)
    return Drive(db, store, KeyRing.load_or_create(tmp_path / "master.key", env={}))


@pytest.fixture
def ldrive(tmp_path, db_url):
    d = local_drive(tmp_path, db_url)
    yield d
    d.store.close()
    d.db.dispose()


def stored_bytes(tmp_path: Path) -> int:
    return sum(p.stat().st_size for p in (tmp_path / "blocks").rglob("*") if p.is_file())


def test_flipped_byte_fails_the_read_and_fsck_reports_it(ldrive, tmp_path):
    p = ldrive.create_account("alice", "x")
    ldrive.write_file(p, "/f", os.urandom(3 * MiB))
    assert ldrive.fsck().ok
    victim = next(q for q in (tmp_path / "blocks").rglob("*") if q.is_file())
    blob = bytearray(victim.read_bytes())
    blob[100] ^= 0x80
    victim.write_bytes(bytes(blob))
    with pytest.raises(IntegrityError):
        ldrive.read_bytes(p, "/f")
    report = ldrive.fsck()
    assert not report.ok and report.damaged == [victim.name]
    assert report.versions_affected == 1


def test_fsck_reports_missing_and_orphan_objects(ldrive, tmp_path):
    p = ldrive.create_account("alice", "x")
    ldrive.write_file(p, "/f", os.urandom(MiB))
    victim = next(q for q in (tmp_path / "blocks").rglob("*") if q.is_file())
    victim.unlink()
    ldrive.store.backend.put("ee" * 32, b"left by a crashed upload")
    report = ldrive.fsck()
    assert report.missing == [victim.name]
    assert report.orphans == ["ee" * 32]
    # A fresh orphan may belong to an upload in flight: repair keeps it during the grace period.
    assert ldrive.fsck(repair=True).repaired == 0
    os.utime(ldrive.store.backend._path("ee" * 32), (1, 1))
    assert ldrive.fsck(repair=True).repaired == 1
    assert ldrive.fsck().orphans == []


def test_fsck_repair_keeps_the_blocks_of_an_unfinished_resumable_upload(ldrive, tmp_path):
    from davdrive.service.uploads import ResumableUploads

    p = ldrive.create_account("alice", "x")
    uploads = ResumableUploads(ldrive)
    data = os.urandom(6 * MiB)
    sid = uploads.create(p, "/big.bin", len(data)).id
    half = 4 * MiB + 12345  # complete blocks plus a tail block are staged
    body = iter([data[:half], b""])
    assert uploads.append(p, sid, 0, lambda _n: next(body), half) == (half, None)
    staged = [q for q in (tmp_path / "blocks").rglob("*") if q.is_file()]
    assert len(staged) >= 2
    for q in staged:  # an upload paused for days, well past the grace period
        os.utime(q, (1, 1))
    report = ldrive.fsck(repair=True)
    assert report.ok and report.orphans == [] and report.repaired == 0
    rest = iter([data[half:], b""])
    _offset, info = uploads.append(p, sid, half, lambda _n: next(rest), len(data) - half)
    assert info is not None and ldrive.read_bytes(p, "/big.bin") == data


def test_marker_appears_nowhere_under_the_data_directory(tmp_path):
    drive = local_drive(tmp_path)
    p = drive.create_account("alice", "x")
    marker = b"MARKER-7f3a-do-not-leak "
    drive.write_file(p, "/notes.txt", marker * (4 * MiB // len(marker)))
    drive.write_file(p, "/small.txt", marker)
    drive.store.close()
    drive.db.dispose()
    found = [q for q in tmp_path.rglob("*") if q.is_file() and marker.strip() in q.read_bytes()]
    assert found == []


def test_same_32_mib_twice_adds_under_one_percent(ldrive, tmp_path):
    p = ldrive.create_account("alice", "x")
    data = os.urandom(32 * MiB)
    ldrive.write_file(p, "/a", data)
    before = stored_bytes(tmp_path)
    ldrive.write_file(p, "/b", data)
    assert stored_bytes(tmp_path) - before < 0.01 * len(data)
    mid = len(data) // 2
    ldrive.write_file(p, "/c", data[:mid] + b"x" + data[mid:])
    added = stored_bytes(tmp_path) - before
    print(f"one-byte insertion in 32 MiB stored {added / MiB:.2f} MiB of new blocks")
    assert added <= 3 * 4 * MiB
    assert ldrive.read_bytes(p, "/c") == data[:mid] + b"x" + data[mid:]


def test_master_key_rotation_rewraps_without_rewriting_blocks(tmp_path):
    drive = local_drive(tmp_path)
    p = drive.create_account("alice", "x")
    data = os.urandom(2 * MiB)
    drive.write_file(p, "/f", data)
    blocks_before = {q: q.stat().st_mtime_ns for q in (tmp_path / "blocks").rglob("*")}
    old_id = drive.keyring.current_id
    drive.keyring.rotate()
    assert drive.rewrap_keys() == 1
    drive.keyring.retire(old_id)
    drive.store.close()
    drive.db.dispose()
    again = local_drive(tmp_path)
    assert old_id not in again.keyring.ids
    assert again.read_bytes(p, "/f") == data
    assert {q: q.stat().st_mtime_ns for q in (tmp_path / "blocks").rglob("*")} == blocks_before
    again.store.close()
    again.db.dispose()
