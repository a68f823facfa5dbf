"""Drive service behaviour on real SQLite and PostgreSQL databases."""

from __future__ import annotations

import os
import threading

import pytest
from sqlalchemy import func, select

from davdrive import errors
from davdrive.metadata.schema import Block, Change
from davdrive.service.content import PRECHECK_MIN


def test_write_read_stat_list(drive, alice):
    drive.mkdir(alice, "/docs")
    info = drive.write_file(alice, "/docs/a.txt", b"hello", mtime=1_600_000_000)
    assert info.size == 5 and info.path == "/docs/a.txt" and not info.is_dir
    assert info.content_hash == "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    assert drive.read_bytes(alice, "/docs/a.txt") == b"hello"
    assert drive.stat(alice, "/docs/a.txt").mtime == 1_600_000_000
    names = [(n.name, n.is_dir, n.size) for n in drive.list_dir(alice, "/docs")]
    assert names == [("a.txt", False, 5)]
    assert [n.path for n in drive.list_dir(alice, "/")] == ["/docs"]
    assert drive.stat(alice, "/").is_dir


def test_errors(drive, alice):
    with pytest.raises(errors.ParentNotFound):
        drive.write_file(alice, "/missing/a.txt", b"x")
    with pytest.raises(errors.ParentNotFound):
        drive.mkdir(alice, "/missing/sub")
    drive.mkdir(alice, "/d")
    with pytest.raises(errors.AlreadyExists):
        drive.mkdir(alice, "/d")
    with pytest.raises(errors.Conflict):
        drive.write_file(alice, "/d", b"x")
    drive.write_file(alice, "/f", b"x")
    with pytest.raises(errors.Conflict):
        drive.mkdir(alice, "/f/sub")
    with pytest.raises(errors.NotFound):
        drive.stat(alice, "/nope")
    with pytest.raises(errors.PermissionDenied):
        drive.delete(alice, "/")


@pytest.mark.parametrize("path", ["/../etc", "/a/../../b", "/./x", "/a\x00b", "/a\\b", "/\x01"])
def test_hostile_paths_rejected(drive, alice, path):
    with pytest.raises(errors.BadRequest):
        drive.write_file(alice, path, b"x")
    with pytest.raises(errors.BadRequest):
        drive.stat(alice, path)


def test_accounts_are_isolated(drive, alice, bob):
    drive.write_file(alice, "/secret", b"alice only")
    with pytest.raises(errors.NotFound):
        drive.stat(bob, "/secret")
    assert drive.list_dir(bob, "/") == []
    assert drive.get_dead_props(bob, [drive.stat(alice, "/secret").id]) == {
        drive.stat(alice, "/secret").id: {}
    }
    with pytest.raises(errors.NotFound):
        drive.set_dead_prop(bob, drive.stat(alice, "/secret").id, "{x:}y", b"<v/>")


def test_overwrite_keeps_history_and_etag_changes(drive, alice):
    v1 = drive.write_file(alice, "/f", b"one")
    v2 = drive.write_file(alice, "/f", b"two!")
    assert v1.etag != v2.etag and v1.id == v2.id
    versions = drive.list_versions(alice, "/f")
    assert [v.size for v in versions] == [4, 3] and versions[0].is_current
    assert drive.read_bytes(alice, "/f", version_id=versions[1].id) == b"one"
    restored = drive.restore_version(alice, "/f", versions[1].id)
    assert drive.read_bytes(alice, "/f") == b"one" and restored.etag not in (v1.etag, v2.etag)
    assert len(drive.list_versions(alice, "/f")) == 3
    assert drive.usage(alice).used == 3


