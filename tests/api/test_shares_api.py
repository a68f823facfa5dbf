"""``/api/v1/shares`` against the real server: create, list, change, revoke and decline a
user share; what strangers get; the recipient's view of the share and its rights (issue 10)."""

from __future__ import annotations

import jsonschema
import pytest
import requests

USERS = {"alice": "alice-pw", "bob": "bob-pw", "carol": "carol-pw"}
JSON = {"Content-Type": "application/json"}
SHARE_KEYS = {
    "id",
    "owner",
    "user",
    "path",
    "name",
    "type",
    "permissions",
    "permission_names",
    "mount_path",
    "created",
}


@pytest.fixture
def srv(live_server_factory):
    """A server with alice (owner), bob and carol."""
    return live_server_factory(users=USERS)


def client(srv, login: str) -> requests.Session:
    s = requests.Session()
    s.auth = srv.auth(login)
    s.base = f"{srv.url}/api/v1"  # type: ignore[attr-defined]
    return s


@pytest.fixture
def alice(srv):
    return client(srv, "alice")


@pytest.fixture
def bob(srv):
    return client(srv, "bob")


@pytest.fixture
def carol(srv):
    return client(srv, "carol")


def call(s, method: str, path: str, **kw) -> requests.Response:
    return s.request(method, f"{s.base}{path}", **kw)


def upload(s, path: str, data: bytes) -> requests.Response:
    return call(s, "POST", "/files/upload", params={"path": path, "uploadType": "media"}, data=data)


def mkdir(s, path: str) -> None:
    r = call(s, "POST", "/files/create_folder", json={"path": path})
    assert r.status_code == 201, r.text


def share(s, path: str, user: str, permissions=None) -> requests.Response:
    body: dict = {"path": path, "user": user}
    if permissions is not None:
        body["permissions"] = permissions
    return call(s, "POST", "/shares", json=body)


def names(s, folder: str = "/") -> list[str]:
    r = call(s, "GET", "/files/list", params={"path": folder})
    assert r.status_code == 200, r.text
    return [e["name"] for e in r.json()["entries"]]


def conforms(s, resp: requests.Response, path: str, method: str) -> None:
    """The body matches what /api/v1/openapi.json publishes for that operation and status."""
    doc = call(s, "GET", "/openapi.json").json()
    responses = doc["paths"][path][method]["responses"]
    schema = responses[str(resp.status_code)]["content"]["application/json"]["schema"]
    jsonschema.validate(resp.json(), {**schema, "components": doc["components"]})


def error(resp: requests.Response, status: int) -> str:
    assert resp.status_code == status, (resp.status_code, resp.text)
    body = resp.json()
    assert set(body) == {"error"} and body["error"]["message"], body
    return body["error"]["message"]


def test_create_answers_201_with_the_share_and_location(srv, alice, bob):
    mkdir(alice, "/Docs")
    assert upload(alice, "/Docs/a.txt", b"hello").status_code == 201
    r = share(alice, "/Docs", "bob")  # no permissions: read
    assert r.status_code == 201, r.text
    body = r.json()
    assert set(body) == SHARE_KEYS
    assert isinstance(body["id"], int)
    assert body["owner"] == "alice" and body["user"] == "bob"
    assert body["path"] == "/Docs" and body["name"] == "Docs" and body["type"] == "folder"
    assert body["permissions"] == 1 and body["permission_names"] == ["read"]
    assert body["mount_path"] == "/Docs"
    assert body["created"].endswith("Z") and body["created"][:2] == "20"
    conforms(alice, r, "/api/v1/shares", "post")

    location = r.headers["Location"]
    assert location.endswith(f"/api/v1/shares/{body['id']}")
    again = alice.get(location if location.startswith("http") else srv.url + location)
    assert again.status_code == 200 and again.json() == body
    conforms(alice, again, "/api/v1/shares/{id}", "get")

    # a file, with the rights named
    r = share(alice, "/Docs/a.txt", "bob", ["read", "write"])
    assert r.status_code == 201, r.text
    f = r.json()
    assert f["type"] == "file" and f["name"] == "a.txt" and f["path"] == "/Docs/a.txt"
    assert f["permissions"] == 3 and f["permission_names"] == ["read", "write"]


