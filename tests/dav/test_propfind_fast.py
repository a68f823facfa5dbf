"""The PROPFIND fast path (providers/propfind.py) answers what WsgiDAV's own ``do_PROPFIND``
answers: the same hrefs, properties, values, namespaces and status lines, byte for byte.

Every request is sent twice to the in-process server: once as served (fast path), once with
the fast path switched off (WsgiDAV builds the lxml tree). The folder mixes plain files and
folders, non-ASCII and XML-special names, dead properties on a file and on a folder, and locks
on a file and on a folder.
"""

from __future__ import annotations

import re

import pytest
import requests
from lxml import etree
from wsgidav.request_server import RequestServer

import providers.provider as provider_module

DAV = "{DAV:}"
LOCKINFO = (
    '<?xml version="1.0" encoding="utf-8"?><D:lockinfo xmlns:D="DAV:">'
    "<D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype>"
    "<D:owner><D:href>mailto:alice@example.com</D:href></D:owner></D:lockinfo>"
)
NAMES = [
    "plain.txt",
    "Résumé 2026.pdf",  # non-ASCII, space
    "日本語.md",
    "a&b <c> 'q'.txt",  # XML-special characters in the display name and href
    "pct%41;semi#hash+plus=.txt",
    "archive.tar.gz",
    "noext",
    ".hidden",
    "(paren)!*$,|.txt",  # characters get_href leaves unquoted
]
ALLPROP = '<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>'
NAMED = (
    '<?xml version="1.0"?><D:propfind xmlns:D="DAV:" xmlns:oc="http://owncloud.org/ns"'
    ' xmlns:x="urn:example:props"><D:prop><oc:id/><D:resourcetype/><D:getcontentlength/>'
    "<D:getlastmodified/><D:getetag/><x:color/><D:quota-used-bytes/><D:getcontenttype/>"
    "<D:creationdate/><D:displayname/><D:lockdiscovery/><D:supportedlock/>"
    "<D:quota-available-bytes/><D:nosuchprop/><oc:permissions/><plain/></D:prop></D:propfind>"
)
NAMED_SHORT = (  # what rclone and davfs2 ask
    '<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><D:resourcetype/>'
    "<D:getlastmodified/><D:getcontentlength/><D:getetag/></D:prop></D:propfind>"
)
NAME_MODE = '<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:name/></D:propfind>'
PROPNAME = '<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:propname/></D:propfind>'
EMPTY_PROP = '<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop/></D:propfind>'
BODIES = {
    "empty": "",
    "allprop": ALLPROP,
    "named": NAMED,
    "named-short": NAMED_SHORT,
    "name": NAME_MODE,
    "propname": PROPNAME,
    "empty-prop": EMPTY_PROP,
}


def _proppatch(color: str) -> str:
    return (
        '<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:x="urn:example:props">'
        f"<D:set><D:prop><x:color>{color}</x:color>"
        '<x:nested><x:a n="1">b</x:a></x:nested></D:prop></D:set></D:propertyupdate>'
    )


@pytest.fixture
def tree(dav_server):
    """alice's /wide/ folder with everything the fast path must render or hand back."""
    s = requests.Session()
    s.auth = dav_server.auth("alice")
    base = dav_server.dav("alice")

    def u(path: str) -> str:
        return base + requests.utils.quote(path)

    assert s.request("MKCOL", u("wide/")).status_code == 201
    for name in NAMES:
        assert s.put(u(f"wide/{name}"), data=name.encode()).status_code == 201
    assert s.put(u("wide/empty.bin"), data=b"").status_code == 201
    for folder in ("sub", "Ünïcode folder", "propfolder", "lockedfolder"):
        assert s.request("MKCOL", u(f"wide/{folder}/")).status_code == 201
    assert s.put(u("wide/props.txt"), data=b"p").status_code == 201
    assert s.put(u("wide/locked.docx"), data=b"l").status_code == 201
    for target in ("wide/props.txt", "wide/propfolder/", "wide/"):
        r = s.request("PROPPATCH", u(target), data=_proppatch("blue").encode())
        assert r.status_code == 207, r.text
    for target in ("wide/locked.docx", "wide/lockedfolder/"):
        r = s.request("LOCK", u(target), data=LOCKINFO, headers={"Timeout": "Second-3600"})
        assert r.status_code == 200, r.text
    return s, u


