"""``/api/v1/links`` against the real server: create each type of share link, list, filter,
change and revoke one; what other users get; the JSON matches the published schema (issue 10)."""

from __future__ import annotations

import re
import time
from datetime import datetime

import jsonschema
import pytest
import requests

USERS = {"alice": "alice-pw", "bob": "bob-pw"}
JSON = {"Content-Type": "application/json"}
LINK_KEYS = {
    "id",
    "type",
    "url",
    "dav_url",
    "token",
    "path",
    "name",
    "item_type",
    "has_password",
    "expires",
    "max_uses",
    "uses",
    "label",
    "created",
    "revoked",
    "active",
}
TOKEN = re.compile(r"^[A-Za-z0-9_-]{22,}$")


@pytest.fixture
def srv(live_server_factory):
    """A server with alice (owner) and bob."""
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
def tree(alice):
    """A folder of alice's: ``<root>/Docs`` and ``<root>/Docs/a.txt``."""
    root = "/Work"
    mkdir(alice, root)
    mkdir(alice, f"{root}/Docs")
    assert upload(alice, f"{root}/Docs/a.txt", b"hello").status_code == 201
    return root


def call(s, method: str, path: str, **kw) -> requests.Response:
    return s.request(method, f"{s.base}{path}", **kw)


def upload(s, path: str, data: bytes) -> requests.Response:
    return call(s, "POST", "/files/upload", params={"path": path, "uploadType": "media"}, data=data)


def mkdir(s, path: str) -> None:
    r = call(s, "POST", "/files/create_folder", json={"path": path})
    assert r.status_code == 201, r.text


def make(s, path: str, kind: str, **settings) -> requests.Response:
    return call(s, "POST", "/links", json={"path": path, "type": kind, **settings})


def made(s, path: str, kind: str, **settings) -> dict:
    r = make(s, path, kind, **settings)
    assert r.status_code == 201, r.text
    return r.json()


_DOC: dict = {}


def conforms(s, resp: requests.Response, path: str, method: str) -> None:
    """The body matches what /api/v1/openapi.json publishes for that operation and status."""
    if not _DOC:
        _DOC.update(call(s, "GET", "/openapi.json").json())
    responses = _DOC["paths"][path][method]["responses"]
    schema = responses[str(resp.status_code)]["content"]["application/json"]["schema"]
    jsonschema.validate(
        resp.json(),
        {**schema, "components": _DOC["components"]},
        format_checker=jsonschema.FormatChecker(),
    )


def error(resp: requests.Response, status: int) -> str:
    assert resp.status_code == status, (resp.status_code, resp.text)
    body = resp.json()
    assert set(body) == {"error"} and body["error"]["message"], body
    return body["error"]["message"]


def parse(ts: str) -> float:
    return datetime.fromisoformat(ts).timestamp()


def test_create_each_type_answers_201_with_the_link_and_location(srv, alice, tree):
    docs, a = f"{tree}/Docs", f"{tree}/Docs/a.txt"
    before = time.time()
    for kind in ("view", "edit", "upload", "drop"):
        r = make(alice, docs, kind)
        assert r.status_code == 201, r.text
        conforms(alice, r, "/api/v1/links", "post")
        body = r.json()
        assert set(body) == LINK_KEYS
        assert isinstance(body["id"], int) and body["type"] == kind
        assert body["path"] == docs and body["name"] == "Docs" and body["item_type"] == "folder"
        assert body["url"] == f"{srv.url}/s/{body['token']}"
        assert body["dav_url"] == f"{srv.url}/s/{body['token']}/dav/"
        assert body["has_password"] is False and body["active"] is True
        assert body["expires"] is None and body["revoked"] is None
        assert body["max_uses"] is None and body["uses"] == 0 and body["label"] is None
        assert body["created"].endswith("Z") and parse(body["created"]) >= before - 5
        location = r.headers["Location"]
        assert location.endswith(f"/api/v1/links/{body['id']}")
        again = alice.get(location if location.startswith("http") else srv.url + location)
        assert again.status_code == 200 and again.json() == body
        conforms(alice, again, "/api/v1/links/{id}", "get")

    # a file: view and edit links, not upload or drop
    for kind in ("view", "edit"):
        body = made(alice, a, kind)
        assert body["item_type"] == "file" and body["name"] == "a.txt" and body["path"] == a
    for kind in ("upload", "drop"):
        assert "folder" in error(make(alice, a, kind), 400)