def test_create_errors(alice, bob):
    mkdir(alice, "/Docs")
    assert share(alice, "/Docs", "bob", 1).status_code == 201
    assert "already" in error(share(alice, "/Docs", "bob", 3), 409)
    error(share(alice, "/Docs", "nobody"), 404)
    error(share(alice, "/Missing", "bob"), 404)
    error(share(alice, "/Docs", "alice"), 400)  # oneself
    error(share(alice, "/", "bob"), 400)  # the root
    # bad rights: no read, re-sharing, unknown names, wrong types
    for bad in (0, 2, 16, 17, 1 << 40, -1, True, "read", "3", 1.5, {"read": True}, ["read", "x"],
                ["read", 1], [], ["share"]):  # fmt: skip
        error(share(alice, "/Docs", "carol", bad), 400)
    # bad bodies
    error(call(alice, "POST", "/shares", json={"user": "carol"}), 400)
    error(call(alice, "POST", "/shares", json={"path": "/Docs"}), 400)
    error(call(alice, "POST", "/shares", json={"path": "/Docs", "user": 7}), 400)
    error(call(alice, "POST", "/shares", json={"path": ["/Docs"], "user": "carol"}), 400)
    error(call(alice, "POST", "/shares", json=["/Docs", "carol"]), 400)
    error(call(alice, "POST", "/shares", data=b"{not json", headers=JSON), 400)
    # nothing of that made a share
    given = call(alice, "GET", "/shares").json()["shares"]
    assert [(s["user"], s["path"], s["permissions"]) for s in given] == [("bob", "/Docs", 1)]


def test_recipient_cannot_reshare(alice, bob):
    mkdir(alice, "/Docs")
    assert share(alice, "/Docs", "bob", 15).status_code == 201
    error(share(bob, "/Docs", "carol"), 403)


def test_list_given_and_shared_with_me(alice, bob, carol):
    mkdir(alice, "/Docs")
    mkdir(alice, "/Pics")
    mkdir(carol, "/Docs")  # carol's own folder takes the name: her mount is "/Docs (2)"
    d_bob = share(alice, "/Docs", "bob").json()
    d_carol = share(alice, "/Docs", "carol", ["read", "write", "create", "delete"]).json()
    p_bob = share(alice, "/Pics", "bob", 5).json()
    assert d_carol["mount_path"] == "/Docs (2)" and d_carol["path"] == "/Docs"

    r = call(alice, "GET", "/shares")
    assert r.status_code == 200
    conforms(alice, r, "/api/v1/shares", "get")
    assert [s["id"] for s in r.json()["shares"]] == [d_bob["id"], d_carol["id"], p_bob["id"]]
    only_docs = call(alice, "GET", "/shares", params={"path": "/Docs"}).json()["shares"]
    assert sorted(s["user"] for s in only_docs) == ["bob", "carol"]
    only_pics = call(alice, "GET", "/shares", params={"path": "Pics"}).json()["shares"]
    assert [s["id"] for s in only_pics] == [p_bob["id"]]
    error(call(alice, "GET", "/shares", params={"path": "/Nope"}), 404)
    assert call(alice, "GET", "/shares", params={"shared_with_me": "true"}).json() == {"shares": []}

    received = call(bob, "GET", "/shares", params={"shared_with_me": "true"})
    assert received.status_code == 200
    conforms(bob, received, "/api/v1/shares", "get")
    got = {s["id"]: s for s in received.json()["shares"]}
    assert set(got) == {d_bob["id"], p_bob["id"]}
    assert got[p_bob["id"]]["owner"] == "alice" and got[p_bob["id"]]["user"] == "bob"
    assert got[p_bob["id"]]["path"] == "/Pics" and got[p_bob["id"]]["permissions"] == 5
    assert got[p_bob["id"]]["permission_names"] == ["read", "create"]
    assert call(bob, "GET", "/shares").json() == {"shares": []}  # bob gave none

    mine = call(carol, "GET", "/shares", params={"shared_with_me": "1"}).json()["shares"]
    assert len(mine) == 1 and mine[0]["path"] == "/Docs (2)" == mine[0]["mount_path"]
    assert mine[0]["permissions"] == 15
    # the recipient sees its own path, the owner's: the owner's
    assert call(carol, "GET", f"/shares/{d_carol['id']}").json()["path"] == "/Docs (2)"
    assert call(alice, "GET", f"/shares/{d_carol['id']}").json()["path"] == "/Docs"
    error(call(carol, "GET", "/shares", params={"shared_with_me": "maybe"}), 400)


