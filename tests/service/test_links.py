"""Share links in the service: what each kind may do, that a holder never leaves the link's
node, passwords with their rate limit, expiry, maximum uses and revocation."""

from __future__ import annotations

import base64
import time

import pytest

from davdrive import errors
from davdrive.service.drive import Drive
from davdrive.service.links import TOKEN_BYTES
from davdrive.service.types import Principal


@pytest.fixture
def folder(drive: Drive, alice: Principal) -> str:
    drive.mkdir(alice, "/Work")
    drive.mkdir(alice, "/Work/Pub")
    drive.write_file(alice, "/Work/Pub/a.txt", b"public a")
    drive.write_file(alice, "/Work/secret.txt", b"secret")
    return "/Work/Pub"


def _holder(drive: Drive, alice: Principal, kind: str, path: str = "/Work/Pub", **kw):
    info = drive.links.create(alice, path, kind, **kw)
    return info, drive.links.open(info.token)


def test_tokens_are_long_random_and_url_safe(drive: Drive, alice: Principal, folder: str) -> None:
    tokens = [drive.links.create(alice, folder, "view").token for _ in range(64)]
    assert len(set(tokens)) == len(tokens)
    for token in tokens:
        assert all(c.isalnum() or c in "-_" for c in token)
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        assert len(raw) * 8 >= 128 and len(raw) == TOKEN_BYTES
    # the bits look random: every bit position is set in some tokens and clear in others, and
    # about half of all bits are set (a counter or a timestamp would fail both)
    ints = [int.from_bytes(base64.urlsafe_b64decode(t + "=" * (-len(t) % 4))) for t in tokens]
    bits = TOKEN_BYTES * 8
    for i in range(bits):
        ones = sum((n >> i) & 1 for n in ints)
        assert 0 < ones < len(ints), f"bit {i} never changes"
    share = sum(bin(n).count("1") for n in ints) / (bits * len(ints))
    assert 0.45 < share < 0.55


def test_view_reads_below_the_node_only(drive: Drive, alice: Principal, folder: str) -> None:
    _, link = _holder(drive, alice, "view")
    p = link.principal
    assert p.login.startswith("link-") and "alice" not in p.login
    assert [m.name for m in drive.list_dir(p, "/")] == ["a.txt"]
    assert drive.read_bytes(p, "/a.txt") == b"public a"
    assert drive.stat(p, "/").path == "/"
    for path in ("/../secret.txt", "/Work/secret.txt", "/secret.txt"):
        with pytest.raises((errors.NotFound, errors.BadRequest)):
            drive.read_bytes(p, path)
    secret = drive.stat(alice, "/Work/secret.txt")
    with pytest.raises(errors.NotFound):
        drive.open_version(p, secret.version_id)
    assert drive.get_dead_props(p, [secret.id]) == {secret.id: {}}
    for write in (
        lambda: drive.write_file(p, "/a.txt", b"x"),
        lambda: drive.write_file(p, "/new.txt", b"x"),
        lambda: drive.mkdir(p, "/d"),
        lambda: drive.delete(p, "/a.txt"),
        lambda: drive.delete(p, "/"),
    ):
        with pytest.raises(errors.PermissionDenied):
            write()
    with pytest.raises(errors.PermissionDenied):  # no account behind a link
        drive.shares.create(p, "/a.txt", "bob", 1)


def test_edit_writes_the_owners_files(drive: Drive, alice: Principal, folder: str) -> None:
    _, link = _holder(drive, alice, "edit")
    p = link.principal
    drive.write_file(p, "/a.txt", b"edited")
    drive.mkdir(p, "/sub")
    drive.write_file(p, "/sub/b.txt", b"b")
    assert drive.read_bytes(alice, "/Work/Pub/a.txt") == b"edited"
    assert drive.read_bytes(alice, "/Work/Pub/sub/b.txt") == b"b"
    with pytest.raises(errors.PermissionDenied):  # the link's own node stays
        drive.delete(p, "/")
    with pytest.raises((errors.PermissionDenied, errors.OtherTree, errors.BadRequest)):
        drive.move(p, "/", "/x")


def test_upload_adds_and_lists_but_does_not_overwrite(
    drive: Drive, alice: Principal, folder: str
) -> None:
    _, link = _holder(drive, alice, "upload")
    p = link.principal
    drive.write_file(p, "/new.txt", b"new")
    assert sorted(m.name for m in drive.list_dir(p, "/")) == ["a.txt", "new.txt"]
    with pytest.raises(errors.PermissionDenied):
        drive.write_file(p, "/a.txt", b"overwrite")
    assert drive.read_bytes(alice, "/Work/Pub/a.txt") == b"public a"


