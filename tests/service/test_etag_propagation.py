"""A change below a folder gives it and every folder above it a new ETag (what sync clients
such as Nextcloud's re-list by); siblings keep theirs; a moved node keeps its id and ETag."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from davdrive.service.drive import Drive
from davdrive.service.types import Principal

FOLDERS = ["/", "/a", "/a/b", "/a/b/c", "/side"]


@pytest.fixture
def tree(drive: Drive, alice: Principal) -> Principal:
    for folder in FOLDERS[1:]:
        drive.mkdir(alice, folder)
    drive.write_file(alice, "/a/b/c/f.txt", b"one")
    drive.write_file(alice, "/side/s.txt", b"side")
    return alice


def _etags(drive: Drive, p: Principal) -> dict[str, str]:
    return {f: drive.stat(p, f).etag for f in FOLDERS}


def _restore(d: Drive, p: Principal) -> None:
    d.write_file(p, "/a/b/c/f.txt", b"two")
    d.restore_version(p, "/a/b/c/f.txt", d.list_versions(p, "/a/b/c/f.txt")[-1].id)


CHANGES: dict[str, Callable[[Drive, Principal], object]] = {
    "new file": lambda d, p: d.write_file(p, "/a/b/c/new.txt", b"new"),
    "overwrite": lambda d, p: d.write_file(p, "/a/b/c/f.txt", b"two"),
    "delete": lambda d, p: d.delete(p, "/a/b/c/f.txt"),
    "mkdir": lambda d, p: d.mkdir(p, "/a/b/c/sub"),
    "rename": lambda d, p: d.move(p, "/a/b/c/f.txt", "/a/b/c/g.txt"),
    "restore revision": _restore,
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_a_deep_change_renews_every_ancestor_and_no_sibling(
    drive: Drive, tree: Principal, change: str
) -> None:
    before = _etags(drive, tree)
    CHANGES[change](drive, tree)
    after = _etags(drive, tree)
    for folder in ("/", "/a", "/a/b", "/a/b/c"):
        assert after[folder] != before[folder], (change, folder)
    assert after["/side"] == before["/side"], change


def test_a_move_renews_both_sides_and_keeps_the_moved_nodes_id_and_etag(
    drive: Drive, tree: Principal
) -> None:
    moved = drive.stat(tree, "/a/b/c")
    before = _etags(drive, tree)
    drive.move(tree, "/a/b/c", "/side/c")
    after = drive.stat(tree, "/side/c")
    assert (after.id, after.etag) == (moved.id, moved.etag)
    now = {f: drive.stat(tree, f).etag for f in ("/", "/a", "/a/b", "/side")}
    assert all(now[f] != before[f] for f in now)


def test_a_change_inside_a_share_renews_the_recipients_folders_above_the_mount(
    drive: Drive, tree: Principal, bob: Principal
) -> None:
    drive.shares.create(tree, "/a/b", "bob", 15)
    drive.mkdir(bob, "/mine")
    drive.move(bob, "/b", "/mine/b")
    before = {f: drive.stat(bob, f).etag for f in ("/", "/mine", "/mine/b", "/mine/b/c")}
    drive.write_file(tree, "/a/b/c/from-alice.txt", b"x")
    after = {f: drive.stat(bob, f).etag for f in before}
    assert all(after[f] != before[f] for f in before), (before, after)