def test_patch_changes_permissions_owner_only(alice, bob, carol):
    mkdir(alice, "/Docs")
    sid = share(alice, "/Docs", "bob").json()["id"]
    r = call(alice, "PATCH", f"/shares/{sid}", json={"permissions": ["read", "create"]})
    assert r.status_code == 200, r.text
    assert r.json()["permissions"] == 5 and r.json()["permission_names"] == ["read", "create"]
    conforms(alice, r, "/api/v1/shares/{id}", "patch")
    r = call(alice, "PATCH", f"/shares/{sid}", json={"permissions": 3})
    assert r.status_code == 200 and r.json()["permissions"] == 3
    assert call(bob, "GET", f"/shares/{sid}").json()["permissions"] == 3
    for bad in ({}, {"permissions": None}, {"permissions": 0}, {"permissions": 16},
                {"permissions": "rw"}, {"permissions": ["read", "own"]}):  # fmt: skip
        error(call(alice, "PATCH", f"/shares/{sid}", json=bad), 400)
    error(call(alice, "PATCH", f"/shares/{sid}", data=b"[", headers=JSON), 400)
    assert call(alice, "GET", f"/shares/{sid}").json()["permissions"] == 3
    # the recipient cannot raise its own rights; a stranger does not learn the share exists
    assert call(bob, "PATCH", f"/shares/{sid}", json={"permissions": 15}).status_code in (403, 404)
    error(call(carol, "PATCH", f"/shares/{sid}", json={"permissions": 15}), 404)
    assert call(alice, "GET", f"/shares/{sid}").json()["permissions"] == 3
    error(call(alice, "PATCH", "/shares/987654", json={"permissions": 1}), 404)


def test_strangers_get_404_on_someone_elses_share(alice, bob, carol):
    mkdir(alice, "/Docs")
    sid = share(alice, "/Docs", "bob").json()["id"]
    error(call(carol, "GET", f"/shares/{sid}"), 404)
    error(call(carol, "PATCH", f"/shares/{sid}", json={"permissions": 15}), 404)
    error(call(carol, "DELETE", f"/shares/{sid}"), 404)
    assert call(carol, "GET", "/shares").json() == {"shares": []}
    assert call(carol, "GET", "/shares", params={"shared_with_me": "true"}).json() == {"shares": []}
    # the share is untouched
    assert call(bob, "GET", f"/shares/{sid}").json()["permissions"] == 1
    assert "Docs" in names(bob)
    error(call(alice, "GET", "/shares/987654"), 404)
    error(call(alice, "DELETE", "/shares/987654"), 404)
    huge = 10**28  # past any database integer: still a 404, never a 500
    error(call(alice, "GET", f"/shares/{huge}"), 404)
    error(call(alice, "PATCH", f"/shares/{huge}", json={"permissions": 1}), 404)
    error(call(alice, "DELETE", f"/shares/{huge}"), 404)
    assert call(alice, "GET", "/shares/abc").status_code == 404  # not a share id


