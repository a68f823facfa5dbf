"""RFC 6578 collection sync over the journal."""

from __future__ import annotations

import pytest

from davdrive import errors
from davdrive.service.changes import Changes
from davdrive.service.sync import sync_collection


def paths(members):
    return {m.path: (m.node is not None) for m in members}


def test_initial_then_incremental_level_one(drive, alice):
    drive.mkdir(alice, "/c")
    drive.write_file(alice, "/c/a", b"1")
    drive.mkdir(alice, "/c/sub")
    drive.write_file(alice, "/c/sub/deep", b"2")
    drive.write_file(alice, "/outside", b"3")
    members, token = sync_collection(drive, alice, "/c", None, infinite=False)
    assert paths(members) == {"/c/a": True, "/c/sub": True}
    assert sync_collection(drive, alice, "/c", token, infinite=False)[0] == []
    drive.write_file(alice, "/c/a", b"changed")
    drive.write_file(alice, "/c/b", b"new")
    drive.write_file(alice, "/c/sub/deep", b"not a direct member")
    drive.write_file(alice, "/outside", b"elsewhere")
    drive.move(alice, "/c/b", "/moved-out")
    members, token2 = sync_collection(drive, alice, "/c", token, infinite=False)
    assert paths(members) == {"/c/a": True, "/c/b": False}
    assert int(token2) > int(token)


def test_infinite_depth_sees_descendants_and_moved_in_folders(drive, alice):
    drive.mkdir(alice, "/c")
    drive.mkdir(alice, "/elsewhere")
    drive.write_file(alice, "/elsewhere/x", b"x")
    _, token = sync_collection(drive, alice, "/c", None, infinite=True)
    drive.move(alice, "/elsewhere", "/c/in")
    drive.delete(alice, "/c/in/x")
    drive.write_file(alice, "/c/in/y", b"y")
    members, _ = sync_collection(drive, alice, "/c", token, infinite=True)
    assert paths(members) == {"/c/in": True, "/c/in/x": False, "/c/in/y": True}


def test_bad_or_pruned_token(drive, alice):
    drive.mkdir(alice, "/c")
    _, token = sync_collection(drive, alice, "/c", None, infinite=False)
    for i in range(3):
        drive.write_file(alice, f"/c/{i}", b"x")
    Changes(drive).prune(older_than=0, now=9e12)
    with pytest.raises(errors.CursorExpired):
        sync_collection(drive, alice, "/c", token, infinite=False)
    with pytest.raises(errors.CursorExpired):
        sync_collection(drive, alice, "/c", "999999", infinite=False)


def test_other_account_changes_are_invisible(drive, alice, bob):
    drive.mkdir(alice, "/c")
    drive.mkdir(bob, "/c")
    _, token = sync_collection(drive, alice, "/c", None, infinite=True)
    drive.write_file(bob, "/c/b", b"bob")
    assert sync_collection(drive, alice, "/c", token, infinite=True)[0] == []