def test_drop_renames_on_clash_and_shows_nothing(
    drive: Drive, alice: Principal, folder: str
) -> None:
    _, link = _holder(drive, alice, "drop")
    p = link.principal
    first = drive.write_file(p, "/a.txt", b"dropped 1")
    second = drive.write_file(p, "/a.txt", b"dropped 2")
    assert (first.name, second.name) == ("a (2).txt", "a (3).txt")
    assert drive.read_bytes(alice, "/Work/Pub/a.txt") == b"public a"
    assert drive.read_bytes(alice, "/Work/Pub/a (3).txt") == b"dropped 2"
    for look in (
        lambda: drive.list_dir(p, "/"),
        lambda: drive.read_bytes(p, "/a.txt"),
        lambda: drive.stat(p, "/a.txt"),
    ):
        with pytest.raises(errors.PermissionDenied):
            look()


def test_password_expiry_uses_and_revocation(drive: Drive, alice: Principal, folder: str) -> None:
    info, link = _holder(drive, alice, "view", password="s3cret", max_uses=2)
    assert link.protected and info.has_password
    assert not drive.links.unlock(link, "wrong", "10.0.0.1")
    assert drive.links.unlock(link, "s3cret", "10.0.0.1")
    for _ in range(5):
        drive.links.unlock(link, "wrong", "10.0.0.2")
    with pytest.raises(errors.TooManyRequests):
        drive.links.unlock(link, "s3cret", "10.0.0.2")
    assert drive.links.unlock(link, "s3cret", "10.0.0.3")  # another client is not held back
    drive.links.use(link)
    drive.links.use(link)
    with pytest.raises(errors.NotFound):
        drive.links.use(link)
    with pytest.raises(errors.NotFound):
        drive.links.open(info.token)
    soon = drive.links.create(alice, folder, "view", expires=time.time() + 0.3)
    drive.links.open(soon.token)
    time.sleep(0.4)
    with pytest.raises(errors.NotFound):
        drive.links.open(soon.token)
    live = drive.links.create(alice, folder, "view")
    drive.links.revoke(alice, live.id)
    with pytest.raises(errors.NotFound):
        drive.links.open(live.token)
    assert [i.active for i in drive.links.list(alice)] == [False, False, False]


def test_link_rules(drive: Drive, alice: Principal, bob: Principal, folder: str) -> None:
    with pytest.raises(errors.BadRequest):
        drive.links.create(alice, folder, "everything")
    with pytest.raises(errors.BadRequest):
        drive.links.create(alice, "/Work/secret.txt", "drop")
    with pytest.raises(errors.BadRequest):
        drive.links.create(alice, "/", "view")
    with pytest.raises(errors.BadRequest):
        drive.links.create(alice, folder, "view", expires=time.time() - 5)
    with pytest.raises(errors.BadRequest):
        drive.links.create(alice, folder, "view", max_uses=0)
    info = drive.links.create(alice, folder, "view")
    with pytest.raises(errors.NotFound):  # bob cannot see or revoke alice's links
        drive.links.get(bob, info.id)
    with pytest.raises(errors.NotFound):
        drive.links.revoke(bob, info.id)
    drive.links.open(info.token)
    drive.delete(alice, folder)  # in the trash: the link reaches nothing
    with pytest.raises(errors.NotFound):
        drive.links.open(info.token)
    with pytest.raises(errors.NotFound):
        drive.links.open("x" * 32)


def test_changing_a_links_kind(drive: Drive, alice: Principal, folder: str) -> None:
    info = drive.links.create(alice, folder, "view")
    assert drive.links.update(alice, info.id, kind="upload").kind == "upload"
    holder = drive.links.open(info.token).principal
    drive.write_file(holder, "/new.txt", b"sent")  # the new kind applies at once
    assert drive.read_bytes(alice, "/Work/Pub/new.txt") == b"sent"
    on_file = drive.links.create(alice, "/Work/secret.txt", "view")
    with pytest.raises(errors.BadRequest):  # upload and drop need a folder
        drive.links.update(alice, on_file.id, kind="drop")
    assert drive.links.update(alice, on_file.id, kind="edit").kind == "edit"
