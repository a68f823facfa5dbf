"""User shares over WebDAV against a real server: a permission matrix of methods × principals
(owner, reader, writer, stranger), with the owner's tree checked unchanged after every refused
request; moves out of a share, revocation, and RFC 6578 for the recipient."""

from __future__ import annotations

import pytest
import requests

from davdrive.service.access import Perm
from tests.dav.test_sync_report import parse, report

READ = int(Perm.READ)
EDIT = int(Perm.READ | Perm.WRITE | Perm.CREATE | Perm.DELETE)

PROPPATCH = (
    '<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:z">'
    "<D:set><D:prop><Z:color>red</Z:color></D:prop></D:set></D:propertyupdate>"
)
LOCK = (
    '<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope>'
    "<D:locktype><D:write/></D:locktype><D:owner>t</D:owner></D:lockinfo>"
)


@pytest.fixture
def shared(dav_server):
    """alice's /Team/Docs (a.txt, sub/) shared read-only with bob and read-write with carol;
    dave has no share."""
    d = dav_server.drive
    accounts = dav_server.app.accounts
    accounts.passwords = dict(accounts.passwords)  # the fixture's dict is shared by all tests
    for login in ("carol", "dave"):
        d.create_account(login, "x")
        accounts.passwords[login] = f"{login}-pw"
    alice = d.principal("alice")
    d.mkdir(alice, "/Team")
    d.mkdir(alice, "/Team/Docs")
    d.mkdir(alice, "/Team/Docs/sub")
    d.write_file(alice, "/Team/Docs/a.txt", b"alice's a")
    d.write_file(alice, "/Team/private.txt", b"private")
    d.shares.create(alice, "/Team/Docs", "bob", READ)
    d.shares.create(alice, "/Team/Docs", "carol", EDIT)
    return dav_server


def _call(srv, login: str, method: str, path: str) -> requests.Response:
    url = f"{srv.url}/dav/{login}/{path}"
    headers: dict[str, str] = {}
    data = None
    if method in ("MOVE", "COPY"):
        headers["Destination"] = f"{srv.url}/dav/{login}/Docs/renamed.txt"
    if method == "PROPPATCH":
        data = PROPPATCH
    if method == "LOCK":
        data, headers["Timeout"] = LOCK, "Second-60"
    if method == "PROPFIND":
        headers["Depth"] = "1"
    if method == "PUT":
        data = b"written by " + login.encode()
    return requests.request(
        method, url, data=data, headers=headers, auth=(login, f"{login}-pw"), timeout=30
    )


# method, path in the recipient's view, reader (bob), writer (carol)
MATRIX = [
    ("GET", "Docs/a.txt", 200, 200),
    ("PROPFIND", "Docs/", 207, 207),
    ("PUT", "Docs/a.txt", 403, 204),
    ("PUT", "Docs/new.txt", 403, 201),
    ("MKCOL", "Docs/newdir", 403, 201),
    ("DELETE", "Docs/a.txt", 403, 204),
    ("MOVE", "Docs/a.txt", 403, 201),
    ("COPY", "Docs/a.txt", 403, 201),
    ("PROPPATCH", "Docs/a.txt", 403, 207),
    ("LOCK", "Docs/a.txt", 403, 200),
]


def _alice_tree(srv) -> list[tuple[str, str]]:
    d = srv.drive
    entries = d.list_tree(d.principal("alice"), "/")[0]
    return [(e.path, e.etag) for e in entries]


@pytest.mark.parametrize(("method", "path", "reader", "writer"), MATRIX)
def test_share_permission_matrix(shared, method, path, reader, writer) -> None:
    before = _alice_tree(shared)
    assert _call(shared, "bob", method, path).status_code == reader
    if reader >= 400:
        assert _alice_tree(shared) == before, f"{method} by a reader changed alice's files"
    # a stranger has nothing at that path, and changes nothing of alice's
    before = _alice_tree(shared)
    assert _call(shared, "dave", method, path).status_code in (404, 409, 403)
    assert _alice_tree(shared) == before, f"{method} by a stranger changed alice's files"
    status = _call(shared, "carol", method, path).status_code
    assert status == writer
    if method == "PUT" and path.endswith("a.txt"):
        alice = shared.drive.principal("alice")
        assert shared.drive.read_bytes(alice, "/Team/Docs/a.txt") == b"written by carol"


def test_the_recipients_home_lists_the_share_and_nothing_above_it(shared) -> None:
    r = _call(shared, "bob", "PROPFIND", "")
    assert r.status_code == 207
    assert "/dav/bob/Docs/" in r.text and "Team" not in r.text and "private" not in r.text
    assert _call(shared, "bob", "GET", "Docs/../private.txt").status_code in (400, 404)
    assert _call(shared, "bob", "GET", "private.txt").status_code == 404
    # dave's home lists itself and nothing else (no share is mounted in it)
    assert _call(shared, "dave", "PROPFIND", "").text.count("<D:response>") == 1