def test_conditional_writes(drive, alice):
    v1 = drive.write_file(alice, "/f", b"one")
    with pytest.raises(errors.PreconditionFailed):
        drive.write_file(alice, "/f", b"x", create_only=True)
    with pytest.raises(errors.PreconditionFailed):
        drive.write_file(alice, "/new", b"x", expected_etag="*")
    # compare-and-swap at commit time: two uploads started from v1, the first commit wins
    up1 = drive.begin_upload(alice, "/f", expected_etag=v1.etag)
    up2 = drive.begin_upload(alice, "/f", expected_etag=v1.etag)
    up1.write(b"first")
    up2.write(b"second")
    up1.commit()
    with pytest.raises(errors.PreconditionFailed):
        up2.commit()
    assert drive.read_bytes(alice, "/f") == b"first"


def test_cut_off_upload_keeps_previous_version(drive, alice):
    drive.write_file(alice, "/f", b"old content")
    up = drive.begin_upload(alice, "/f", declared_size=1000)
    up.write(b"x" * 500)
    with pytest.raises(errors.IncompleteUpload):
        up.commit(expected_size=1000)
    assert drive.read_bytes(alice, "/f") == b"old content"
    assert len(drive.list_versions(alice, "/f")) == 1


def test_concurrent_writers_both_land_in_history(drive, alice):
    drive.write_file(alice, "/f", b"base")
    barrier = threading.Barrier(4)
    errs = []

    def writer(i: int) -> None:
        try:
            barrier.wait()
            drive.write_file(alice, "/f", f"writer {i}".encode())
        except Exception as exc:  # pragma: no cover - reported below
            errs.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errs == []
    versions = drive.list_versions(alice, "/f")
    assert len(versions) == 5
    assert drive.read_bytes(alice, "/f") == drive.read_bytes(alice, "/f", version_id=versions[0].id)


def test_quota(drive):
    p = drive.create_account("q", "x", quota=1000)
    drive.write_file(p, "/a", b"x" * 600)
    with pytest.raises(errors.QuotaExceeded):
        drive.write_file(p, "/b", b"x" * 600)
    with pytest.raises(errors.QuotaExceeded):  # a big body is refused before it arrives
        drive.begin_upload(p, "/b", declared_size=PRECHECK_MIN + 1)
    small = drive.begin_upload(p, "/b", declared_size=600)  # a small one at its commit
    small.write(b"x" * 600)
    with pytest.raises(errors.QuotaExceeded):
        small.commit()
    up = drive.begin_upload(p, "/b")
    with pytest.raises(errors.QuotaExceeded):  # refused as soon as the stream passes the limit
        up.write(b"x" * 600)
    assert drive.try_stat(p, "/b") is None
    drive.write_file(p, "/a", b"x" * 900)  # overwrite counts the difference
    assert drive.usage(p).used == 900
    drive.delete(p, "/a")
    assert drive.usage(p).used == 0
    drive.write_file(p, "/c", b"x" * 600)
    with pytest.raises(errors.QuotaExceeded):
        drive.copy(p, "/c", "/c2")
    assert drive.try_stat(p, "/c2") is None
    [item] = drive.list_trash(p)
    drive.write_file(p, "/d", b"x" * 300)
    with pytest.raises(errors.QuotaExceeded):  # restoring 900 bytes would pass the quota
        drive.restore_trash(p, item.id)


def test_file_size_limit(drive, alice):
    drive.max_file_size = 100
    with pytest.raises(errors.FileTooLarge):
        drive.begin_upload(alice, "/big", declared_size=101)
    up = drive.begin_upload(alice, "/big")
    with pytest.raises(errors.FileTooLarge):
        up.write(b"x" * 101)
    assert drive.try_stat(alice, "/big") is None


