"""Identities against a real ``davdrive serve`` while the CLI (another process) changes them:
key rotation, password change, account deletion, device revocation; bearer tokens on /dav/;
logins in any case; the devices API."""

from __future__ import annotations

import jsonschema
import requests

from tests.live import LiveServer, run_cli


def propfind(url: str, *, headers: dict[str, str] | None = None, **kw: object) -> int:
    """The status of a Depth 0 PROPFIND."""
    headers = {"Depth": "0", **(headers or {})}
    return requests.request("PROPFIND", url, headers=headers, timeout=30, **kw).status_code


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def add_device(srv: LiveServer, login: str, name: str) -> dict[str, str]:
    out = srv.cli("device", "add", login, name).stdout
    return dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)


def test_key_rotate_on_a_running_server(live_server):
    """Accounts the server had not cached (bob) and accounts created after the rotation
    (carol) write and read; blocks written before it stay readable, also after a restart."""
    srv = live_server
    alice = srv.auth("alice")
    assert requests.put(srv.dav("alice") + "before.txt", data=b"old", auth=alice).status_code == 201
    out = srv.cli("key", "rotate").stdout
    assert "rewrapped 2 account key(s)" in out
    srv.cli("user", "add", "carol", "--password-stdin", input="carol-pw\n")
    users = {"alice": "alice-pw", "bob": "bob-pw", "carol": "carol-pw"}
    for login, password in users.items():
        url = srv.dav(login) + "after.txt"
        r = requests.put(url, data=f"{login} after".encode(), auth=(login, password), timeout=30)
        assert r.status_code == 201, (login, r.status_code, r.text[:300])
        assert requests.get(url, auth=(login, password)).content == f"{login} after".encode()
    assert requests.get(srv.dav("alice") + "before.txt", auth=alice).content == b"old"
    srv.restart()
    for login, password in users.items():
        got = requests.get(srv.dav(login) + "after.txt", auth=(login, password))
        assert got.content == f"{login} after".encode(), login
    assert requests.get(srv.dav("alice") + "before.txt", auth=alice).content == b"old"


def test_passwd_counts_on_the_very_next_request(live_server):
    srv = live_server
    home = srv.dav("alice")
    assert propfind(home, auth=("alice", "alice-pw")) == 207  # now cached by the server
    srv.cli("user", "passwd", "alice", "--password-stdin", input="alice-new\n")
    assert propfind(home, auth=("alice", "alice-pw")) == 401
    api = f"{srv.url}/api/v1/changes/latest"
    assert requests.get(api, auth=("alice", "alice-pw")).status_code == 401
    assert propfind(home, auth=("alice", "alice-new")) == 207


def test_user_delete_counts_on_the_very_next_request(live_server):
    srv = live_server
    r = requests.put(srv.dav("bob") + "b.txt", data=b"bob", auth=srv.auth("bob"))
    assert r.status_code == 201
    assert propfind(srv.dav("bob"), auth=srv.auth("bob")) == 207
    srv.cli("user", "delete", "bob", "--yes")
    assert propfind(srv.dav("bob"), auth=srv.auth("bob")) == 401
    # a new account of the same name and password is a new, empty account
    srv.cli("user", "add", "bob", "--password-stdin", input="bob-pw\n")
    assert requests.get(srv.dav("bob") + "b.txt", auth=srv.auth("bob")).status_code == 404
    r = requests.put(srv.dav("bob") + "new.txt", data=b"new bob", auth=srv.auth("bob"))
    assert r.status_code == 201
    assert requests.get(srv.dav("bob") + "new.txt", auth=srv.auth("bob")).content == b"new bob"


def test_device_revoke_counts_on_the_very_next_request(live_server):
    srv = live_server
    home = srv.dav("alice")
    phone = add_device(srv, "alice", "phone")
    assert propfind(home, auth=("alice", phone["app password"])) == 207
    assert propfind(home, headers=bearer(phone["token"])) == 207
    api = f"{srv.url}/api/v1/changes/latest"
    assert requests.get(api, headers=bearer(phone["token"])).status_code == 200
    listed = srv.cli("device", "list", "alice").stdout
    assert "phone" in listed
    srv.cli("device", "revoke", "alice", "phone")
    assert propfind(home, auth=("alice", phone["app password"])) == 401
    assert propfind(home, headers=bearer(phone["token"])) == 401
    assert requests.get(api, headers=bearer(phone["token"])).status_code == 401
    assert propfind(home, auth=srv.auth("alice")) == 207


def test_bearer_tokens_on_dav(live_server):
    srv = live_server
    token = add_device(srv, "alice", "laptop")["token"]
    url = srv.dav("alice") + "from-token.txt"
    r = requests.put(url, data=b"via bearer", headers=bearer(token), timeout=30)
    assert r.status_code == 201, r.text[:300]
    assert requests.get(url, headers=bearer(token)).content == b"via bearer"
    r = requests.request("PROPFIND", srv.dav("alice"), headers={**bearer(token), "Depth": "1"})
    assert r.status_code == 207 and "from-token.txt" in r.text
    assert propfind(srv.dav("bob"), headers=bearer(token)) == 404  # still only alice's home
    for wrong in ("nope", "", token + "x"):
        r = requests.request("PROPFIND", srv.dav("alice"), headers=bearer(wrong))
        assert r.status_code == 401, wrong
        assert "Basic" in r.headers["WWW-Authenticate"]


