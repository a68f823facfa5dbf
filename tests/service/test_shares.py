"""User shares in the service: the recipient's view, the rights on every operation, the journals
of both sides, mount points, and that nothing outside the shared node is reachable."""

from __future__ import annotations

import pytest

from davdrive import errors
from davdrive.service.access import Perm
from davdrive.service.changes import Changes
from davdrive.service.drive import Drive
from davdrive.service.types import Principal

R, W, C, D = Perm.READ, Perm.WRITE, Perm.CREATE, Perm.DELETE
ALL = int(R | W | C | D)


@pytest.fixture
def carol(drive: Drive) -> Principal:
    return drive.create_account("carol", "x")


@pytest.fixture
def projects(drive: Drive, alice: Principal) -> str:
    """alice's /Work/Projects with a file and a sub-folder, and a private sibling."""
    drive.mkdir(alice, "/Work")
    drive.mkdir(alice, "/Work/Projects")
    drive.mkdir(alice, "/Work/Projects/sub")
    drive.write_file(alice, "/Work/Projects/plan.txt", b"the plan")
    drive.write_file(alice, "/Work/secret.txt", b"private")
    return "/Work/Projects"


def _kinds(drive: Drive, p: Principal, after: str) -> list[tuple[str, str]]:
    changes, _cursor, _more = Changes(drive).since(p, after)
    return [(c.kind, c.path) for c in changes]


def test_a_share_appears_at_the_recipients_root_and_reads_the_owners_file(
    drive: Drive, alice: Principal, bob: Principal, projects: str
) -> None:
    share = drive.shares.create(alice, projects, "bob", int(R))
    assert share.mount_path == "/Projects" and share.recipient == "bob"
    assert [m.name for m in drive.list_dir(bob, "/")] == ["Projects"]
    mount = drive.stat(bob, "/Projects")
    assert mount.is_dir and mount.path == "/Projects" and mount.perms == int(R)
    assert drive.read_bytes(bob, "/Projects/plan.txt") == b"the plan"
    members = drive.list_dir(bob, "/Projects")
    assert [(m.name, m.path, m.perms) for m in members] == [
        ("plan.txt", "/Projects/plan.txt", int(R)),
        ("sub", "/Projects/sub", int(R)),
    ]
    # the owner's view is unchanged, and lists the share
    assert [s.recipient for s in drive.shares.list_given(alice)] == ["bob"]
    assert drive.shares.list_given(alice)[0].path == projects
    assert drive.shares.list_received(bob)[0].path == "/Projects"


def test_a_read_only_share_refuses_every_write_and_nothing_changes(
    drive: Drive, alice: Principal, bob: Principal, projects: str
) -> None:
    drive.shares.create(alice, projects, "bob", int(R))
    before = drive.list_tree(alice, "/")[0]
    attempts = [
        lambda: drive.write_file(bob, "/Projects/plan.txt", b"mine"),
        lambda: drive.write_file(bob, "/Projects/new.txt", b"mine"),
        lambda: drive.mkdir(bob, "/Projects/new"),
        lambda: drive.delete(bob, "/Projects/plan.txt"),
        lambda: drive.move(bob, "/Projects/plan.txt", "/Projects/renamed.txt"),
        lambda: drive.copy(bob, "/Projects/plan.txt", "/Projects/copy.txt"),
        lambda: drive.set_mtime(bob, "/Projects/plan.txt", 1000.0),
        lambda: drive.set_dead_prop(bob, drive.stat(bob, "/Projects/plan.txt").id, "{x:}y", b"z"),
        lambda: drive.restore_version(
            bob, "/Projects/plan.txt", drive.stat(bob, "/Projects/plan.txt").version_id
        ),
    ]
    for attempt in attempts:
        with pytest.raises(errors.PermissionDenied):
            attempt()
    assert drive.list_tree(alice, "/")[0] == before
    assert drive.read_bytes(alice, "/Work/Projects/plan.txt") == b"the plan"


def test_a_read_write_share_writes_the_owners_tree_and_charges_the_owner(
    drive: Drive, alice: Principal, bob: Principal, projects: str
) -> None:
    drive.shares.create(alice, projects, "bob", ALL)
    used_alice, used_bob = drive.usage(alice).used, drive.usage(bob).used
    info = drive.write_file(bob, "/Projects/sub/from-bob.txt", b"hello from bob")
    assert info.path == "/Projects/sub/from-bob.txt" and info.perms == ALL
    assert drive.read_bytes(alice, "/Work/Projects/sub/from-bob.txt") == b"hello from bob"
    assert drive.usage(alice).used == used_alice + len(b"hello from bob")
    assert drive.usage(bob).used == used_bob
    drive.write_file(bob, "/Projects/plan.txt", b"the new plan")
    versions = drive.list_versions(alice, "/Work/Projects/plan.txt")
    assert [v.author_login for v in versions] == ["bob", "alice"]
    drive.mkdir(bob, "/Projects/made-by-bob")
    drive.move(bob, "/Projects/sub/from-bob.txt", "/Projects/made-by-bob/moved.txt")
    assert drive.read_bytes(alice, "/Work/Projects/made-by-bob/moved.txt") == b"hello from bob"
    drive.delete(bob, "/Projects/made-by-bob")
    trash = drive.list_trash(alice)
    assert [(t.name, t.deleted_by) for t in trash] == [("made-by-bob", "bob")]
    assert drive.list_trash(bob) == []