def test_move_and_copy(drive, alice):
    drive.mkdir(alice, "/a")
    drive.mkdir(alice, "/a/b")
    drive.write_file(alice, "/a/b/f", b"data", mtime=1234)
    drive.set_dead_prop(alice, drive.stat(alice, "/a/b/f").id, "{urn:x}p", b"<v>1</v>")
    assert drive.copy(alice, "/a", "/c") is False
    assert drive.read_bytes(alice, "/c/b/f") == b"data"
    copied = drive.stat(alice, "/c/b/f")
    assert copied.mtime == 1234
    assert drive.get_dead_props(alice, [copied.id])[copied.id] == {"{urn:x}p": b"<v>1</v>"}
    assert drive.usage(alice).used == 8
    with pytest.raises(errors.Conflict):
        drive.move(alice, "/a", "/a/b/inside")
    with pytest.raises(errors.PreconditionFailed):
        drive.move(alice, "/a", "/c", overwrite=False)
    assert drive.move(alice, "/a", "/c", overwrite=True) is True
    assert drive.try_stat(alice, "/a") is None
    assert drive.read_bytes(alice, "/c/b/f") == b"data"
    assert drive.usage(alice).used == 4  # the replaced /c went to the trash
    assert [t.path for t in drive.list_trash(alice)] == ["/c"]
    with pytest.raises(errors.ParentNotFound):
        drive.move(alice, "/c", "/nope/c")


def test_copy_shares_blocks(drive, alice):
    data = os.urandom(3 << 20)
    drive.write_file(alice, "/big", data)
    with drive.db.read() as s:
        before = s.scalar(select(func.count()).select_from(Block))
    drive.copy(alice, "/big", "/big2")
    with drive.db.read() as s:
        assert s.scalar(select(func.count()).select_from(Block)) == before
    assert drive.read_bytes(alice, "/big2") == data


def test_trash_round_trip_of_a_folder(drive, alice):
    drive.mkdir(alice, "/t")
    drive.mkdir(alice, "/t/sub")
    drive.write_file(alice, "/t/sub/f", b"abc")
    drive.delete(alice, "/t")
    assert drive.try_stat(alice, "/t") is None and drive.usage(alice).used == 0
    [item] = drive.list_trash(alice)
    assert item.path == "/t" and item.size == 3 and item.is_dir
    drive.mkdir(alice, "/t")  # the name is taken meanwhile
    restored = drive.restore_trash(alice, item.id)
    assert restored.path == "/t (restored)"
    assert drive.read_bytes(alice, "/t (restored)/sub/f") == b"abc"
    assert drive.usage(alice).used == 3
    drive.delete(alice, "/t (restored)")
    assert drive.purge_trash(alice) == 1
    assert drive.list_trash(alice) == []


def test_journal_in_commit_order(drive, alice):
    drive.mkdir(alice, "/j")
    drive.write_file(alice, "/j/f", b"1")
    drive.write_file(alice, "/j/f", b"2")
    drive.move(alice, "/j/f", "/j/g")
    drive.delete(alice, "/j/g")
    with drive.db.read() as s:
        rows = s.execute(
            select(Change.seq, Change.kind, Change.path, Change.from_path)
            .where(Change.user_id == alice.user_id)
            .order_by(Change.seq)
        ).all()
    assert [(r.seq, r.kind, r.path, r.from_path) for r in rows] == [
        (1, "created", "/j", None),
        (2, "created", "/j/f", None),
        (3, "updated", "/j/f", None),
        (4, "moved", "/j/g", "/j/f"),
        (5, "deleted", "/j/g", None),
    ]


def test_dead_properties(drive, alice):
    node = drive.write_file(alice, "/f", b"x")
    drive.set_dead_prop(alice, node.id, "{urn:a}one", b"<a/>")
    drive.set_dead_prop(alice, node.id, "{urn:a}one", b"<b/>")
    drive.set_dead_prop(alice, node.id, "{urn:a}two", b"<c/>")
    assert drive.get_dead_props(alice, [node.id])[node.id] == {
        "{urn:a}one": b"<b/>",
        "{urn:a}two": b"<c/>",
    }
    drive.set_dead_prop(alice, node.id, "{urn:a}one", None)
    assert list(drive.get_dead_props(alice, [node.id])[node.id]) == ["{urn:a}two"]


def test_unicode_and_special_names(drive, alice):
    for name in ["héllo wörld.txt", "日本語", "a#b%c&d+e", " lead space", "._x", ".DS_Store"]:
        drive.write_file(alice, f"/{name}", name.encode())
        assert drive.read_bytes(alice, f"/{name}") == name.encode()