def test_create_with_settings(alice, tree):
    docs = f"{tree}/Docs"
    body = made(
        alice,
        docs[1:],  # a path without its leading slash is still the caller's
        "view",
        password="s3cret",
        expires="2099-01-02T03:04:05Z",
        max_uses=3,
        label="for the team",
    )
    assert body["path"] == docs
    assert body["has_password"] is True
    assert body["expires"] == "2099-01-02T03:04:05Z"
    assert body["max_uses"] == 3 and body["uses"] == 0 and body["label"] == "for the team"
    assert body["active"] is True
    assert "s3cret" not in str(body) and "argon2" not in str(body)
    assert set(body) == LINK_KEYS  # no password, no hash

    # expires as seconds since the epoch, and as RFC 3339 with an offset or lower-case t/z
    when = int(time.time()) + 3600
    body = made(alice, docs, "edit", expires=when)
    assert parse(body["expires"]) == when
    body = made(alice, docs, "view", expires="2099-01-02T05:04:05+02:00")
    assert body["expires"] == "2099-01-02T03:04:05Z"
    body = made(alice, docs, "view", expires="2099-01-02t03:04:05.5z")
    assert body["expires"] == "2099-01-02T03:04:05.500000Z"


def test_create_errors(alice, bob, tree):
    docs = f"{tree}/Docs"
    error(make(alice, "/", "view"), 400)  # the root
    error(make(alice, f"{tree}/Missing", "view"), 404)
    for kind in ("", "share", "VIEW", None, 1, ["view"]):
        error(make(alice, docs, kind), 400)
    bad_settings = (
        {"expires": "2000-01-01T00:00:00Z"},  # the past
        {"expires": 1000},
        {"expires": "tomorrow"},
        {"expires": "2099-01-01T00:00:00"},  # no offset
        {"expires": "2099-01-01"},
        {"expires": True},
        {"expires": [2099]},
        {"expires": 10**400},  # past any float
        {"expires": 1e300},
        {"expires": "10000-01-01T00:00:00Z"},
        {"max_uses": 0},
        {"max_uses": -1},
        {"max_uses": 1.5},
        {"max_uses": "3"},
        {"max_uses": True},
        {"max_uses": 1 << 40},  # past the database column
        {"label": 7},
        {"label": "x" * 256},
        {"password": ""},
        {"password": 1234},
    )
    for settings in bad_settings:
        error(make(alice, docs, "view", **settings), 400)
    error(call(alice, "POST", "/links", json={"type": "view"}), 400)
    error(call(alice, "POST", "/links", json={"path": docs}), 400)
    error(call(alice, "POST", "/links", json={"path": [docs], "type": "view"}), 400)
    error(call(alice, "POST", "/links", json=[docs, "view"]), 400)
    error(call(alice, "POST", "/links", data=b"{not json", headers=JSON), 400)
    # bob has no such path; nothing of that made a link
    error(make(bob, docs, "view"), 404)
    assert call(alice, "GET", "/links", params={"path": docs}).json() == {"links": []}


def test_links_to_what_was_shared_with_you_are_refused(alice, bob, tree):
    r = call(alice, "POST", "/shares", json={"path": f"{tree}/Docs", "user": "bob"})
    assert r.status_code == 201, r.text
    mount = r.json()["mount_path"]
    error(make(bob, mount, "view"), 403)
    assert call(alice, "DELETE", f"/shares/{r.json()['id']}").status_code == 204


def test_tokens_are_long_url_safe_and_differ(alice, tree):
    links = [made(alice, f"{tree}/Docs", "view") for _ in range(5)]
    tokens = [link["token"] for link in links]
    assert all(TOKEN.match(t) for t in tokens), tokens
    assert len(set(tokens)) == len(tokens)


def test_list_and_filter_by_path(alice, bob, tree):
    docs, a = f"{tree}/Docs", f"{tree}/Docs/a.txt"
    first = made(alice, docs, "view")
    second = made(alice, a, "edit", label="the file")
    third = made(alice, docs, "drop")

    r = call(alice, "GET", "/links")
    assert r.status_code == 200, r.text
    conforms(alice, r, "/api/v1/links", "get")
    ids = [link["id"] for link in r.json()["links"]]
    assert [i for i in ids if i in (first["id"], second["id"], third["id"])] == [
        first["id"],
        second["id"],
        third["id"],
    ]
    assert ids == sorted(ids)  # oldest first
    by_id = {link["id"]: link for link in r.json()["links"]}
    assert by_id[second["id"]] == second

    only_docs = call(alice, "GET", "/links", params={"path": docs})
    assert only_docs.status_code == 200
    conforms(alice, only_docs, "/api/v1/links", "get")
    assert [link["id"] for link in only_docs.json()["links"]] == [first["id"], third["id"]]
    only_a = call(alice, "GET", "/links", params={"path": a[1:]}).json()["links"]
    assert [link["id"] for link in only_a] == [second["id"]]
    error(call(alice, "GET", "/links", params={"path": f"{tree}/Nope"}), 404)
    error(call(alice, "GET", "/links", params={"path": ""}), 400)

    # bob made none, and sees none of alice's
    assert call(bob, "GET", "/links").json() == {"links": []}


