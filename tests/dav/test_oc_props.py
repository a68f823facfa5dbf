"""The ownCloud/Nextcloud PROPFIND properties (providers/oc_props.py) through every URL form —
``/dav/<login>/``, ``/remote.php/dav/files/<login>/``, ``/remote.php/webdav/``, a link's
``/s/<token>/dav/`` — for the owner, a share's recipient and a link's holder; the fast path
answers the bytes WsgiDAV's own path answers (the ``twice`` fixture of test_propfind_fast)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
import requests
from cheroot import wsgi

from providers.dav_app import make_dav_app
from providers.link_provider import make_link_dav_app
from providers.nextcloud_dav import make_nextcloud_dav_app
from tests.dav.conftest import USERS, PlainAccounts
from tests.dav.test_propfind_fast import _by_href, _same, twice  # noqa: F401 (fixture)

OC = "{http://owncloud.org/ns}"
NC = "{http://nextcloud.org/ns}"
OK = "HTTP/1.1 200 OK"
MISSING = "HTTP/1.1 404 Not Found"
OC_NAMES = [
    "oc:id",
    "oc:fileid",
    "oc:permissions",
    "oc:size",
    "oc:share-types",
    "oc:checksums",
    "oc:data-fingerprint",
    "nc:has-preview",
    "oc:downloadURL",
    "oc:owner-id",
    "oc:owner-display-name",
    "d:getcontentlength",
    "d:getetag",
    "d:resourcetype",
    "d:getlastmodified",
    "oc:favorite",
]
# What the desktop client (nextcloudcmd 3.7) asks in its discovery PROPFIND, and more.
PROPS = (
    '<?xml version="1.0" encoding="utf-8"?><d:propfind xmlns:d="DAV:" '
    'xmlns:oc="http://owncloud.org/ns" xmlns:nc="http://nextcloud.org/ns"><d:prop>'
    + "".join(f"<{n}/>" for n in OC_NAMES)
    + "</d:prop></d:propfind>"
)


@pytest.fixture
def srv(dav_server) -> Iterator[Any]:
    """dav_server's drive at /dav, /remote.php and /s on one port; alice has /docs (a.txt,
    sub/) and /x (shared with bob read-only: x.txt, inner/)."""
    drive = dav_server.drive
    app = SimpleNamespace(drive=drive, db=drive.db, accounts=PlainAccounts(drive, dict(USERS)))
    dav, nc, links = make_dav_app(app), make_nextcloud_dav_app(app), make_link_dav_app(app)

    def dispatch(environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/remote.php"):
            return nc(environ, start_response)
        if path.startswith("/s/"):
            return links(environ, start_response)
        return dav(environ, start_response)

    alice = drive.principal("alice")
    drive.mkdir(alice, "/docs")
    drive.mkdir(alice, "/docs/sub")
    drive.write_file(alice, "/docs/a.txt", b"hello")
    drive.mkdir(alice, "/x")
    drive.mkdir(alice, "/x/inner")
    drive.write_file(alice, "/x/x.txt", b"shared!")
    drive.shares.create(alice, "/x", "bob", 1)
    server = wsgi.Server(("127.0.0.1", 0), dispatch, numthreads=8, timeout=10)
    server.prepare()
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    host, port = server.bind_addr[:2]
    yield SimpleNamespace(url=f"http://{host}:{port}", drive=drive, alice=alice)
    server.stop()
    thread.join(timeout=5)


def _propfind(
    srv: Any, path: str, login: str | None = "alice", depth: str = "1", body: str = PROPS
) -> requests.Response:
    auth = (login, USERS[login]) if login else None
    r = requests.request(
        "PROPFIND",
        srv.url + path,
        data=body.encode(),
        headers={"Depth": depth, "Content-Type": "application/xml"},
        auth=auth,
        timeout=30,
    )
    assert r.status_code == 207, r.text
    assert r.headers["Content-Type"] == "application/xml; charset=utf-8"
    return r


def _props(r: requests.Response) -> dict[str, dict[str, tuple[str, str]]]:
    """href -> {property: (status, text)}."""
    out: dict[str, dict[str, tuple[str, str]]] = {}
    for href, props in _by_href(r.content).items():
        out[href] = {name: (status, value.decode()) for (status, name), value in props.items()}
    return out


def _ok(props: dict[str, tuple[str, str]], name: str) -> str:
    status, value = props[name]
    assert status == OK, (name, props[name])
    return value


def _missing(props: dict[str, tuple[str, str]], name: str) -> None:
    assert props[name][0] == MISSING, (name, props[name])


@pytest.mark.parametrize(
    "home", ["/dav/alice/", "/remote.php/dav/files/alice/", "/remote.php/webdav/"]
)
def test_owner_sees_every_property(srv, home: str) -> None:
    a_txt = srv.drive.stat(srv.alice, "/docs/a.txt")
    sub = srv.drive.stat(srv.alice, "/docs/sub")
    root = _props(_propfind(srv, home, depth="0"))[home]
    assert _ok(root, f"{OC}data-fingerprint") == ""
    assert _ok(root, f"{OC}permissions") == "RGDNVCK"
    listing = _props(_propfind(srv, home + "docs/"))
    assert set(listing) == {home + "docs/", home + "docs/a.txt", home + "docs/sub/"}
    f, d = listing[home + "docs/a.txt"], listing[home + "docs/sub/"]
    assert _ok(f, f"{OC}id") == f"{a_txt.id:08d}davdrive"
    assert _ok(f, f"{OC}fileid") == str(a_txt.id)
    assert _ok(d, f"{OC}fileid") == str(sub.id)
    assert _ok(f, f"{OC}permissions") == "RGDNVW"
    assert _ok(d, f"{OC}permissions") == "RGDNVCK"
    assert _ok(f, f"{OC}size") == "5"
    assert _ok(d, f"{OC}size") == "0"  # the total below it (tests/dav/test_oc_props_more.py)
    assert _ok(f, "{DAV:}getcontentlength") == "5"
    assert _ok(d, "{DAV:}getcontentlength") == "0"  # named: a number for Android
    # the SHA-256 davdrive keeps: the client checks downloads against it
    assert f"SHA256:{a_txt.content_hash}</" in _ok(f, f"{OC}checksums")
    _missing(d, f"{OC}checksums")
    for props in (f, d):
        assert _ok(props, f"{OC}share-types") == ""
        _missing(props, f"{OC}data-fingerprint")  # the home root only
        assert _ok(props, f"{NC}has-preview") == "false"
        assert _ok(props, f"{OC}downloadURL") == ""
        assert _ok(props, f"{OC}owner-id") == "alice"
        assert _ok(props, f"{OC}owner-display-name") == "alice"
        _missing(props, f"{OC}favorite")  # a dead property, not set
        assert len(_ok(props, f"{OC}id")) <= 32


def test_allprop_is_unchanged(srv) -> None:
    r = requests.request(
        "PROPFIND",
        srv.url + "/dav/alice/docs/",
        headers={"Depth": "1"},
        auth=("alice", USERS["alice"]),
        timeout=30,
    )
    assert r.status_code == 207
    assert "owncloud" not in r.text and "nextcloud" not in r.text
    props = _props(r)["/dav/alice/docs/sub/"]
    assert not any(name == "{DAV:}getcontentlength" for name in props)


def test_id_survives_move_and_proppatch_is_refused(srv) -> None:
    auth = ("alice", USERS["alice"])
    before = _props(_propfind(srv, "/dav/alice/docs/a.txt", depth="0"))["/dav/alice/docs/a.txt"]
    moved = requests.request(
        "MOVE",
        srv.url + "/dav/alice/docs/a.txt",
        headers={"Destination": srv.url + "/dav/alice/docs/sub/b.txt"},
        auth=auth,
        timeout=30,
    )
    assert moved.status_code == 201, moved.text
    after = _props(_propfind(srv, "/dav/alice/docs/sub/b.txt", depth="0"))
    after_props = after["/dav/alice/docs/sub/b.txt"]
    for name in (f"{OC}id", f"{OC}fileid", "{DAV:}getetag"):
        assert _ok(after_props, name) == _ok(before, name)
    patch = (
        '<?xml version="1.0"?><d:propertyupdate xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns">'
        "<d:set><d:prop><oc:id>forged</oc:id></d:prop></d:set></d:propertyupdate>"
    )
    r = requests.request(
        "PROPPATCH",
        srv.url + "/remote.php/webdav/docs/sub/b.txt",
        data=patch.encode(),
        auth=auth,
        timeout=30,
    )
    assert r.status_code == 207 and "403 Forbidden" in r.text, r.text
    favorite = (
        '<?xml version="1.0"?><d:propertyupdate xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns">'
        "<d:set><d:prop><oc:favorite>1</oc:favorite></d:prop></d:set></d:propertyupdate>"
    )
    r = requests.request(
        "PROPPATCH", srv.url + "/dav/alice/docs/sub/b.txt", data=favorite, auth=auth, timeout=30
    )
    assert r.status_code == 207 and "200 OK" in r.text, r.text
    again = _props(_propfind(srv, "/dav/alice/docs/sub/b.txt", depth="0"))
    props = again["/dav/alice/docs/sub/b.txt"]
    assert _ok(props, f"{OC}id") == _ok(before, f"{OC}id")  # not forged
    assert _ok(props, f"{OC}favorite") == "1"  # dead properties still work


def test_a_read_only_share(srv) -> None:
    """bob's mount point /x: S, and D N V (he may rename, move or decline it); inside it S
    (shared, as Nextcloud) and G. The owner is named (bob knows who shared it)."""
    x = srv.drive.stat(srv.alice, "/x")
    home = _props(_propfind(srv, "/dav/bob/", login="bob"))
    mount = home["/dav/bob/x/"]
    assert _ok(mount, f"{OC}permissions") == "SGDNV"
    assert _ok(mount, f"{OC}fileid") == str(x.id)
    assert _ok(mount, f"{OC}owner-id") == "alice"
    assert _ok(home["/dav/bob/"], f"{OC}owner-id") == "bob"
    assert _ok(home["/dav/bob/"], f"{OC}data-fingerprint") == ""
    alone = _props(_propfind(srv, "/remote.php/dav/files/bob/x/", login="bob", depth="0"))
    assert _ok(alone["/remote.php/dav/files/bob/x/"], f"{OC}permissions") == "SGDNV"
    inside = _props(_propfind(srv, "/remote.php/webdav/x/", login="bob"))
    assert _ok(inside["/remote.php/webdav/x/x.txt"], f"{OC}permissions") == "SG"
    assert _ok(inside["/remote.php/webdav/x/inner/"], f"{OC}permissions") == "SG"
    assert _ok(inside["/remote.php/webdav/x/x.txt"], f"{OC}owner-id") == "alice"
    _missing(inside["/remote.php/webdav/x/"], f"{OC}data-fingerprint")
    # alice, the owner, still has every right on the same nodes
    own = _props(_propfind(srv, "/dav/alice/x/"))
    assert _ok(own["/dav/alice/x/"], f"{OC}permissions") == "RGDNVCK"
    assert _ok(own["/dav/alice/x/x.txt"], f"{OC}permissions") == "RGDNVW"


def test_a_writable_share(srv) -> None:
    share = srv.drive.shares.create(srv.alice, "/docs", "bob", 15)
    assert share.mount_path == "/docs"
    listing = _props(_propfind(srv, "/dav/bob/docs/", login="bob"))
    assert _ok(listing["/dav/bob/docs/"], f"{OC}permissions") == "SGDNVCK"
    assert _ok(listing["/dav/bob/docs/a.txt"], f"{OC}permissions") == "SGDNVW"
    assert _ok(listing["/dav/bob/docs/sub/"], f"{OC}permissions") == "SGDNVCK"


@pytest.mark.parametrize(("kind", "file_perms"), [("view", "G"), ("edit", "GDNVW")])
def test_a_link_never_names_its_owner(srv, kind: str, file_perms: str) -> None:
    info = srv.drive.links.create(srv.alice, "/docs", kind)
    base = f"/s/{info.token}/dav/"
    r = _propfind(srv, base, login=None)
    assert "alice" not in r.text
    props = _props(r)
    for href in (base, base + "a.txt", base + "sub/"):
        _missing(props[href], f"{OC}owner-id")
        _missing(props[href], f"{OC}owner-display-name")
        _missing(props[href], f"{OC}data-fingerprint")
    assert _ok(props[base + "a.txt"], f"{OC}permissions") == file_perms
    assert _ok(props[base + "a.txt"], f"{OC}size") == "5"


# -- the fast path answers what WsgiDAV answers ---------------------------------------------


@pytest.mark.parametrize(
    ("path", "login"),
    [
        ("/dav/alice/", "alice"),
        ("/dav/alice/docs/", "alice"),
        ("/dav/alice/docs/a.txt", "alice"),
        ("/remote.php/dav/files/alice/docs/", "alice"),
        ("/remote.php/webdav/", "alice"),
        ("/dav/bob/", "bob"),
        ("/dav/bob/x/", "bob"),
        ("/remote.php/webdav/x/inner/", "bob"),
    ],
)
@pytest.mark.parametrize("depth", ["0", "1"])
def test_fast_path_matches_wsgidav(srv, twice, path: str, login: str, depth: str) -> None:  # noqa: F811
    s = requests.Session()
    s.auth = (login, USERS[login])
    fast, slow, used_wsgidav = twice(s, srv.url + path, PROPS, {"Depth": depth})
    assert fast.status_code == 207, fast.text
    _same(fast, slow)
    assert used_wsgidav == 0


def test_fast_path_matches_wsgidav_through_a_link(srv, twice) -> None:  # noqa: F811
    info = srv.drive.links.create(srv.alice, "/docs", "edit")
    s = requests.Session()
    for path in ("", "sub/", "a.txt"):
        url = f"{srv.url}/s/{info.token}/dav/{path}"
        fast, slow, used_wsgidav = twice(s, url, PROPS, {"Depth": "1"})
        assert fast.status_code == 207, fast.text
        _same(fast, slow)
        assert used_wsgidav == 0


def test_fast_path_with_dead_properties_and_locks(srv, twice) -> None:  # noqa: F811
    """Members rendered by WsgiDAV's code (a dead property, a lock) next to plain ones."""
    s = requests.Session()
    s.auth = ("alice", USERS["alice"])
    favorite = (
        '<?xml version="1.0"?><d:propertyupdate xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns">'
        "<d:set><d:prop><oc:favorite>1</oc:favorite></d:prop></d:set></d:propertyupdate>"
    )
    assert (
        s.request("PROPPATCH", srv.url + "/dav/alice/docs/sub/", data=favorite).status_code == 207
    )
    lock = (
        '<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/>'
        "</D:lockscope><D:locktype><D:write/></D:locktype><D:owner>t</D:owner></D:lockinfo>"
    )
    r = s.request("LOCK", srv.url + "/dav/alice/docs/a.txt", data=lock)
    assert r.status_code == 200, r.text
    fast, slow, used_wsgidav = twice(s, srv.url + "/dav/alice/docs/", PROPS, {"Depth": "1"})
    _same(fast, slow)
    assert used_wsgidav == 0
    props = _props(fast)
    assert _ok(props["/dav/alice/docs/sub/"], f"{OC}favorite") == "1"
    assert _ok(props["/dav/alice/docs/a.txt"], f"{OC}permissions") == "RGDNVW"