def test_owner_revokes_and_recipient_declines(alice, bob, carol):
    mkdir(alice, "/Docs")
    assert upload(alice, "/Docs/a.txt", b"keep me").status_code == 201
    to_bob = share(alice, "/Docs", "bob").json()["id"]
    to_carol = share(alice, "/Docs", "carol", 3).json()["id"]
    assert "Docs" in names(bob) and "Docs" in names(carol)

    # the recipient declines: its mount goes, the owner's files stay
    r = call(bob, "DELETE", f"/shares/{to_bob}")
    assert r.status_code == 204 and r.content == b""
    assert "Docs" not in names(bob)
    assert call(bob, "GET", "/shares", params={"shared_with_me": "true"}).json()["shares"] == []
    error(call(alice, "GET", f"/shares/{to_bob}"), 404)
    assert names(alice, "/Docs") == ["a.txt"]

    # the owner revokes
    assert call(alice, "DELETE", f"/shares/{to_carol}").status_code == 204
    assert "Docs" not in names(carol)
    error(call(carol, "GET", f"/shares/{to_carol}"), 404)
    error(call(alice, "DELETE", f"/shares/{to_carol}"), 404)  # gone
    assert call(alice, "GET", "/shares").json() == {"shares": []}
    dl = call(alice, "GET", "/files/download", params={"path": "/Docs/a.txt"})
    assert dl.status_code == 200 and dl.content == b"keep me"
    # and it can be shared again
    assert share(alice, "/Docs", "bob").status_code == 201


def test_recipient_sees_the_mount_and_its_rights_hold(alice, bob, carol):
    mkdir(alice, "/Docs")
    assert upload(alice, "/Docs/a.txt", b"from alice").status_code == 201
    assert share(alice, "/Docs", "bob", ["read"]).status_code == 201
    assert share(alice, "/Docs", "carol", ["read", "write", "create", "delete"]).status_code == 201

    listing = call(bob, "GET", "/files/list", params={"path": "/"})
    assert listing.status_code == 200, listing.text
    entry = {e["name"]: e for e in listing.json()["entries"]}["Docs"]
    assert entry["is_dir"] is True and entry["path"] == "/Docs"
    assert "write" not in entry["permissions"] and "create" not in entry["permissions"]
    assert names(bob, "/Docs") == ["a.txt"]
    dl = call(bob, "GET", "/files/download", params={"path": "/Docs/a.txt"})
    assert dl.status_code == 200 and dl.content == b"from alice"

    # read-only: 403 on an upload, a new one or over an existing file; nothing changes
    assert upload(bob, "/Docs/new.txt", b"bob was here").status_code == 403
    assert upload(bob, "/Docs/a.txt", b"bob was here").status_code == 403
    assert names(alice, "/Docs") == ["a.txt"]
    dl = call(alice, "GET", "/files/download", params={"path": "/Docs/a.txt"})
    assert dl.content == b"from alice"

    # read-write: the upload lands in the owner's folder, charged to the owner's quota
    before_alice = call(alice, "GET", "/account").json()["used"]
    before_carol = call(carol, "GET", "/account").json()["used"]
    r = upload(carol, "/Docs/c.txt", b"c" * 1000)
    assert r.status_code == 201, r.text
    assert sorted(names(alice, "/Docs")) == ["a.txt", "c.txt"]
    dl = call(alice, "GET", "/files/download", params={"path": "/Docs/c.txt"})
    assert dl.content == b"c" * 1000
    assert sorted(names(bob, "/Docs")) == ["a.txt", "c.txt"]
    assert call(alice, "GET", "/account").json()["used"] == before_alice + 1000
    assert call(carol, "GET", "/account").json()["used"] == before_carol


def test_account_states_the_quota_rule(alice):
    r = call(alice, "GET", "/account")
    assert r.status_code == 200
    assert r.json()["quota_rule"] == (
        "files in folders shared with you count against the owner's quota; "
        "files you share count against yours"
    )
    conforms(alice, r, "/api/v1/account", "get")


def test_shares_need_authentication(srv):
    r = requests.get(f"{srv.url}/api/v1/shares")
    assert r.status_code == 401
    r = requests.post(f"{srv.url}/api/v1/shares", json={"path": "/x", "user": "bob"})
    assert r.status_code == 401
