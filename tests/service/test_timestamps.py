"""Modification times are validated in one place and stored bad values never break a read."""

from __future__ import annotations

import math

import pytest
from sqlalchemy import update

from davdrive import errors
from davdrive.metadata.schema import FileVersion, Node
from davdrive.service.timestamps import MAX_SECONDS, parse_mtime, shown_mtime


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [
        (0, 0.0),
        ("1700000000", 1_700_000_000.0),
        ("1700000000.5", 1_700_000_000.5),
        (1_700_000_000_123, 1_700_000_000.123),  # JavaScript milliseconds
        ("1700000000123", 1_700_000_000.123),
        (99_999_999_999, 99_999_999_999.0),  # the last second read as seconds (year 5138)
    ],
)
def test_accepted(raw, seconds):
    assert math.isclose(parse_mtime(raw), seconds)


@pytest.mark.parametrize(
    "raw", [-1, "²", "1e400", float("nan"), float("inf"), "abc", "", True, None, 1e15, "0x10"]
)
def test_refused(raw):
    with pytest.raises(errors.BadRequest):
        parse_mtime(raw)


def test_shown_mtime_clamps():
    assert shown_mtime(1e20) == MAX_SECONDS and shown_mtime(float("nan")) == 0.0
    assert shown_mtime(-5) == 0.0 and shown_mtime(12.5) == 12.5


def test_every_service_door_validates(drive, alice):
    with pytest.raises(errors.BadRequest):
        drive.write_file(alice, "/f", b"x", mtime=1e15)
    info = drive.write_file(alice, "/f", b"x", mtime=1_700_000_000_000)  # milliseconds
    assert info.mtime == 1_700_000_000.0
    with pytest.raises(errors.BadRequest):
        drive.set_mtime(alice, "/f", float("inf"))
    assert drive.try_stat(alice, "/f").mtime == 1_700_000_000.0


def test_reads_survive_a_bad_stored_time(drive, alice):
    drive.mkdir(alice, "/d")
    info = drive.write_file(alice, "/d/f", b"x")
    with drive.db.write() as s:  # what a store written before validation may hold
        s.execute(update(Node).where(Node.id == info.id).values(mtime=1.7e15))
        s.execute(update(FileVersion).where(FileVersion.id == info.version_id).values(mtime=1e15))
    assert drive.stat(alice, "/d/f").mtime == MAX_SECONDS
    assert [n.mtime for n in drive.list_dir(alice, "/d")] == [MAX_SECONDS]
    assert drive.list_versions(alice, "/d/f")[0].mtime == MAX_SECONDS
