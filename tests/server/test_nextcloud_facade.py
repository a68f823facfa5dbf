"""The Nextcloud/ownCloud client facade against a real ``davdrive serve``: ``/status.php``, the
OCS ``cloud/capabilities`` and ``cloud/user`` (v1 and v2, JSON and XML), ``/index.php/204``, and
the routing of ``/remote.php`` (503 until ``providers.nextcloud_dav`` exists, WebDAV after)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import requests

from tests.live import LiveServer

OCS_HEADERS = {"OCS-APIRequest": "true"}


def ocs_get(
    srv: LiveServer,
    v: int,
    what: str,
    *,
    fmt: str | None = "json",
    headers: dict[str, str] | None = None,
    **kw: Any,
) -> requests.Response:
    params = {"format": fmt} if fmt else {}
    url = f"{srv.url}/ocs/v{v}.php/cloud/{what}"
    headers = {**OCS_HEADERS, **(headers or {})}
    return requests.get(url, params=params, headers=headers, timeout=30, **kw)


def add_device(srv: LiveServer, login: str, name: str) -> dict[str, str]:
    out = srv.cli("device", "add", login, name).stdout
    return dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)


def all_keys(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in all_keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in all_keys(v)}
    return set()


def test_status_php_is_public_json(live_server):
    r = requests.get(f"{live_server.url}/status.php", timeout=30)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.json() == {
        "installed": True,
        "maintenance": False,
        "needsDbUpgrade": False,
        "version": "30.0.0.0",
        "versionstring": "30.0.0",
        "edition": "",
        "productname": "davdrive",
        "extendedSupport": False,
    }


def test_capabilities_json(live_server):
    for v, code in ((1, 100), (2, 200)):
        check_capabilities_json(live_server, v, code)


def check_capabilities_json(live_server: LiveServer, v: int, code: int) -> None:
    r = ocs_get(live_server, v, "capabilities", auth=live_server.auth("alice"))
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    doc = r.json()["ocs"]
    assert doc["meta"]["status"] == "ok"
    assert doc["meta"]["statuscode"] == code
    assert f'"statuscode":{code},' in r.text  # ownCloud 2.11 reads it with a regex
    assert ("totalitems" in doc["meta"]) == (v == 1)
    data = doc["data"]
    assert data["version"] == {
        "major": 30,
        "minor": 0,
        "micro": 0,
        "string": "30.0.0",
        "edition": "",
        "extendedSupport": False,
    }
    caps = data["capabilities"]
    assert caps["core"] == {"pollinterval": 60, "webdav-root": "remote.php/webdav"}
    assert caps["dav"] == {"chunking": "1.0"}
    assert caps["files"] == {"bigfilechunking": True, "undelete": True, "versioning": True}
    assert isinstance(caps["checksums"]["supportedTypes"], list)
    if not caps["checksums"]["supportedTypes"]:
        assert "preferredUploadType" not in caps["checksums"]
    sharing = caps["files_sharing"]
    assert sharing["api_enabled"] is True
    assert sharing["public"] == {
        "enabled": True,
        "password": {"enforced": False, "askForOptionalPassword": False},
        "expire_date": {"enabled": False, "enforced": False},  # optional, no default
        "multiple_links": True,
        "send_mail": False,
        "upload": True,
        "upload_files_drop": True,
    }
    assert sharing["resharing"] is False
    assert sharing["user"] == {"send_mail": False, "expire_date": {"enabled": False}}
    assert sharing["group_sharing"] is False and sharing["group"]["enabled"] is False
    assert sharing["federation"]["outgoing"] is False
    assert sharing["default_permissions"] == 15  # no re-share bit
    # nothing that would switch the clients to a protocol davdrive does not speak
    keys = all_keys(caps)
    assert not keys & {"bulkupload", "locking", "notify_push"}
    assert "bulkupload" not in caps["dav"] and "locking" not in caps["files"]


def test_capabilities_xml(live_server):
    for v, code in ((1, "100"), (2, "200")):
        check_capabilities_xml(live_server, v, code)


def check_capabilities_xml(live_server: LiveServer, v: int, code: str) -> None:
    for fmt in (None, "xml"):
        r = ocs_get(live_server, v, "capabilities", fmt=fmt, auth=live_server.auth("alice"))
        assert r.status_code == 200, r.text
        assert r.headers["Content-Type"].startswith("application/xml")
        assert r.text.startswith('<?xml version="1.0"?>')
        root = ET.fromstring(r.content)
        assert root.tag == "ocs"
        assert root.findtext("meta/status") == "ok"
        assert root.findtext("meta/statuscode") == code
        assert root.findtext("data/version/major") == "30"
        assert root.findtext("data/version/string") == "30.0.0"
        caps = root.find("data/capabilities")
        assert caps is not None
        assert caps.findtext("core/webdav-root") == "remote.php/webdav"
        assert caps.findtext("dav/chunking") == "1.0"
        assert caps.findtext("files/bigfilechunking") == "1"
        assert caps.findtext("files_sharing/public/enabled") == "1"
        assert not caps.findtext("files_sharing/resharing")  # false is an empty element
        tags = {e.tag for e in caps.iter()}
        assert not tags & {"bulkupload", "locking", "notify_push"}
    # Accept: application/json without ?format= gives JSON, as Nextcloud does
    r = requests.get(
        f"{live_server.url}/ocs/v{v}.php/cloud/capabilities",
        headers={"Accept": "application/json"},
        auth=live_server.auth("alice"),
        timeout=30,
    )
    assert r.json()["ocs"]["meta"]["statuscode"] == int(code)


def test_cloud_user(live_server):
    srv = live_server
    r = requests.put(srv.dav("alice") + "five.txt", data=b"12345", auth=srv.auth("alice"))
    assert r.status_code == 201
    for v, code in ((1, 100), (2, 200)):
        check_cloud_user(srv, v, code)


def check_cloud_user(srv: LiveServer, v: int, code: int) -> None:
    r = ocs_get(srv, v, "user", auth=srv.auth("alice"))
    assert r.status_code == 200, r.text
    doc = r.json()["ocs"]
    assert doc["meta"]["statuscode"] == code
    data = doc["data"]
    assert data["id"] == "alice"
    assert data["display-name"] == "alice"
    assert data["displayname"] == "alice"
    assert data["email"] is None
    q = data["quota"]
    assert q["used"] == 5
    assert q["total"] == q["used"] + q["free"] == q["quota"]
    assert q["quota"] > 0
    assert 0 <= q["relative"] < 1
    # the XML form
    r = ocs_get(srv, v, "user", fmt="xml", auth=srv.auth("bob"))
    root = ET.fromstring(r.content)
    assert root.findtext("data/id") == "bob"
    assert root.findtext("data/display-name") == "bob"
    assert root.findtext("data/quota/used") == "0"


def test_ocs_requires_credentials(live_server):
    for v in (1, 2):
        for what in ("capabilities", "user"):
            check_requires_credentials(live_server, v, what)


def check_requires_credentials(live_server: LiveServer, v: int, what: str) -> None:
    for auth in (None, ("alice", "wrong-pw"), ("nobody", "x")):
        r = ocs_get(live_server, v, what, auth=auth)
        assert r.status_code == 401, (auth, r.status_code)
        assert r.headers["WWW-Authenticate"].startswith('Basic realm="davdrive"')
        meta = r.json()["ocs"]["meta"]
        assert meta["status"] == "failure"
        assert meta["statuscode"] == 997
    r = ocs_get(live_server, v, what, fmt=None)
    assert r.status_code == 401
    assert ET.fromstring(r.content).findtext("meta/statuscode") == "997"


def test_device_app_password_and_token(live_server):
    srv = live_server
    device = add_device(srv, "alice", "nextcloud-desktop")
    r = ocs_get(srv, 1, "user", auth=("alice", device["app password"]))
    assert r.status_code == 200, r.text
    assert r.json()["ocs"]["data"]["id"] == "alice"
    r = ocs_get(srv, 2, "capabilities", headers={"Authorization": f"Bearer {device['token']}"})
    assert r.status_code == 200, r.text
    assert r.json()["ocs"]["meta"]["statuscode"] == 200
    srv.cli("device", "revoke", "alice", "nextcloud-desktop")
    assert ocs_get(srv, 1, "user", auth=("alice", device["app password"])).status_code == 401


def test_repeated_failures_answer_429(live_server):
    srv = live_server
    statuses = [ocs_get(srv, 2, "user", auth=("bob", f"guess-{i}")).status_code for i in range(12)]
    assert statuses[0] == 401
    assert statuses[-1] == 429, statuses
    r = ocs_get(srv, 2, "user", auth=("bob", "guess-x"))
    assert r.status_code == 429
    assert int(r.headers["Retry-After"]) >= 1
    assert r.json()["ocs"]["meta"]["statuscode"] == 429


def test_unknown_ocs_path_and_captive_portal_check(live_server):
    for v in (1, 2):
        url = f"{live_server.url}/ocs/v{v}.php/cloud/nothing-here"
        r = requests.get(url, params={"format": "json"}, auth=live_server.auth("alice"))
        assert r.status_code == 404
        meta = r.json()["ocs"]["meta"]
        assert meta["statuscode"] == 998
        assert meta["status"] == "failure"
        r = requests.get(url, auth=live_server.auth("alice"), timeout=30)
        assert ET.fromstring(r.content).findtext("meta/statuscode") == "998"
    # the captive-portal check: 204, empty, no credentials
    for path in ("/index.php/204", "/index.php/204/"):
        r = requests.get(live_server.url + path, timeout=30)
        assert r.status_code == 204, path
        assert r.content == b""


def test_doubled_slashes_and_methods(live_server):
    srv = live_server
    r = requests.get(
        f"{srv.url}/ocs//v2.php/cloud//capabilities?format=json",
        auth=srv.auth("alice"),
        timeout=30,
    )
    assert r.status_code == 200
    assert r.json()["ocs"]["meta"]["statuscode"] == 200
    r = requests.post(
        f"{srv.url}/ocs/v2.php/cloud/capabilities?format=json", auth=srv.auth("alice"), timeout=30
    )
    assert r.status_code == 405
    assert "GET" in r.headers["Allow"]


def test_remote_php_is_routed(live_server):
    """``/remote.php/...`` goes to ``providers.nextcloud_dav``: 503 (with Retry-After) while that
    module is missing or broken, a 207 multistatus to PROPFIND once it serves; never a 500 and
    never the catch-all 404 of the dispatcher."""
    srv = live_server
    for path in ("/remote.php/webdav/", "/remote.php/dav/files/alice/", "/remote.php//webdav"):
        r = requests.request(
            "PROPFIND",
            srv.url + path,
            headers={"Depth": "0"},
            auth=srv.auth("alice"),
            timeout=30,
        )
        assert r.status_code in (207, 503), (path, r.status_code, r.text[:300])
        if r.status_code == 503:
            assert "Nextcloud WebDAV" in r.text
            assert r.headers["Retry-After"]
        else:
            assert b"multistatus" in r.content
    # the facade itself still answers when the WebDAV part is missing
    assert requests.get(f"{srv.url}/status.php", timeout=30).status_code == 200


def test_a_broken_nextcloud_dav_module_is_a_503_not_a_crash(monkeypatch, caplog):
    """The factory swallows a failing ``make_nextcloud_dav_app`` (and a module that does not
    import) with a warning; the dispatcher then answers 503."""
    import sys
    import types

    from davdrive.server import wsgi

    broken = types.ModuleType("providers.nextcloud_dav")

    def make_nextcloud_dav_app(_app: Any) -> Any:
        raise RuntimeError("half-written")

    broken.make_nextcloud_dav_app = make_nextcloud_dav_app  # type: ignore[attr-defined]
    broken.VERIFIED_CHECKSUM_TYPES = ("sha1",)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "providers.nextcloud_dav", broken)
    with caplog.at_level("WARNING", logger="davdrive.server.wsgi"):
        assert wsgi._nextcloud_dav_factory(object()) is None  # type: ignore[arg-type]
    assert "half-written" in caplog.text
    assert wsgi._verified_checksum_types() == ("sha1",)
    monkeypatch.setitem(sys.modules, "providers.nextcloud_dav", None)  # import fails
    assert wsgi._nextcloud_dav_factory(object()) is None  # type: ignore[arg-type]
    assert wsgi._verified_checksum_types() == ()
    assert wsgi.is_remote_php("/remote.php") and wsgi.is_remote_php("/remote.php/webdav/")
    assert not wsgi.is_remote_php("/remote.phpx")
    assert wsgi.is_nextcloud("/ocs/v2.php/cloud/user") and wsgi.is_nextcloud("/index.php/204")
    assert not wsgi.is_nextcloud("/status.phpx")
