"""More ownCloud/Nextcloud properties (providers/oc_props.py): a folder's ``oc:size`` (the
total below it), ``oc:share-types`` of what the caller shared, ``S`` on everything inside a
received share; one statement per PROPFIND level for each, and nothing when not asked. Uses
the ``srv`` fixture of test_oc_props (alice: /docs with a.txt and sub/; /x shared with bob
read-only: x.txt and inner/)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import requests
from sqlalchemy import event

import providers.provider as provider_module
from davdrive.service.properties import Properties
from tests.dav.conftest import USERS
from tests.dav.test_oc_props import (  # noqa: F401 (fixture)
    OC,
    PROPS,
    _ok,
    _propfind,
    _props,
    srv,
)
from tests.dav.test_propfind_fast import _same, twice  # noqa: F401 (fixture)


def _named(*names: str) -> str:
    return (
        '<?xml version="1.0" encoding="utf-8"?><d:propfind xmlns:d="DAV:" '
        'xmlns:oc="http://owncloud.org/ns"><d:prop>'
        + "".join(f"<{n}/>" for n in names)
        + "</d:prop></d:propfind>"
    )


NEITHER = _named("d:getetag", "oc:permissions")
SIZE_ONLY = _named("d:getetag", "oc:permissions", "oc:size")
SHARES_ONLY = _named("d:getetag", "oc:permissions", "oc:share-types")
BOTH = _named("d:getetag", "oc:permissions", "oc:share-types", "oc:size")


@contextmanager
def _statements(server: Any) -> Iterator[list[int]]:
    """Counts the SQL statements run while the block runs (the server is in-process)."""
    count = [0]

    def seen(*_args: object, **_kwargs: object) -> None:
        count[0] += 1

    engine = server.drive.db.engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        yield count
    finally:
        event.remove(engine, "before_cursor_execute", seen)


def _fill(server: Any) -> None:
    """/docs/sub: c.txt (10 bytes, written twice: only the current version counts), deep/
    b.bin (1000), gone.txt in the trash (never counted); /docs: a.txt (5)."""
    d, a = server.drive, server.alice
    d.write_file(a, "/docs/sub/c.txt", b"0123456789abcdef")
    d.write_file(a, "/docs/sub/c.txt", b"0123456789")
    d.mkdir(a, "/docs/sub/deep")
    d.write_file(a, "/docs/sub/deep/b.bin", b"b" * 1000)
    d.write_file(a, "/docs/sub/gone.txt", b"g" * 500)
    d.delete(a, "/docs/sub/gone.txt")
    d.mkdir(a, "/docs/empty")


def _share_types(props: dict[str, tuple[str, str]]) -> list[int]:
    """The ``<oc:share-type>`` values of one response."""
    return [int(x) for x in re.findall(r"share-type[^>]*>(\d+)<", _ok(props, f"{OC}share-types"))]


@pytest.mark.parametrize("home", ["/dav/alice/", "/remote.php/dav/files/alice/"])
def test_folder_size_is_the_total_below(srv, home: str) -> None:  # noqa: F811
    _fill(srv)
    listing = _props(_propfind(srv, home + "docs/"))
    assert _ok(listing[home + "docs/"], f"{OC}size") == "1015"
    assert _ok(listing[home + "docs/sub/"], f"{OC}size") == "1010"
    assert _ok(listing[home + "docs/empty/"], f"{OC}size") == "0"
    assert _ok(listing[home + "docs/a.txt"], f"{OC}size") == "5"
    alone = _props(_propfind(srv, home + "docs/sub/", depth="0"))
    assert _ok(alone[home + "docs/sub/"], f"{OC}size") == "1010"
    root = _props(_propfind(srv, home, depth="0"))
    assert _ok(root[home], f"{OC}size") == str(1015 + len(b"shared!"))
    assert _ok(_props(_propfind(srv, home))[home], f"{OC}size") == str(1015 + 7)


def test_a_recipient_counts_the_share(srv) -> None:  # noqa: F811
    srv.drive.write_file(srv.drive.principal("bob"), "/own.txt", b"bob!")
    home = _props(_propfind(srv, "/dav/bob/", login="bob"))
    assert _ok(home["/dav/bob/x/"], f"{OC}size") == "7"
    assert _ok(home["/dav/bob/"], f"{OC}size") == "11"  # the mounted share counts whole
    inside = _props(_propfind(srv, "/remote.php/webdav/x/", login="bob"))
    assert _ok(inside["/remote.php/webdav/x/"], f"{OC}size") == "7"
    assert _ok(inside["/remote.php/webdav/x/inner/"], f"{OC}size") == "0"


def test_a_link_holder_sees_sizes_and_no_shares(srv) -> None:  # noqa: F811
    _fill(srv)
    info = srv.drive.links.create(srv.alice, "/docs", "view")
    base = f"/s/{info.token}/dav/"
    props = _props(_propfind(srv, base, login=None))
    assert _ok(props[base], f"{OC}size") == "1015"
    assert _ok(props[base + "sub/"], f"{OC}size") == "1010"
    assert _ok(props[base], f"{OC}share-types") == ""  # the link's holder is not the sharer


def test_share_types_of_what_the_caller_shared(srv) -> None:  # noqa: F811
    d, a = srv.drive, srv.alice
    link = d.links.create(a, "/docs", "view")
    d.links.create(a, "/docs/a.txt", "view")
    gone = d.links.create(a, "/docs/sub", "view")
    d.links.revoke(a, gone.id)
    listing = _props(_propfind(srv, "/remote.php/webdav/"))
    assert _share_types(listing["/remote.php/webdav/x/"]) == [0]  # shared with bob
    assert _share_types(listing["/remote.php/webdav/docs/"]) == [3]
    assert _share_types(listing["/remote.php/webdav/"]) == []
    d.shares.create(a, "/docs", "bob", 1)
    docs = _props(_propfind(srv, "/remote.php/webdav/docs/"))
    assert _share_types(docs["/remote.php/webdav/docs/"]) == [0, 3]
    assert _share_types(docs["/remote.php/webdav/docs/a.txt"]) == [3]
    assert _share_types(docs["/remote.php/webdav/docs/sub/"]) == []  # its link was revoked
    alone = _props(_propfind(srv, "/dav/alice/docs/a.txt", depth="0"))
    assert _share_types(alone["/dav/alice/docs/a.txt"]) == [3]
    d.links.revoke(a, link.id)
    again = _props(_propfind(srv, "/remote.php/webdav/docs/", depth="0"))
    assert _share_types(again["/remote.php/webdav/docs/"]) == [0]
    # bob, the recipient, shared nothing himself
    bob = _props(_propfind(srv, "/dav/bob/", login="bob"))
    assert _share_types(bob["/dav/bob/x/"]) == []
    assert _share_types(bob["/dav/bob/docs/"]) == []


def test_s_on_everything_inside_a_received_share(srv) -> None:  # noqa: F811
    srv.drive.write_file(srv.alice, "/x/inner/deep.txt", b"d")
    bob = _props(_propfind(srv, "/dav/bob/x/inner/", login="bob"))
    assert _ok(bob["/dav/bob/x/inner/"], f"{OC}permissions") == "SG"
    assert _ok(bob["/dav/bob/x/inner/deep.txt"], f"{OC}permissions") == "SG"
    home = _props(_propfind(srv, "/dav/bob/", login="bob"))
    assert _ok(home["/dav/bob/"], f"{OC}permissions") == "RGDNVCK"  # his own: no S
    assert _ok(home["/dav/bob/x/"], f"{OC}permissions") == "SGDNV"  # no M: a share
    # the owner's own shared folder is not "shared with" her
    own = _props(_propfind(srv, "/dav/alice/"))
    assert _ok(own["/dav/alice/x/"], f"{OC}permissions") == "RGDNVCK"


@pytest.mark.parametrize(
    ("path", "login"),
    [
        ("/dav/alice/", "alice"),
        ("/dav/alice/docs/", "alice"),
        ("/remote.php/webdav/docs/sub/", "alice"),
        ("/dav/bob/", "bob"),
        ("/dav/bob/x/", "bob"),
    ],
)
@pytest.mark.parametrize("depth", ["0", "1"])
def test_fast_path_matches_wsgidav(srv, twice, path: str, login: str, depth: str) -> None:  # noqa: F811
    _fill(srv)
    d, a = srv.drive, srv.alice
    d.links.create(a, "/docs", "edit")
    d.links.create(a, "/docs/a.txt", "view")
    d.shares.create(a, "/docs/sub", "bob", 15)
    s = requests.Session()
    s.auth = (login, USERS[login])
    for body in (PROPS, SIZE_ONLY, SHARES_ONLY, BOTH):
        fast, slow, used_wsgidav = twice(s, srv.url + path, body, {"Depth": depth})
        assert fast.status_code == 207, fast.text
        _same(fast, slow)
        assert used_wsgidav == 0


@pytest.mark.parametrize("depth", ["0", "1"])
@pytest.mark.parametrize("route", ["fast", "wsgidav"])
def test_one_statement_each_and_only_when_asked(srv, monkeypatch, depth: str, route: str) -> None:  # noqa: F811
    """oc:size and oc:share-types each cost one statement per PROPFIND (a listing of many
    folders included); other property lists and allprop never compute them."""
    _fill(srv)
    for i in range(5):
        srv.drive.mkdir(srv.alice, f"/docs/f{i}")
        srv.drive.write_file(srv.alice, f"/docs/f{i}/x.bin", b"x" * i)
    srv.drive.links.create(srv.alice, "/docs/f1", "view")
    if route == "wsgidav":
        monkeypatch.setattr(
            provider_module, "handle_propfind", lambda _p, env, sr, default: default(env, sr)
        )
    s = requests.Session()
    s.auth = ("alice", USERS["alice"])
    url = srv.url + "/dav/alice/docs/"

    def cost(body: str | None) -> int:
        with _statements(srv) as count:
            r = s.request("PROPFIND", url, data=body, headers={"Depth": depth})
            assert r.status_code == 207, r.text
        return count[0]

    base = cost(NEITHER)
    assert cost(SIZE_ONLY) == base + 1
    assert cost(SHARES_ONLY) == base + 1
    assert cost(BOTH) == base + 2

    def never(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("computed without being asked")

    monkeypatch.setattr(Properties, "tree_sizes", never)
    monkeypatch.setattr(Properties, "share_types", never)
    allprop = '<?xml version="1.0"?><d:propfind xmlns:d="DAV:"><d:allprop/></d:propfind>'
    for body in (None, allprop, NEITHER):
        assert s.request("PROPFIND", url, data=body, headers={"Depth": depth}).status_code == 207