def test_moving_out_of_a_share_is_not_done_server_side(shared) -> None:
    before = _alice_tree(shared)
    r = requests.request(
        "MOVE",
        f"{shared.url}/dav/carol/Docs/a.txt",
        headers={"Destination": f"{shared.url}/dav/carol/mine.txt"},
        auth=("carol", "carol-pw"),
        timeout=30,
    )
    assert r.status_code == 502
    assert _alice_tree(shared) == before
    assert _call(shared, "carol", "GET", "mine.txt").status_code == 404


def test_renaming_and_deleting_the_mount_point(shared) -> None:
    r = requests.request(
        "MOVE",
        f"{shared.url}/dav/bob/Docs",
        headers={"Destination": f"{shared.url}/dav/bob/From%20alice"},
        auth=("bob", "bob-pw"),
        timeout=30,
    )
    assert r.status_code == 201, r.text
    assert _call(shared, "bob", "GET", "From%20alice/a.txt").content == b"alice's a"
    before = _alice_tree(shared)
    assert _call(shared, "bob", "DELETE", "From%20alice").status_code == 204
    assert _call(shared, "bob", "PROPFIND", "From%20alice/").status_code == 404
    assert _alice_tree(shared) == before  # declining deletes nothing of alice's


def test_revocation_takes_effect_on_the_next_request(shared) -> None:
    assert _call(shared, "carol", "GET", "Docs/a.txt").status_code == 200
    d = shared.drive
    alice = d.principal("alice")
    share = next(s for s in d.shares.list_given(alice) if s.recipient == "carol")
    d.shares.delete(alice, share.id)
    assert _call(shared, "carol", "GET", "Docs/a.txt").status_code == 404
    assert _call(shared, "carol", "PUT", "Docs/a.txt").status_code in (403, 409)
    assert d.read_bytes(alice, "/Team/Docs/a.txt") == b"alice's a"


def test_sync_collection_reports_the_owners_changes_to_the_recipient(shared) -> None:
    first = report(shared, "bob", "Docs/")
    assert first.status_code == 207, first.text
    members, token = parse(first)
    assert "/dav/bob/Docs/a.txt" in members
    alice = shared.drive.principal("alice")
    shared.drive.write_file(alice, "/Team/Docs/fresh.txt", b"new")
    shared.drive.write_file(alice, "/Team/private2.txt", b"not shared")
    members, _ = parse(report(shared, "bob", "Docs/", token))
    assert members == {"/dav/bob/Docs/fresh.txt": "present"}


def _lock(srv, login: str, url_path: str) -> requests.Response:
    return requests.request(
        "LOCK",
        f"{srv.url}{url_path}",
        data=LOCK,
        headers={"Timeout": "Second-300"},
        auth=(login, f"{login}-pw"),
        timeout=30,
    )


def test_a_recipients_lock_binds_the_owner_and_the_owners_binds_the_recipient(shared) -> None:
    carol_url, alice_url = "/dav/carol/Docs/a.txt", "/dav/alice/Team/Docs/a.txt"
    got = _lock(shared, "carol", carol_url)
    assert got.status_code == 200, got.text
    token = got.headers["Lock-Token"].strip("<>")
    assert "/dav/carol/Docs/a.txt" in got.text  # the lock root as carol names it
    put = requests.put(f"{shared.url}{alice_url}", data=b"alice", auth=("alice", "alice-pw"))
    assert put.status_code == 423  # carol's lock binds the owner
    seen = requests.request(
        "PROPFIND", f"{shared.url}{alice_url}", headers={"Depth": "0"}, auth=("alice", "alice-pw")
    )
    assert token in seen.text and "/dav/alice/Team/Docs/a.txt" in seen.text
    assert _lock(shared, "alice", alice_url).status_code == 423  # no second exclusive lock
    mine = requests.put(
        f"{shared.url}{carol_url}",
        data=b"carol",
        headers={"If": f"(<{token}>)"},
        auth=("carol", "carol-pw"),
    )
    assert mine.status_code == 204
    # the share ends: carol's lock goes with it
    d = shared.drive
    alice = d.principal("alice")
    share = next(s for s in d.shares.list_given(alice) if s.recipient == "carol")
    d.shares.delete(alice, share.id)
    put = requests.put(f"{shared.url}{alice_url}", data=b"alice", auth=("alice", "alice-pw"))
    assert put.status_code == 204


def test_the_owners_lock_binds_recipients(shared) -> None:
    got = _lock(shared, "alice", "/dav/alice/Team/Docs/a.txt")
    assert got.status_code == 200
    assert _lock(shared, "carol", "/dav/carol/Docs/a.txt").status_code == 423
    put = requests.put(f"{shared.url}/dav/carol/Docs/a.txt", data=b"c", auth=("carol", "carol-pw"))
    assert put.status_code == 423
    seen = requests.request(
        "PROPFIND",
        f"{shared.url}/dav/carol/Docs/a.txt",
        headers={"Depth": "0"},
        auth=("carol", "carol-pw"),
    )
    assert "/dav/carol/Docs/a.txt" in seen.text and "Team" not in seen.text
