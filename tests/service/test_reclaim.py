"""Space comes back (issue 16, item 6): a refused or aborted upload's blocks are reclaimed at
once, purging the trash frees blocks nothing else uses, a commit never adopts a reclaimed block,
fsck reports and removes crash leftovers, and a full database disk is a 507."""

from __future__ import annotations

import os
import sqlite3
import time

import pytest
from sqlalchemy.exc import OperationalError

from davdrive import errors
from davdrive.metadata.db import disk_full
from davdrive.storage.local import LocalBackend

MiB = 1 << 20


def _objects(drive) -> set[str]:
    return {o.key for o in drive.store.backend.list()}


def test_an_aborted_upload_leaves_nothing(drive, alice):
    before = _objects(drive)
    upload = drive.begin_upload(alice, "/big")
    upload.write(os.urandom(6 * MiB))
    upload.abort()
    assert _objects(drive) == before


def test_a_refused_commit_leaves_nothing(drive, alice):
    drive.write_file(alice, "/f", b"v1")
    before = _objects(drive)
    with pytest.raises(errors.PreconditionFailed):
        drive.write_file(alice, "/f", os.urandom(3 * MiB), expected_etag="not-the-etag")
    assert _objects(drive) == before
    drive.core.max_file_size = 2 * MiB
    with pytest.raises(errors.FileTooLarge):
        drive.write_file(alice, "/g", iter([os.urandom(MiB) for _ in range(4)]))
    assert _objects(drive) == before


def test_reclaim_spares_what_another_file_uses(drive, alice):
    data = os.urandom(2 * MiB)
    drive.write_file(alice, "/keep", data)
    kept = _objects(drive)
    upload = drive.begin_upload(alice, "/same")
    upload.write(data)  # deduplicated: nothing new is written
    upload.abort()
    assert _objects(drive) == kept
    assert drive.read_bytes(alice, "/keep") == data


def test_purging_the_trash_frees_blocks_nothing_else_uses(drive, alice):
    shared = os.urandom(MiB)
    drive.write_file(alice, "/a", shared + os.urandom(2 * MiB))
    drive.write_file(alice, "/b", shared)
    before = _objects(drive)
    drive.delete(alice, "/a")
    assert _objects(drive) == before  # the trash still holds it
    drive.purge_trash(alice)
    after = _objects(drive)
    assert after < before and drive.read_bytes(alice, "/b") == shared
    assert drive.fsck().ok


def test_a_commit_never_adopts_a_reclaimed_block(drive, alice):
    upload = drive.begin_upload(alice, "/x")
    upload.write(os.urandom(3 * MiB))
    finish = upload._ingest.finish

    def finish_then_lose_the_race():  # a refused twin upload reclaims the same objects
        result = finish()
        drive.core.reclaim(alice.user_id, [r.object_key for r in result.blocks if r.new])
        return result

    upload._ingest.finish = finish_then_lose_the_race
    with pytest.raises(errors.Conflict):
        upload.commit()
    assert drive.try_stat(alice, "/x") is None


def test_fsck_reports_and_repairs_crash_leftovers(tmp_path):
    backend = LocalBackend(tmp_path / "blocks")
    backend.put("ab" * 32, b"x")
    leftover = tmp_path / "blocks" / "ab" / "ab" / f".{'ab' * 32}.1234.tmp"
    leftover.write_bytes(b"half a block")
    old = time.time() - 7200
    os.utime(leftover, (old, old))
    assert [o.key for o in backend.leftovers()] == [f"ab/ab/{leftover.name}"]
    assert [o.key for o in backend.list()] == ["ab" * 32]
    backend.remove_leftover(f"ab/ab/{leftover.name}")
    assert not leftover.exists()
    with pytest.raises(ValueError):
        backend.remove_leftover("../../etc/passwd")


def test_database_disk_full_is_recognised():
    full = OperationalError("INSERT", {}, sqlite3.OperationalError("database or disk is full"))
    assert disk_full(full)
    other = OperationalError("INSERT", {}, sqlite3.OperationalError("database is locked"))
    assert not disk_full(other)
