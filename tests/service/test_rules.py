"""Service rules on SQLite and PostgreSQL: the lock rule every door obeys, history across saves
by rename, placeholders, listings and the account overview."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from davdrive import errors
from davdrive.service import versions as versions_module
from davdrive.service.changes import Changes
from davdrive.service.drive import Expect
from davdrive.service.locks import LockRepo, lock_url


def _lock(drive, p, path: str, depth: str = "0") -> str:
    repo = LockRepo(drive.db)
    lock = repo.create(
        lock_url(p.login, path),
        {
            "type": "write",
            "scope": "exclusive",
            "depth": depth,
            "owner": b"",
            "timeout": 600,
            "principal": p.login,
        },
    )
    return lock["token"]


def test_locks_bind_every_write_of_the_service(drive, alice, bob):
    drive.mkdir(alice, "/d")
    drive.write_file(alice, "/d/f.txt", b"one")
    token = _lock(drive, alice, "/d/f.txt")
    holder = replace(alice, lock_tokens=frozenset({token}))
    for attempt in (
        lambda p: drive.write_file(p, "/d/f.txt", b"two"),
        lambda p: drive.delete(p, "/d/f.txt"),
        lambda p: drive.delete(p, "/d"),  # a locked member protects its folder's subtree
        lambda p: drive.move(p, "/d/f.txt", "/g.txt"),
        lambda p: drive.set_mtime(p, "/d/f.txt", 1.0),
        lambda p: drive.restore_version(p, "/d/f.txt", drive.list_versions(p, "/d/f.txt")[0].id),
        lambda p: drive.set_dead_prop(p, drive.stat(p, "/d/f.txt").id, "{x:}y", b"<y/>"),
    ):
        with pytest.raises(errors.Locked):
            attempt(alice)
    drive.write_file(holder, "/d/f.txt", b"two")  # the token opens it
    drive.write_file(alice, "/d/other.txt", b"a depth-0 file lock leaves its siblings free")
    with pytest.raises(errors.Locked):  # some other token does not open it
        drive.write_file(
            replace(alice, lock_tokens=frozenset({"opaquelocktoken:0x1"})), "/d/f.txt", b"x"
        )
    drive.write_file(bob, "/d.txt", b"bob's tree knows nothing of alice's locks")

    with pytest.raises(errors.Locked):  # a member's exclusive lock conflicts (RFC 4918 §6.1)
        _lock(drive, alice, "/d", depth="infinity")
    drive.mkdir(alice, "/e")
    folder = _lock(drive, alice, "/e", depth="infinity")
    with pytest.raises(errors.Locked):
        drive.write_file(alice, "/e/new.txt", b"x")
    with pytest.raises(errors.Locked):
        drive.mkdir(alice, "/e/sub")
    both = replace(alice, lock_tokens=frozenset({token, folder}))
    drive.mkdir(both, "/e/sub")
    drive.move(both, "/d/f.txt", "/e/moved.txt")  # moving drops the file's own lock
    with_folder = replace(alice, lock_tokens=frozenset({folder}))
    drive.write_file(with_folder, "/e/moved.txt", b"only the folder's lock is left")
    with pytest.raises(errors.Locked):
        drive.write_file(alice, "/e/moved.txt", b"x")


def test_a_file_moved_over_a_file_becomes_its_new_revision(drive, alice):
    first = drive.write_file(alice, "/x", b"v1")
    drive.write_file(alice, "/x", b"v2")
    drive.pin_version(alice, "/x", first.version_id)
    drive.write_file(alice, "/x.tmp", b"v3")
    used = drive.usage(alice).used
    assert drive.move(alice, "/x.tmp", "/x") is True
    after = drive.stat(alice, "/x")
    assert after.id == first.id and drive.read_bytes(alice, "/x") == b"v3"
    history = drive.list_versions(alice, "/x")
    assert [drive.read_bytes(alice, "/x", version_id=v.id) for v in history] == [
        b"v3",
        b"v2",
        b"v1",
    ]
    assert [v.pinned for v in history] == [False, False, True]
    assert drive.try_stat(alice, "/x.tmp") is None and drive.list_trash(alice) == []
    assert drive.usage(alice).used == used - 2  # the old current bytes left the quota
    drive.write_file(alice, "/y", b"copied in")
    assert drive.copy(alice, "/y", "/x") is True
    assert drive.stat(alice, "/x").id == first.id and len(drive.list_versions(alice, "/x")) == 4
    assert drive.read_bytes(alice, "/y") == b"copied in"


@pytest.mark.parametrize("how", ["moved away", "deleted"])
def test_a_file_created_where_one_just_left_continues_its_history(drive, alice, how):
    drive.write_file(alice, "/x", b"v1")
    drive.write_file(alice, "/x", b"v2")
    if how == "moved away":
        drive.move(alice, "/x", "/x~")
    else:
        drive.delete(alice, "/x")
    drive.write_file(alice, "/x", b"v3")
    history = [
        drive.read_bytes(alice, "/x", version_id=v.id) for v in drive.list_versions(alice, "/x")
    ]
    assert history == [b"v3", b"v2", b"v1"]
    drive.write_file(alice, "/tmp", b"v4")
    drive.delete(alice, "/x")
    drive.move(alice, "/tmp", "/x")  # a rename into the vacated name carries history too
    history = [
        drive.read_bytes(alice, "/x", version_id=v.id) for v in drive.list_versions(alice, "/x")
    ]
    assert history == [b"v4", b"v3", b"v2", b"v1"]


def test_no_handover_after_the_window(drive, alice, monkeypatch):
    drive.write_file(alice, "/x", b"v1")
    drive.delete(alice, "/x")
    monkeypatch.setattr(versions_module, "HANDOVER_WINDOW", -1.0)
    drive.write_file(alice, "/x", b"new file")
    assert len(drive.list_versions(alice, "/x")) == 1


def test_an_empty_placeholder_is_replaced_not_stacked(drive, alice):
    drive.write_file(alice, "/f", b"")  # LOCK on a new name / Explorer's 0-byte PUT
    drive.write_file(alice, "/f", b"content")
    assert [v.size for v in drive.list_versions(alice, "/f")] == [7]
    drive.write_file(alice, "/f", b"")
    drive.pin_version(alice, "/f", drive.list_versions(alice, "/f")[0].id)
    drive.write_file(alice, "/f", b"again")  # a pinned empty version stays
    assert [v.size for v in drive.list_versions(alice, "/f")] == [5, 0, 7]


def test_expectations_on_move_copy_delete(drive, alice):
    info = drive.write_file(alice, "/f", b"x")
    with pytest.raises(errors.PreconditionFailed):
        drive.move(alice, "/f", "/g", expect=Expect(rev=info.version_id + 1000))
    with pytest.raises(errors.PreconditionFailed):
        drive.delete(alice, "/f", expect=Expect(etag="nope"))
    drive.copy(alice, "/f", "/c", expect=Expect(etag=info.etag, rev=info.version_id))
    drive.move(alice, "/f", "/g", expect=Expect(rev=info.version_id))
    assert drive.stat(alice, "/g").id == info.id


def test_listings_page_and_the_tree_reports_its_journal_position(drive, alice):
    for name in ("b", "a", "c"):
        drive.write_file(alice, f"/{name}", name.encode())
    drive.mkdir(alice, "/a dir")
    drive.write_file(alice, "/a dir/inner", b"i")
    page, more = drive.list_page(alice, "/", limit=2)
    assert [e.name for e in page] == ["a", "a dir"] and more
    page, more = drive.list_page(alice, "/", after="a dir", limit=2)
    assert [e.name for e in page] == ["b", "c"] and not more
    entries, more, seq = drive.list_tree(alice, "/", limit=100)
    assert [e.path for e in entries] == ["/a", "/a dir", "/a dir/inner", "/b", "/c"]
    assert not more and str(seq) == Changes(drive).latest(alice)


def test_account_overview_splits_usage(drive, alice):
    drive.write_file(alice, "/f", b"1" * 100)
    drive.write_file(alice, "/f", b"2" * 10)
    drive.write_file(alice, "/g", b"3" * 5)
    drive.mkdir(alice, "/d")
    drive.write_file(alice, "/d/h", b"4" * 7)
    time.sleep(0.01)
    drive.delete(alice, "/d")
    o = drive.account_overview(alice)
    assert (o.login, o.used, o.history, o.trash) == ("alice", 15, 100, 7)
    assert o.stored > 0 and o.devices == 0
