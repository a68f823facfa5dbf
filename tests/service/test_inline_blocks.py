"""Small files are kept inline in the metadata database (issue 15): no object, same guarantees.

Dedup, quota, integrity checks, healing and resumable uploads treat an inline block like any
other; run on SQLite and PostgreSQL.
"""

from __future__ import annotations

import io
import os

import pytest
from sqlalchemy import select, update

from davdrive import errors
from davdrive.blockstore.store import INLINE_MAX
from davdrive.metadata.schema import Block
from davdrive.service.uploads import ResumableUploads


def objects(drive) -> int:
    return len(drive.store.backend._objects)  # MemoryBackend


def block_rows(drive, owner: int) -> list:
    with drive.db.read() as s:
        return s.execute(
            select(Block.hash, Block.inline_data, Block.tier).where(Block.user_id == owner)
        ).all()


def test_small_file_is_inline_and_reads_back(drive, alice):
    data = os.urandom(4096)
    drive.write_file(alice, "/a.bin", data)
    assert objects(drive) == 0  # no object written
    rows = block_rows(drive, alice.user_id)
    assert len(rows) == 1 and rows[0].inline_data is not None
    assert data not in rows[0].inline_data  # sealed (encrypted), not plaintext
    assert drive.read_bytes(alice, "/a.bin") == data
    # the largest inline size still inline; one byte more is an object
    drive.write_file(alice, "/edge.bin", os.urandom(INLINE_MAX))
    assert objects(drive) == 0
    big = os.urandom(INLINE_MAX + 1)
    drive.write_file(alice, "/big.bin", big)
    assert objects(drive) == 1
    assert drive.read_bytes(alice, "/big.bin") == big


def test_inline_blocks_dedup_and_count_in_quota(drive):
    p = drive.create_account("q", "x", quota=10_000)
    data = os.urandom(3000)
    drive.write_file(p, "/one", data)
    drive.write_file(p, "/two", data)  # same content: one block row
    assert len(block_rows(drive, p.user_id)) == 1
    assert drive.usage(p).used == 6000  # quota counts every file
    with pytest.raises(errors.QuotaExceeded):
        drive.write_file(p, "/three", os.urandom(5000))
    assert drive.try_stat(p, "/three") is None
    assert len(block_rows(drive, p.user_id)) == 1  # the refused one left no row
    drive.delete(p, "/one")
    assert drive.read_bytes(p, "/two") == data
    # another account's identical file is its own block (dedup is per account)
    q = drive.create_account("q2", "x")
    drive.write_file(q, "/same", data)
    assert len(block_rows(drive, q.user_id)) == 1


def test_versions_of_a_small_file_keep_their_bytes(drive, alice):
    contents = [os.urandom(100 + i) for i in range(4)]
    for c in contents:
        drive.write_file(alice, "/v.txt", c)
    versions = drive.list_versions(alice, "/v.txt")
    got = [drive.read_bytes(alice, "/v.txt", version_id=v.id) for v in versions]
    assert sorted(got) == sorted(contents)


def test_fsck_verifies_inline_blocks_and_an_upload_heals_them(drive, alice):
    data = os.urandom(2048)
    drive.write_file(alice, "/doc.txt", data)
    assert drive.fsck().ok
    with drive.db.write() as s:
        blob = s.scalar(select(Block.inline_data))
        damaged = blob[:-1] + bytes([blob[-1] ^ 1])
        s.execute(update(Block).values(inline_data=damaged))
    with pytest.raises(errors.IntegrityError):
        drive.read_bytes(alice, "/doc.txt")
    report = drive.fsck()
    assert not report.ok and len(report.damaged) == 1
    assert [f.path for f in report.affected[report.damaged[0]]] == ["/doc.txt"]
    repaired = drive.fsck(repair=True)
    assert repaired.marked_lost == 1
    drive.write_file(alice, "/again.txt", data)  # the same content uploaded again heals it
    assert drive.read_bytes(alice, "/doc.txt") == data
    assert drive.fsck().ok


def test_resumable_upload_of_content_held_inline(drive, alice):
    """A tus upload reads its staged blocks back by object key: an inline twin must not make it
    skip writing the object."""
    data = os.urandom(5000)
    drive.write_file(alice, "/inline.bin", data)
    uploads = ResumableUploads(drive)
    session = uploads.create(alice, "/tus.bin", len(data))
    body = io.BytesIO(data)
    uploads.append(alice, session.id, 0, body.read, len(data))
    assert drive.read_bytes(alice, "/tus.bin") == data
    assert drive.read_bytes(alice, "/inline.bin") == data
    assert drive.fsck().ok