@pytest.fixture
def twice(monkeypatch):
    """Send a PROPFIND through the fast path, then through WsgiDAV alone; both responses."""
    calls = {"wsgidav": 0}
    original = RequestServer.do_PROPFIND

    def counting(self, environ, start_response):
        calls["wsgidav"] += 1
        return original(self, environ, start_response)

    monkeypatch.setattr(RequestServer, "do_PROPFIND", counting)
    fast = provider_module.handle_propfind

    def send(s, url: str, body: str, headers: dict[str, str]) -> tuple[requests.Response, ...]:
        monkeypatch.setattr(provider_module, "handle_propfind", fast)
        calls["wsgidav"] = 0
        a = s.request("PROPFIND", url, data=body.encode(), headers=headers)
        used_wsgidav = calls["wsgidav"]
        monkeypatch.setattr(
            provider_module, "handle_propfind", lambda _p, env, sr, default: default(env, sr)
        )
        b = s.request("PROPFIND", url, data=body.encode(), headers=headers)
        monkeypatch.setattr(provider_module, "handle_propfind", fast)
        return a, b, used_wsgidav

    return send


_TIMEOUT = re.compile(rb"<D:timeout>Second-\d+</D:timeout>")


def _normal(body: bytes) -> bytes:
    """The remaining lock time is read from the clock: the two answers may differ by 1 s."""
    return _TIMEOUT.sub(b"<D:timeout>Second-N</D:timeout>", body)


def _by_href(body: bytes) -> dict[str, dict[tuple[str, str], bytes]]:
    """href -> {(status, property name): canonical value}."""
    out: dict[str, dict[tuple[str, str], bytes]] = {}
    root = etree.fromstring(_normal(body))
    assert root.tag == f"{DAV}multistatus"
    for response in root.findall(f"{DAV}response"):
        href = response.findtext(f"{DAV}href")
        assert href not in out, f"duplicate {href}"
        props: dict[tuple[str, str], bytes] = {}
        for propstat in response.findall(f"{DAV}propstat"):
            status = propstat.findtext(f"{DAV}status")
            for el in propstat.find(f"{DAV}prop"):
                value = (el.text or "").encode() + b"".join(
                    etree.tostring(child, method="c14n") for child in el
                )
                props[(status, el.tag)] = value
        out[href] = props
    return out


def _same(a: requests.Response, b: requests.Response) -> None:
    assert a.status_code == b.status_code
    assert a.headers.get("Content-Type") == b.headers.get("Content-Type")
    if a.status_code != 207:
        return
    assert _by_href(a.content) == _by_href(b.content)
    assert _normal(a.content) == _normal(b.content)  # and byte for byte


@pytest.mark.parametrize("body", sorted(BODIES))
def test_folder_listing_matches_wsgidav(tree, twice, body):
    s, u = tree
    fast, slow, used_wsgidav = twice(s, u("wide/"), BODIES[body], {"Depth": "1"})
    assert fast.status_code == 207, fast.text
    _same(fast, slow)
    hrefs = _by_href(fast.content)
    assert len(hrefs) == 1 + len(NAMES) + 7  # + empty.bin, 4 folders, props, locked
    if body != "propname":  # <propname/> is left to WsgiDAV (which reads <name/>)
        assert used_wsgidav == 0, "the fast path did not answer"


SINGLE = [
    "wide/",
    "wide/plain.txt",
    "wide/props.txt",
    "wide/locked.docx",
    "wide/sub/",
    "wide/lockedfolder/",
    "wide/日本語.md",
]


@pytest.mark.parametrize("body", ["empty", "named", "name"])
@pytest.mark.parametrize("path", SINGLE)
@pytest.mark.parametrize("depth", ["0", "1"])
def test_single_resources_match_wsgidav(tree, twice, body, path, depth):
    s, u = tree
    fast, slow, used_wsgidav = twice(s, u(path), BODIES[body], {"Depth": depth})
    assert fast.status_code == 207, fast.text
    _same(fast, slow)
    assert used_wsgidav == 0


def test_home_and_no_depth_header(tree, twice):
    s, u = tree
    fast, slow, _ = twice(s, u(""), "", {})  # no Depth: 1 (provider rule), not infinity
    _same(fast, slow)
    assert len(_by_href(fast.content)) == 2  # the home and wide/