def test_the_recipient_never_reaches_outside_the_shared_node(
    drive: Drive, alice: Principal, bob: Principal, carol: Principal, projects: str
) -> None:
    drive.shares.create(alice, projects, "bob", ALL)
    secret = drive.stat(alice, "/Work/secret.txt")
    # paths: dot segments are refused, other names are bob's own tree
    for path in ("/Projects/../secret.txt", "/Work/secret.txt", "/secret.txt"):
        with pytest.raises((errors.NotFound, errors.BadRequest)):
            drive.read_bytes(bob, path)
    # ids: a revision or a node of alice's outside the share
    with pytest.raises(errors.NotFound):
        drive.open_version(bob, secret.version_id)
    assert drive.get_dead_props(bob, [secret.id]) == {secret.id: {}}
    with pytest.raises(errors.NotFound):
        drive.set_dead_prop(bob, secret.id, "{x:}y", b"z")
    # destinations: moving out of the share into bob's own files is not a server-side move
    with pytest.raises(errors.OtherTree):
        drive.move(bob, "/Projects/plan.txt", "/stolen.txt")
    with pytest.raises(errors.OtherTree):
        drive.copy(bob, "/Projects/plan.txt", "/stolen.txt")
    assert drive.try_stat(bob, "/stolen.txt") is None
    # error messages never name alice's folders above the share
    with pytest.raises(errors.NotFound) as missing:
        drive.stat(bob, "/Projects/nope.txt")
    assert "Work" not in str(missing.value) and "/Projects/nope.txt" in str(missing.value)
    # a third account sees nothing of it
    assert drive.list_dir(carol, "/") == []
    with pytest.raises(errors.NotFound):
        drive.open_version(carol, drive.stat(alice, "/Work/Projects/plan.txt").version_id)


def test_journals_of_owner_and_recipient_both_hear_changes_inside_the_share(
    drive: Drive, alice: Principal, bob: Principal, projects: str
) -> None:
    feed = Changes(drive)
    start_bob = feed.latest(bob)
    drive.shares.create(alice, projects, "bob", ALL)
    start_alice = feed.latest(alice)
    drive.write_file(alice, "/Work/Projects/a.txt", b"a")
    drive.write_file(alice, "/Work/secret2.txt", b"not shared")
    drive.write_file(bob, "/Projects/b.txt", b"b")
    drive.move(alice, "/Work/Projects/a.txt", "/Work/a-out.txt")
    drive.move(alice, "/Work/a-out.txt", "/Work/Projects/sub/a-in.txt")
    assert _kinds(drive, bob, start_bob) == [
        ("shared", "/Projects"),
        ("created", "/Projects/a.txt"),
        ("created", "/Projects/b.txt"),
        ("deleted", "/Projects/a.txt"),
        ("created", "/Projects/sub/a-in.txt"),
    ]
    assert ("created", "/Work/Projects/b.txt") in _kinds(drive, alice, start_alice)
    # the owner renames the shared folder: the recipient's view does not change
    before = feed.latest(bob)
    drive.move(alice, "/Work/Projects", "/Work/Renamed")
    assert _kinds(drive, bob, before) == []
    assert drive.read_bytes(bob, "/Projects/b.txt") == b"b"
    drive.write_file(alice, "/Work/Renamed/c.txt", b"c")
    assert _kinds(drive, bob, before) == [("created", "/Projects/c.txt")]


def test_permissions_change_and_revocation_take_effect_on_the_next_call(
    drive: Drive, alice: Principal, bob: Principal, projects: str
) -> None:
    feed = Changes(drive)
    share = drive.shares.create(alice, projects, "bob", int(R))
    start = feed.latest(bob)
    with pytest.raises(errors.PermissionDenied):
        drive.write_file(bob, "/Projects/x.txt", b"x")
    drive.shares.update(alice, share.id, int(R | C))
    drive.write_file(bob, "/Projects/x.txt", b"x")
    with pytest.raises(errors.PermissionDenied):  # create, not write
        drive.write_file(bob, "/Projects/x.txt", b"y")
    drive.shares.delete(alice, share.id)
    with pytest.raises(errors.NotFound):
        drive.stat(bob, "/Projects")
    assert drive.list_dir(bob, "/") == []
    kinds = [k for k, _ in _kinds(drive, bob, start)]
    assert kinds == ["permissions_changed", "created", "unshared"]
    with pytest.raises(errors.NotFound):  # a stranger to the share now
        drive.shares.get(bob, share.id)