def test_logins_in_any_case(live_server):
    srv = live_server
    r = requests.put(srv.dav("alice") + "a.txt", data=b"a", auth=srv.auth("alice"))
    assert r.status_code == 201
    for home in ("Alice", "ALICE", "alice"):
        got = requests.get(f"{srv.url}/dav/{home}/a.txt", auth=("ALICE", "alice-pw"))
        assert got.status_code == 200 and got.content == b"a", home
        r = requests.request(
            "PROPFIND", f"{srv.url}/dav/{home}/", auth=srv.auth("alice"), headers={"Depth": "1"}
        )
        assert r.status_code == 207 and "a.txt" in r.text, home
    put = requests.put(f"{srv.url}/dav/Alice/b.txt", data=b"b", auth=srv.auth("alice"))
    assert put.status_code == 201
    assert requests.get(srv.dav("alice") + "b.txt", auth=srv.auth("alice")).content == b"b"
    assert propfind(f"{srv.url}/dav/Bob/", auth=srv.auth("alice")) == 404
    srv.cli("user", "add", "Carol", "--password-stdin", input="carol-pw\n")
    assert "carol" in srv.cli("user", "list").stdout.split()
    clash = run_cli(
        srv.data_dir, "user", "add", "CAROL", "--password-stdin", input="x\n", check=False
    )
    assert clash.returncode != 0
    assert propfind(f"{srv.url}/dav/carol/", auth=("Carol", "carol-pw")) == 207


def test_devices_api(live_server):
    srv = live_server
    api = f"{srv.url}/api/v1"
    alice, bob = srv.auth("alice"), srv.auth("bob")
    doc = requests.get(f"{api}/openapi.json").json()

    def conforms(resp: requests.Response, path: str, method: str) -> None:
        schema = doc["paths"][path][method]["responses"][str(resp.status_code)]
        body = schema["content"]["application/json"]["schema"]
        jsonschema.validate(resp.json(), {**body, "components": doc["components"]})

    r = requests.get(f"{api}/devices", auth=alice)
    assert r.status_code == 200 and r.json() == {"devices": []}
    r = requests.post(f"{api}/devices", json={"name": "tablet"}, auth=alice)
    assert r.status_code == 201, r.text
    conforms(r, "/api/v1/devices", "post")
    tablet = r.json()
    assert tablet["name"] == "tablet" and tablet["app_password"] and tablet["token"]
    dup = requests.post(f"{api}/devices", json={"name": "TABLET"}, auth=alice)
    assert dup.status_code == 409 and dup.json()["error"]["code"] == "already_exists"
    for bad in ({}, {"name": ""}, {"name": 5}, {"name": "x" * 200}):
        assert requests.post(f"{api}/devices", json=bad, auth=alice).status_code == 400, bad
    phone = requests.post(f"{api}/devices", json={"name": "phone"}, auth=alice).json()
    bobs = requests.post(f"{api}/devices", json={"name": "desk"}, auth=bob).json()

    # the device making the request is `current`; a device may not mint or revoke others
    r = requests.get(f"{api}/devices", headers=bearer(tablet["token"]))
    conforms(r, "/api/v1/devices", "get")
    listed = r.json()["devices"]
    assert [(d["name"], d["current"]) for d in listed] == [("phone", False), ("tablet", True)]
    assert listed[1]["id"] == tablet["id"] and listed[1]["last_cursor"] == 0
    r = requests.get(f"{api}/devices", auth=("alice", phone["app_password"]))
    assert [d["current"] for d in r.json()["devices"]] == [True, False]
    r = requests.post(f"{api}/devices", json={"name": "x"}, headers=bearer(tablet["token"]))
    assert r.status_code == 403
    r = requests.delete(f"{api}/devices/{phone['id']}", headers=bearer(tablet["token"]))
    assert r.status_code == 403

    # another account's device id is not found; revoking works at once
    assert requests.delete(f"{api}/devices/{bobs['id']}", auth=alice).status_code == 404
    assert (
        requests.delete(f"{api}/devices/{bobs['id']}", headers=bearer(tablet["token"])).status_code
        == 404
    )
    assert requests.delete(f"{api}/devices/999999", auth=alice).status_code == 404
    assert requests.delete(f"{api}/devices/{phone['id']}", auth=alice).status_code == 204
    assert requests.get(f"{api}/devices", auth=("alice", phone["app_password"])).status_code == 401
    assert propfind(srv.dav("alice"), headers=bearer(phone["token"])) == 401
    # a device may sign itself out
    r = requests.delete(f"{api}/devices/{tablet['id']}", headers=bearer(tablet["token"]))
    assert r.status_code == 204
    assert requests.get(f"{api}/devices", headers=bearer(tablet["token"])).status_code == 401
    assert requests.get(f"{api}/devices", auth=alice).json() == {"devices": []}
    assert [d["name"] for d in requests.get(f"{api}/devices", auth=bob).json()["devices"]] == [
        "desk"
    ]