def test_values_are_right(tree):
    """Spot checks of the fast answer itself (not only its equality with WsgiDAV's)."""
    s, u = tree
    r = s.request("PROPFIND", u("wide/"), headers={"Depth": "1"})
    hrefs = _by_href(r.content)
    ok = "HTTP/1.1 200 OK"
    f = hrefs["/dav/alice/wide/R%C3%A9sum%C3%A9%202026.pdf"]
    assert f[(ok, f"{DAV}displayname")] == "Résumé 2026.pdf".encode()
    assert f[(ok, f"{DAV}getcontenttype")] == b"application/pdf"
    assert f[(ok, f"{DAV}getcontentlength")] == str(len("Résumé 2026.pdf".encode())).encode()
    assert f[(ok, f"{DAV}getetag")].startswith(b'"')
    special = hrefs["/dav/alice/wide/a%26b%20%3Cc%3E%20'q'.txt"]
    assert special[(ok, f"{DAV}displayname")] == b"a&b <c> 'q'.txt"
    assert "/dav/alice/wide/(paren)!*$,|.txt" in hrefs
    assert (ok, f"{DAV}resourcetype") in hrefs["/dav/alice/wide/%C3%9Cn%C3%AFcode%20folder/"]
    props = hrefs["/dav/alice/wide/props.txt"]
    assert props[(ok, "{urn:example:props}color")] == b"blue"
    locked = hrefs["/dav/alice/wide/locked.docx"]
    assert b"opaquelocktoken" in locked[(ok, f"{DAV}lockdiscovery")]
    assert hrefs["/dav/alice/wide/plain.txt"][(ok, f"{DAV}lockdiscovery")] == b""


@pytest.mark.parametrize(
    "headers",
    [{"Depth": "1", "If-None-Match": '"nope"'}, {"Depth": "1", "If-Modified-Since": "x"}],
)
def test_conditional_requests_go_to_wsgidav(tree, twice, headers):
    s, u = tree
    fast, slow, used_wsgidav = twice(s, u("wide/"), "", headers)
    _same(fast, slow)
    assert used_wsgidav == 1


@pytest.mark.parametrize(
    "body",
    [
        "<D:propfind xmlns:D='DAV:'><D:allprop/><D:prop><D:getetag/></D:prop></D:propfind>",
        "<D:propfind xmlns:D='DAV:'><D:allprop/><D:include><D:getetag/></D:include></D:propfind>",
        "<D:propertyupdate xmlns:D='DAV:'/>",
        "<D:propfind xmlns:D='DAV:'><D:prop><x:a xmlns:x='urn:a&amp;b'/></D:prop></D:propfind>",
    ],
)
def test_unusual_bodies_go_to_wsgidav(tree, twice, body):
    s, u = tree
    fast, slow, used_wsgidav = twice(s, u("wide/"), body, {"Depth": "1"})
    _same(fast, slow)
    assert used_wsgidav == 1


def test_missing_and_infinity(tree, twice):
    s, u = tree
    fast, slow, _ = twice(s, u("wide/nothing-here/"), "", {"Depth": "1"})
    assert fast.status_code == slow.status_code == 404
    r = s.request("PROPFIND", u("wide/"), headers={"Depth": "infinity"})
    assert r.status_code == 403


def test_deep_folder_and_gzip_names(dav_server, twice):
    """A folder deeper than one resolving statement reaches (``lookup.MAX_CHAIN``) lists
    through the step-by-step walk; compressed and suffix-aliased names keep their types."""
    p = dav_server.principal("alice")
    path = ""
    for i in range(34):
        path += f"/d{i}"
        dav_server.drive.mkdir(p, path)
    for name in ("a.tgz", "b.TXT.gz", "c.svgz", "data:x.txt", "...txt", ".a.md"):
        dav_server.drive.write_file(p, f"{path}/{name}", b"x")
    s = requests.Session()
    s.auth = dav_server.auth("alice")
    url = dav_server.dav("alice") + path.lstrip("/") + "/"
    fast, slow, used_wsgidav = twice(s, url, "", {"Depth": "1"})
    assert fast.status_code == 207, fast.text
    _same(fast, slow)
    assert used_wsgidav == 0
    assert len(_by_href(fast.content)) == 7