def test_patch_settings(alice, tree):
    link = made(alice, f"{tree}/Docs", "view")
    lid = link["id"]

    r = call(alice, "PATCH", f"/links/{lid}", json={"password": "pw-1", "label": "v1"})
    assert r.status_code == 200, r.text
    conforms(alice, r, "/api/v1/links/{id}", "patch")
    body = r.json()
    assert body["has_password"] is True and body["label"] == "v1"
    assert "pw-1" not in str(body) and set(body) == LINK_KEYS
    # what was not named stays; the token never changes
    assert body["token"] == link["token"] and body["expires"] is None

    r = call(alice, "PATCH", f"/links/{lid}", json={"expires": "2098-05-06T07:08:09Z"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["expires"] == "2098-05-06T07:08:09Z"
    assert body["has_password"] is True and body["label"] == "v1"
    r = call(alice, "PATCH", f"/links/{lid}", json={"max_uses": 7})
    assert r.json()["max_uses"] == 7 and r.json()["expires"] == "2098-05-06T07:08:09Z"

    # null clears
    r = call(
        alice,
        "PATCH",
        f"/links/{lid}",
        json={"password": None, "expires": None, "max_uses": None, "label": None},
    )
    assert r.status_code == 200, r.text
    conforms(alice, r, "/api/v1/links/{id}", "patch")
    body = r.json()
    assert body["has_password"] is False and body["expires"] is None
    assert body["max_uses"] is None and body["label"] is None and body["active"] is True

    # an empty body changes nothing
    r = call(alice, "PATCH", f"/links/{lid}", json={})
    assert r.status_code == 200 and r.json() == body

    # bad changes are refused and change nothing
    for bad in (
        {"expires": "2001-01-01T00:00:00Z"},  # the past
        {"expires": time.time() - 10},
        {"expires": "soon"},
        {"max_uses": 0},
        {"password": ""},
        {"label": ["x"]},
    ):
        error(call(alice, "PATCH", f"/links/{lid}", json=bad), 400)
    error(call(alice, "PATCH", f"/links/{lid}", data=b"[", headers=JSON), 400)
    assert call(alice, "GET", f"/links/{lid}").json() == body
    error(call(alice, "PATCH", "/links/987654321", json={"label": "x"}), 404)


def test_revoke_deactivates_and_keeps_the_link_listed(alice, tree):
    keep = made(alice, f"{tree}/Docs", "view")
    gone = made(alice, f"{tree}/Docs", "edit")
    r = call(alice, "DELETE", f"/links/{gone['id']}")
    assert r.status_code == 204 and r.content == b""

    r = call(alice, "GET", f"/links/{gone['id']}")
    assert r.status_code == 200, r.text
    conforms(alice, r, "/api/v1/links/{id}", "get")
    body = r.json()
    assert body["active"] is False and body["revoked"] is not None
    assert body["revoked"].endswith("Z") and parse(body["revoked"]) <= time.time() + 5
    assert call(alice, "GET", f"/links/{keep['id']}").json()["active"] is True
    listed = {
        link["id"]: link
        for link in call(alice, "GET", "/links", params={"path": f"{tree}/Docs"}).json()["links"]
    }
    assert listed[gone["id"]]["active"] is False and listed[keep["id"]]["active"] is True
    # revoking again is harmless
    assert call(alice, "DELETE", f"/links/{gone['id']}").status_code == 204


def test_other_users_get_404(alice, bob, tree):
    link = made(alice, f"{tree}/Docs", "edit", label="alice's")
    lid = link["id"]
    error(call(bob, "GET", f"/links/{lid}"), 404)
    error(call(bob, "PATCH", f"/links/{lid}", json={"label": "bob's"}), 404)
    error(call(bob, "PATCH", f"/links/{lid}", json={"password": None}), 404)
    error(call(bob, "DELETE", f"/links/{lid}"), 404)
    assert call(bob, "GET", "/links").json() == {"links": []}
    # the link is untouched
    assert call(alice, "GET", f"/links/{lid}").json() == link
    # ids that name no link, or that no database could hold: 404, never a 500
    for bad in ("987654321", str(10**28)):
        error(call(alice, "GET", f"/links/{bad}"), 404)
        error(call(alice, "PATCH", f"/links/{bad}", json={"label": "x"}), 404)
        error(call(alice, "DELETE", f"/links/{bad}"), 404)
    assert call(alice, "GET", "/links/abc").status_code == 404


def test_links_need_authentication(srv):
    r = requests.get(f"{srv.url}/api/v1/links")
    assert r.status_code == 401
    r = requests.post(f"{srv.url}/api/v1/links", json={"path": "/x", "type": "view"})
    assert r.status_code == 401