def test_mount_points_take_free_names_and_move_like_folders(
    drive: Drive, alice: Principal, bob: Principal, carol: Principal, projects: str
) -> None:
    drive.mkdir(bob, "/Projects")
    drive.mkdir(carol, "/Projects")
    drive.shares.create(carol, "/Projects", "bob", int(R))
    first = drive.shares.create(alice, projects, "bob", int(R))
    assert first.mount_path == "/Projects (3)"
    assert [m.name for m in drive.list_dir(bob, "/")] == [
        "Projects",
        "Projects (2)",
        "Projects (3)",
    ]
    drive.move(bob, "/Projects (3)", "/Projects/from-alice")
    assert drive.read_bytes(bob, "/Projects/from-alice/plan.txt") == b"the plan"
    assert [m.name for m in drive.list_dir(bob, "/Projects")] == ["from-alice"]
    # bob's own folder holding the mount moves: the mount goes along
    drive.move(bob, "/Projects", "/Mine")
    assert drive.read_bytes(bob, "/Mine/from-alice/plan.txt") == b"the plan"
    # a mount point is never replaced, nor does it replace
    with pytest.raises(errors.PreconditionFailed):
        drive.move(bob, "/Projects (2)", "/Mine/from-alice", overwrite=False)
    with pytest.raises(errors.AlreadyExists):
        drive.mkdir(bob, "/Mine/from-alice")
    # bob trashes his folder: the share is not lost, it comes back to the root
    drive.delete(bob, "/Mine")
    assert drive.read_bytes(bob, "/from-alice/plan.txt") == b"the plan"
    # deleting the mount point declines the share; alice's files stay
    drive.delete(bob, "/from-alice")
    assert drive.try_stat(bob, "/from-alice") is None
    assert drive.read_bytes(alice, "/Work/Projects/plan.txt") == b"the plan"
    assert drive.shares.list_given(alice) == []


def test_sharing_rules(drive: Drive, alice: Principal, bob: Principal, projects: str) -> None:
    with pytest.raises(errors.BadRequest):
        drive.shares.create(alice, "/", "bob", int(R))
    with pytest.raises(errors.BadRequest):
        drive.shares.create(alice, projects, "alice", int(R))
    with pytest.raises(errors.NotFound):
        drive.shares.create(alice, projects, "nobody", int(R))
    with pytest.raises(errors.BadRequest):
        drive.shares.create(alice, projects, "bob", int(W))  # no read
    with pytest.raises(errors.BadRequest):
        drive.shares.create(alice, projects, "bob", 31)  # re-sharing
    with pytest.raises(errors.NotFound):
        drive.shares.create(alice, "/Work/nope", "bob", int(R))
    drive.shares.create(alice, projects, "bob", ALL)
    with pytest.raises(errors.AlreadyExists):
        drive.shares.create(alice, projects, "bob", int(R))
    with pytest.raises(errors.PermissionDenied):  # bob cannot re-share alice's folder
        drive.shares.create(bob, "/Projects/sub", "alice", int(R))
    file_share = drive.shares.create(alice, "/Work/secret.txt", "bob", ALL)
    assert file_share.permissions == R | W  # a file has nothing to create or delete
    assert drive.read_bytes(bob, "/secret.txt") == b"private"
    drive.write_file(bob, "/secret.txt", b"edited by bob")
    assert drive.read_bytes(alice, "/Work/secret.txt") == b"edited by bob"


def test_a_trashed_shared_folder_disappears_and_returns_with_its_restore(
    drive: Drive, alice: Principal, bob: Principal, projects: str
) -> None:
    drive.shares.create(alice, projects, "bob", int(R))
    drive.delete(alice, projects)
    assert drive.list_dir(bob, "/") == []
    with pytest.raises(errors.NotFound):
        drive.read_bytes(bob, "/Projects/plan.txt")
    drive.restore_trash(alice, drive.list_trash(alice)[0].id)
    assert drive.read_bytes(bob, "/Projects/plan.txt") == b"the plan"


def test_a_recursive_listing_of_the_recipients_home_includes_its_shares(
    drive: Drive, alice: Principal, bob: Principal, projects: str
) -> None:
    drive.mkdir(bob, "/mine")
    drive.write_file(bob, "/mine/m.txt", b"m")
    drive.write_file(bob, "/zzz.txt", b"z")
    drive.shares.create(alice, projects, "bob", int(R))
    entries, more, _seq = drive.list_tree(bob, "/")
    assert not more
    assert [e.path for e in entries] == [
        "/Projects",
        "/Projects/plan.txt",
        "/Projects/sub",
        "/mine",
        "/mine/m.txt",
        "/zzz.txt",
    ]
    first, more, _ = drive.list_tree(bob, "/", limit=2)
    assert more and [e.path for e in first] == ["/Projects", "/Projects/plan.txt"]
    rest, more, _ = drive.list_tree(bob, "/", after=first[-1].path, limit=10)
    assert not more and [e.path for e in rest][0] == "/Projects/sub"
