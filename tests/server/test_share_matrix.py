"""The permission matrix of issue 10 against the real server: principals (owner, reader,
writer, stranger, links view/edit/upload/drop) × doors (WebDAV methods, the JSON API routes
that take a path or an id, the link's WebDAV, the ``/s/<token>`` pages, RFC 6578, the changes
feed and long-poll) → the expected status of each cell (``share_matrix_cases.py``).

One ``davdrive serve`` per module; every setup step goes over HTTP. A cell that writes works on
a file alice creates for it alone; a cell that expects a refusal (>= 400) also checks that
nothing changed: alice's whole tree (every entry with its ETag, size and revision), the dead
properties and locks of the shared folder's members, alice's trash, shares and links, the
acting user's own tree and trash, and the upload session the cell aimed at.
"""

from __future__ import annotations

import base64
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest
import requests
from defusedxml.ElementTree import fromstring

from tests.live import LiveServer
from tests.server.share_matrix_cases import CELLS, LINK_KINDS, USERS, Cell

API = "/api/v1"
TUS = {"Tus-Resumable": "1.0.0"}
PROPPATCH = (
    '<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:matrix">'
    "<D:set><D:prop><Z:mark>{value}</Z:mark></D:prop></D:set></D:propertyupdate>"
)
LOCKINFO = (
    '<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope>'
    "<D:locktype><D:write/></D:locktype><D:owner>matrix</D:owner></D:lockinfo>"
)
ALLPROP = '<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>'
A_TXT = b"a v2"  # /Team/Docs/a.txt (its second revision)
B_TXT = b"b in sub"
PRIVATE = b"private v2"
TIMEOUT = 30


# -- the world: one server, alice's tree, two shares, four links -------------------------------
@dataclass
class World:
    srv: LiveServer
    s: dict[str, requests.Session]
    links: dict[str, dict[str, Any]]  # kind -> the link as POST /links answered
    share_ids: dict[str, int]  # recipient -> id of its share of /Team/Docs
    priv_rev: str  # the first revision id of /Team/private.txt
    a_revs: list[str]  # the revision ids of /Team/Docs/a.txt
    pages_live: bool = True
    made: list[str] = field(default_factory=list)

    def call(self, login: str, method: str, path: str, **kw: Any) -> requests.Response:
        kw.setdefault("timeout", TIMEOUT)
        return self.s[login].request(method, f"{self.srv.url}{API}{path}", **kw)

    def ok(self, login: str, method: str, path: str, want: int, **kw: Any) -> requests.Response:
        r = self.call(login, method, path, **kw)
        assert r.status_code == want, f"setup {login} {method} {path}: {r.status_code} {r.text}"
        return r

    def upload(self, login: str, path: str, data: bytes) -> None:
        r = self.call(login, "POST", "/files/upload", params={"path": path}, data=data)
        assert r.status_code in (200, 201), f"setup upload {path}: {r.status_code} {r.text}"

    def mkdir(self, login: str, path: str) -> None:
        self.ok(login, "POST", "/files/create_folder", 201, json={"path": path})

    def read(self, path: str) -> bytes | None:
        """Alice's file content (None when there is none)."""
        r = self.call("alice", "GET", "/files/download", params={"path": path})
        return r.content if r.status_code == 200 else None

    def meta(self, path: str) -> dict[str, Any] | None:
        r = self.call("alice", "GET", "/files/metadata", params={"path": path})
        return r.json() if r.status_code == 200 else None

    def revs(self, path: str) -> list[dict[str, Any]]:
        r = self.ok("alice", "GET", "/files/list_revisions", 200, params={"path": path})
        return r.json()["revisions"]

    def tree(self, login: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        params: dict[str, Any] = {"path": "/", "recursive": "true", "limit": 2000}
        while True:
            body = self.ok(login, "GET", "/files/list", 200, params=params).json()
            out += body["entries"]
            if not body["has_more"]:
                return out
            params["cursor"] = body["cursor"]

    def trash(self, login: str) -> list[dict[str, Any]]:
        return self.ok(login, "GET", "/trash", 200).json()["items"]


def _session(login: str) -> requests.Session:
    s = requests.Session()
    s.auth = (login, USERS[login])
    return s


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    srv = LiveServer(tmp_path_factory.mktemp("share-matrix") / "data", users=USERS)
    srv.create_users()
    srv.start()
    failed = False
    try:
        w = World(srv, {u: _session(u) for u in USERS}, {}, {}, "", [])
        for folder in ("/Team", "/Team/Docs", "/Team/Docs/sub"):
            w.mkdir("alice", folder)
        w.upload("alice", "/Team/Docs/a.txt", b"a v1")
        w.upload("alice", "/Team/Docs/a.txt", A_TXT)
        w.upload("alice", "/Team/Docs/sub/b.txt", B_TXT)
        w.upload("alice", "/Team/private.txt", b"private v1")
        w.upload("alice", "/Team/private.txt", PRIVATE)
        w.priv_rev = w.revs("/Team/private.txt")[-1]["rev"]
        w.a_revs = [r["rev"] for r in w.revs("/Team/Docs/a.txt")]
        for user, perms in (("bob", 1), ("carol", 15)):
            body = {"path": "/Team/Docs", "user": user, "permissions": perms}
            w.share_ids[user] = w.ok("alice", "POST", "/shares", 201, json=body).json()["id"]
        for kind in LINK_KINDS:
            body = {"path": "/Team/Docs", "type": kind, "label": f"matrix {kind}"}
            w.links[kind] = w.ok("alice", "POST", "/links", 201, json=body).json()
        page = requests.get(w.links["view"]["url"], timeout=TIMEOUT)
        w.pages_live = page.status_code not in (404, 503)
        yield w
    except BaseException:
        failed = True
        raise
    finally:
        srv.stop()
        if failed:
            sys.stderr.write(f"\n--- davdrive serve stderr ---\n{srv.stderr()[-4000:]}\n")


# -- who sees the share where ------------------------------------------------------------------
@dataclass
class Viewer:
    who: str
    login: str | None  # whose credentials (None: a link's anonymous holder)
    dav: str  # URL of the shared folder as this viewer names it, with a trailing slash
    api: str | None = None  # the folder's path in the viewer's API tree
    page: str | None = None  # a link's page URL

    @property
    def auth(self) -> tuple[str, str] | None:
        return (self.login, USERS[self.login]) if self.login else None


def viewer(w: World, who: str) -> Viewer:
    url = w.srv.url
    if who.startswith("link:"):
        link = w.links[who.split(":", 1)[1]]
        return Viewer(who, None, link["dav_url"], None, link["url"])
    if who == "alice":
        return Viewer(who, "alice", f"{url}/dav/alice/Team/Docs/", "/Team/Docs")
    if who == "dave@Team":
        return Viewer(who, "dave", f"{url}/dav/dave/Team/Docs/", "/Team/Docs")
    if who.endswith("@alice-url"):
        login = who.split("@", 1)[0]
        return Viewer(who, login, f"{url}/dav/alice/Team/Docs/")
    return Viewer(who, who, f"{url}/dav/{who}/Docs/", "/Docs")


# -- one cell --------------------------------------------------------------------------------------
@dataclass
class Ctx:
    w: World
    cell: Cell
    v: Viewer
    slug: str
    rev1: str = ""  # the fresh file's first revision (restore, pin)
    share_id: int = 0  # a fresh share (share-patch, share-delete)
    link_id: int = 0  # a fresh link (link-patch, link-delete)
    sid: str = ""  # a fresh upload session of alice's
    trash_id: str = ""  # a fresh trash item of alice's
    after: list[Callable[[], None]] = field(default_factory=list)

    # names inside the shared folder (alice's path: /Team/Docs/<name>)
    @property
    def f(self) -> str:
        return f"f-{self.slug}.txt"

    @property
    def n(self) -> str:
        return f"n-{self.slug}.txt"

    @property
    def body(self) -> bytes:
        return f"written by {self.cell.who} in {self.slug}".encode()

    def dav(self, method: str, rel: str, **kw: Any) -> requests.Response:
        kw.setdefault("timeout", TIMEOUT)
        return requests.request(method, self.v.dav + rel, auth=self.v.auth, **kw)

    def api(self, method: str, path: str, **kw: Any) -> requests.Response:
        kw.setdefault("timeout", TIMEOUT)
        return requests.request(method, f"{self.w.srv.url}{API}{path}", auth=self.v.auth, **kw)

    def p(self, rel: str = "") -> str:
        """A path of the viewer's API tree inside the shared folder."""
        assert self.v.api is not None, f"{self.v.who} has no API view"
        return f"{self.v.api}/{rel}" if rel else self.v.api

    def page(self, suffix: str = "", **kw: Any) -> requests.Response:
        kw.setdefault("timeout", TIMEOUT)
        assert self.v.page is not None
        return requests.request(kw.pop("method", "GET"), self.v.page + suffix, **kw)


FRESH_FILE = (
    {
        ("dav", a)
        for a in (
            "PUT-existing",
            "DELETE",
            "MOVE",
            "COPY",
            "COPY-over",
            "PROPPATCH",
            "LOCK",
            "MOVE-out",
            "COPY-out",
            "COPY-to-alice-url",
        )
    }
    | {
        ("api", a)
        for a in (
            "upload-existing",
            "tus-create-existing",
            "delete",
            "move",
            "copy",
            "copy-over",
            "restore",
            "pin",
        )
    }
    | {("page", "upload-existing")}
)


def prepare(c: Ctx) -> None:
    """What alice (or the actor in its own tree) makes for this cell, before the snapshot."""
    w, key, action = c.w, (c.cell.door, c.cell.action), c.cell.action
    if key in FRESH_FILE:
        w.upload("alice", f"/Team/Docs/{c.f}", f"fresh {c.slug} v1".encode())
        if action in ("restore", "pin"):
            c.rev1 = w.revs(f"/Team/Docs/{c.f}")[-1]["rev"]
            w.upload("alice", f"/Team/Docs/{c.f}", f"fresh {c.slug} v2".encode())
    if key == ("dav", "DELETE-folder"):
        w.mkdir("alice", f"/Team/Docs/g-{c.slug}")
        w.upload("alice", f"/Team/Docs/g-{c.slug}/inner.txt", b"inner")
    if action == "COPY-own-to-alice-url" or action == "MOVE-own-to-alice-url":
        w.upload(c.v.login or "", f"/own-{c.slug}.txt", b"dave's own")
    if action in ("share-patch", "share-delete"):
        w.mkdir("alice", f"/Team/sh-{c.slug}")
        body = {"path": f"/Team/sh-{c.slug}", "user": "bob", "permissions": 1}
        c.share_id = w.ok("alice", "POST", "/shares", 201, json=body).json()["id"]
    if action in ("link-patch", "link-delete"):
        body = {"path": "/Team/Docs", "type": "view"}
        c.link_id = w.ok("alice", "POST", "/links", 201, json=body).json()["id"]
    if action.startswith("upload-session-"):
        r = w.ok(
            "alice",
            "POST",
            "/uploads",
            201,
            params={"path": f"/Team/Docs/u-{c.slug}.bin"},
            headers={**TUS, "Upload-Length": "4"},
        )
        c.sid = r.headers["Location"].rsplit("/", 1)[-1]
    if action.startswith("trash-"):
        w.upload("alice", f"/Team/t-{c.slug}.txt", b"to the trash")
        w.ok("alice", "POST", "/files/delete", 200, json={"path": f"/Team/t-{c.slug}.txt"})
        item = next(t for t in w.trash("alice") if t["path"] == f"/Team/t-{c.slug}.txt")
        c.trash_id = item["id"]


def snapshot(c: Ctx) -> dict[str, Any]:
    """Everything a refused request must leave as it was."""
    w = c.w
    props = w.s["alice"].request(
        "PROPFIND",
        f"{w.srv.url}/dav/alice/Team/Docs/",
        data=ALLPROP,
        headers={"Depth": "1"},
        timeout=TIMEOUT,
    )
    snap: dict[str, Any] = {
        "alice tree": w.tree("alice"),
        "alice props": (props.status_code, props.text),
        "alice trash": w.trash("alice"),
        "alice shares": w.ok("alice", "GET", "/shares", 200).json(),
        "alice links": w.ok("alice", "GET", "/links", 200).json(),
    }
    if c.sid:
        r = w.call("alice", "GET", f"/uploads/{c.sid}")
        snap["alice upload session"] = (r.status_code, r.text)
    if c.v.login and c.v.login != "alice":
        snap[f"{c.v.login} tree"] = w.tree(c.v.login)
        snap[f"{c.v.login} trash"] = w.trash(c.v.login)
        snap[f"{c.v.login} received"] = w.ok(
            c.v.login, "GET", "/shares", 200, params={"shared_with_me": "true"}
        ).json()
    return snap


def _sync_body(token: str = "") -> str:
    return (
        '<?xml version="1.0" encoding="utf-8"?><D:sync-collection xmlns:D="DAV:">'
        f"<D:sync-token>{token}</D:sync-token><D:sync-level>1</D:sync-level>"
        "<D:prop><D:getetag/></D:prop></D:sync-collection>"
    )


def _cursor(version_id: int) -> str:
    return base64.urlsafe_b64encode(f"rev:{version_id}".encode()).decode().rstrip("=")


# -- the doors -------------------------------------------------------------------------------------
def do_dav(c: Ctx) -> requests.Response:
    a, url = c.cell.action, c.w.srv.url
    if a == "GET":
        return c.dav("GET", "a.txt")
    if a == "GET-sub":
        return c.dav("GET", "sub/b.txt")
    if a == "HEAD":
        return c.dav("HEAD", "a.txt")
    if a == "PROPFIND":
        return c.dav("PROPFIND", "", headers={"Depth": "1"})
    if a == "PROPFIND-file":
        return c.dav("PROPFIND", "a.txt", headers={"Depth": "0"})
    if a == "PUT-existing":
        return c.dav("PUT", c.f, data=c.body)
    if a == "PUT-new":
        return c.dav("PUT", c.n, data=c.body)
    if a == "MKCOL":
        return c.dav("MKCOL", f"d-{c.slug}")
    if a == "MKCOL-existing":
        return c.dav("MKCOL", "sub")
    if a == "DELETE":
        return c.dav("DELETE", c.f)
    if a == "DELETE-folder":
        return c.dav("DELETE", f"g-{c.slug}/")
    if a in ("MOVE", "COPY"):
        dest = c.v.dav + (f"m-{c.slug}.txt" if a == "MOVE" else f"c-{c.slug}.txt")
        return c.dav(a, c.f, headers={"Destination": dest})
    if a == "COPY-over":
        return c.dav("COPY", "a.txt", headers={"Destination": c.v.dav + c.f, "Overwrite": "T"})
    if a == "PROPPATCH":
        return c.dav("PROPPATCH", c.f, data=PROPPATCH.format(value=f"mark-{c.slug}"))
    if a in ("LOCK", "LOCK-new"):
        rel = c.f if a == "LOCK" else c.n
        r = c.dav("LOCK", rel, data=LOCKINFO, headers={"Timeout": "Second-600"})
        token = r.headers.get("Lock-Token")
        if token:  # never leave a lock behind (its timeout would show in later snapshots)
            c.after.append(lambda: c.dav("UNLOCK", rel, headers={"Lock-Token": token}) and None)
        return r
    if a == "REPORT":
        return c.dav(
            "REPORT",
            "",
            data=_sync_body(),
            headers={"Content-Type": "application/xml", "Depth": "0"},
        )
    if a in ("MOVE-out", "COPY-out"):
        dest = f"{url}/dav/{c.v.login}/out-{c.slug}.txt"
        return c.dav(a.split("-")[0], c.f, headers={"Destination": dest})
    if a == "COPY-to-alice-url":
        dest = f"{url}/dav/alice/Team/Docs/p-{c.slug}.txt"
        return c.dav("COPY", c.f, headers={"Destination": dest})
    if a in ("COPY-own-to-alice-url", "MOVE-own-to-alice-url"):
        return requests.request(
            a.split("-")[0],
            f"{url}/dav/{c.v.login}/own-{c.slug}.txt",
            headers={"Destination": f"{url}/dav/alice/Team/Docs/p-{c.slug}.txt"},
            auth=c.v.auth,
            timeout=TIMEOUT,
        )
    if a == "GET-dotdot":
        return c.dav("GET", "%2e%2e/private.txt")
    if a == "PUT-dotdot":
        return c.dav("PUT", f"%2e%2e/%2e%2e/planted-{c.slug}.txt", data=c.body)
    if a == "GET-private-by-alice-path":
        return requests.get(
            f"{url}/dav/{c.v.login}/Team/private.txt", auth=c.v.auth, timeout=TIMEOUT
        )
    raise AssertionError(f"no WebDAV action {a}")


def do_api(c: Ctx) -> requests.Response:
    a, w = c.cell.action, c.w
    upload = {"uploadType": "media"}
    if a == "download":
        return c.api("GET", "/files/download", params={"path": c.p("a.txt")})
    if a in ("list", "list-recursive"):
        params = {"path": c.p(), "recursive": "true" if a == "list-recursive" else "false"}
        return c.api("GET", "/files/list", params=params)
    if a == "metadata":
        return c.api("GET", "/files/metadata", params={"path": c.p("a.txt")})
    if a == "metadata-folder":
        return c.api("GET", "/files/metadata", params={"path": c.p()})
    if a == "list_revisions":
        return c.api("GET", "/files/list_revisions", params={"path": c.p("a.txt")})
    if a == "upload-existing":
        return c.api("POST", "/files/upload", params={**upload, "path": c.p(c.f)}, data=c.body)
    if a == "upload-new":
        return c.api("POST", "/files/upload", params={**upload, "path": c.p(c.n)}, data=c.body)
    if a == "upload-resumable":
        return c.api(
            "POST",
            "/files/upload",
            params={"uploadType": "resumable", "path": c.p(c.n)},
            headers={**TUS, "Upload-Length": "5"},
        )
    if a in ("tus-create", "tus-create-existing"):
        target = c.p(c.n if a == "tus-create" else c.f)
        headers = {**TUS, "Upload-Length": "5"}
        return c.api("POST", "/uploads", params={"path": target}, headers=headers)
    if a == "tus-create-metadata":
        meta = "path " + base64.b64encode(c.p(c.n).encode()).decode()
        headers = {**TUS, "Upload-Length": "5", "Upload-Metadata": meta}
        return c.api("POST", "/uploads", headers=headers)
    if a == "restore":
        return c.api("POST", "/files/restore", json={"path": c.p(c.f), "rev": c.rev1})
    if a == "pin":
        return c.api("POST", "/files/pin", json={"path": c.p(c.f), "rev": c.rev1})
    if a == "create_folder":
        return c.api("POST", "/files/create_folder", json={"path": c.p(f"d-{c.slug}")})
    if a == "delete":
        return c.api("POST", "/files/delete", json={"path": c.p(c.f)})
    if a in ("move", "copy"):
        to = c.p(f"m-{c.slug}.txt" if a == "move" else f"c-{c.slug}.txt")
        return c.api("POST", f"/files/{a}", json={"from": c.p(c.f), "to": to})
    if a == "copy-over":
        body = {"from": c.p("a.txt"), "to": c.p(c.f), "overwrite": True}
        return c.api("POST", "/files/copy", json=body)
    if a == "share-create":
        user = "dave" if c.v.login != "dave" else "bob"
        r = c.api("POST", "/shares", json={"path": c.p(), "user": user, "permissions": 1})
        if r.status_code == 201:  # dave must stay a stranger for the other cells
            sid = r.json()["id"]
            c.after.append(lambda: w.ok("alice", "DELETE", f"/shares/{sid}", 204) and None)
        return r
    if a == "link-create":
        return c.api("POST", "/links", json={"path": c.p(), "type": "view"})
    if a == "shares-given-of-path":
        return c.api("GET", "/shares", params={"path": c.p()})
    # ids of alice's things
    if a == "download-priv-rev":
        params = {"path": c.p("a.txt"), "rev": w.priv_rev}
        return c.api("GET", "/files/download", params=params)
    if a in ("restore-priv-rev", "pin-priv-rev"):
        route = "/files/restore" if a.startswith("restore") else "/files/pin"
        return c.api("POST", route, json={"path": c.p("a.txt"), "rev": w.priv_rev})
    if a == "list_revisions-cursor-priv-rev":
        params = {"path": c.p("a.txt"), "cursor": _cursor(int(w.priv_rev) + 1)}
        return c.api("GET", "/files/list_revisions", params=params)
    if a == "share-get":
        return c.api("GET", f"/shares/{w.share_ids['bob']}")
    if a == "share-patch":
        return c.api("PATCH", f"/shares/{c.share_id}", json={"permissions": 3})
    if a == "share-delete":
        return c.api("DELETE", f"/shares/{c.share_id}")
    if a == "link-get":
        return c.api("GET", f"/links/{w.links['view']['id']}")
    if a == "link-patch":
        return c.api("PATCH", f"/links/{c.link_id}", json={"label": "changed", "max_uses": 1})
    if a == "link-delete":
        return c.api("DELETE", f"/links/{c.link_id}")
    if a == "upload-session-get":
        return c.api("GET", f"/uploads/{c.sid}")
    if a == "upload-session-head":
        return c.api("HEAD", f"/uploads/{c.sid}", headers=TUS)
    if a == "upload-session-patch":
        headers = {
            **TUS,
            "Upload-Offset": "0",
            "Content-Type": "application/offset+octet-stream",
        }
        return c.api("PATCH", f"/uploads/{c.sid}", headers=headers, data=b"evil")
    if a == "upload-session-delete":
        return c.api("DELETE", f"/uploads/{c.sid}", headers=TUS)
    if a == "trash-restore-id":
        return c.api("POST", "/trash/restore", json={"id": int(c.trash_id)})
    if a == "trash-purge-id":
        return c.api("DELETE", "/trash", params={"id": c.trash_id})
    if a == "trash-restore-path":
        return c.api("POST", "/trash/restore", json={"path": f"/Team/t-{c.slug}.txt"})
    if a == "trash-list":
        return c.api("GET", "/trash")
    if a == "private-by-path":
        return c.api("GET", "/files/download", params={"path": "/Team/private.txt"})
    if a == "private-dotdot":
        return c.api("GET", "/files/download", params={"path": c.p("../private.txt")})
    raise AssertionError(f"no API action {a}")


def do_page(c: Ctx) -> requests.Response:
    a = c.cell.action
    if a == "page":
        return c.page()
    if a == "page-file":
        return c.page(params={"path": "/a.txt"})
    if a == "page-folder":
        return c.page(params={"path": "/sub"})
    if a == "download":
        return c.page("/download", params={"path": "/a.txt"})
    if a == "zip":
        return c.page("/zip")
    if a in ("upload-new", "upload-existing"):
        name = c.n if a == "upload-new" else c.f
        return c.page("/upload", method="PUT", params={"path": f"/{name}"}, data=c.body)
    if a == "page-dotdot":
        return c.page(params={"path": "/../private.txt"})
    raise AssertionError(f"no page action {a}")


DOORS = {"dav": do_dav, "api": do_api, "page": do_page}


# -- what a success must have done ------------------------------------------------------------
def _hrefs(r: requests.Response) -> list[str]:
    root = fromstring(r.content)
    return [h.text or "" for h in root.iter("{DAV:}href")]


def verify(c: Ctx, r: requests.Response) -> None:
    """The effect of an allowed request, seen from alice's side (or in the answer)."""
    w, a, door, who = c.w, c.cell.action, c.cell.door, c.cell.who
    docs = "/Team/Docs/"
    drop = who == "link:drop"
    outsider = who != "alice"
    if door == "dav":
        if a == "GET":
            assert r.content == A_TXT
        elif a == "GET-sub":
            assert r.content == B_TXT
        elif a == "PROPFIND":
            hrefs = _hrefs(r)
            if drop:
                assert len(hrefs) == 1, f"a drop link lists {hrefs}"
            else:
                assert any(h.endswith("/a.txt") for h in hrefs), hrefs
                assert any(h.rstrip("/").endswith("/sub") for h in hrefs), hrefs
            if outsider:
                assert "Team" not in r.text and "private" not in r.text, r.text
            if who.startswith("link:"):
                assert "alice" not in r.text, "a link shows the owner's login"
        elif a == "PUT-existing":
            if drop:
                assert w.read(docs + c.f) == f"fresh {c.slug} v1".encode(), "drop overwrote"
                assert w.read(f"{docs}f-{c.slug} (2).txt") == c.body, "drop not renamed"
            else:
                assert w.read(docs + c.f) == c.body
        elif a == "PUT-new":
            assert w.read(docs + c.n) == c.body
        elif a == "MKCOL":
            assert (w.meta(f"{docs}d-{c.slug}") or {}).get("is_dir") is True
        elif a in ("DELETE", "DELETE-folder"):
            name = c.f if a == "DELETE" else f"g-{c.slug}"
            assert w.meta(docs + name) is None
            assert any(t["path"] == docs + name for t in w.trash("alice")), "not in alice's trash"
        elif a == "MOVE":
            assert w.meta(docs + c.f) is None and w.read(f"{docs}m-{c.slug}.txt") is not None
        elif a == "COPY":
            assert w.read(docs + c.f) == w.read(f"{docs}c-{c.slug}.txt") is not None
        elif a == "COPY-over":
            assert w.read(docs + c.f) == A_TXT
        elif a == "PROPPATCH":
            got = w.s["alice"].request(
                "PROPFIND", f"{w.srv.url}/dav/alice{docs}{c.f}", data=ALLPROP, timeout=TIMEOUT
            )
            assert f"mark-{c.slug}" in got.text, "the property did not land on alice's file"
        elif a == "LOCK-new":
            assert w.meta(docs + c.n) is not None
        elif a == "REPORT":
            assert any(h.endswith("/a.txt") for h in _hrefs(r)), r.text
    elif door == "api":
        if a == "download":
            assert r.content == A_TXT
        elif a in ("list", "list-recursive"):
            names = {e["name"] for e in r.json()["entries"]}
            assert {"a.txt", "sub"} <= names, names
            if a == "list-recursive":
                assert "b.txt" in names, names
        elif a in ("upload-existing", "upload-new"):
            assert w.read(docs + (c.f if a == "upload-existing" else c.n)) == c.body
        elif a == "restore":
            assert w.read(docs + c.f) == f"fresh {c.slug} v1".encode()
        elif a == "pin":
            pinned = {v["rev"]: v["pinned"] for v in w.revs(docs + c.f)}
            assert pinned[c.rev1] is True
        elif a == "create_folder":
            assert (w.meta(f"{docs}d-{c.slug}") or {}).get("is_dir") is True
        elif a == "delete":
            assert w.meta(docs + c.f) is None
            trashed = [t for t in w.trash("alice") if t["path"] == docs + c.f]
            assert trashed, "a recipient's delete is not in the owner's trash"
        elif a == "move":
            assert w.meta(docs + c.f) is None and w.read(f"{docs}m-{c.slug}.txt") is not None
        elif a == "copy":
            assert w.read(docs + c.f) == w.read(f"{docs}c-{c.slug}.txt") is not None
        elif a == "copy-over":
            assert w.read(docs + c.f) == A_TXT
        elif a == "shares-given-of-path":
            got = sorted(s["user"] for s in r.json()["shares"])
            assert got == (["bob", "carol"] if who == "alice" else []), got
        elif a == "list_revisions-cursor-priv-rev":
            revs = {v["rev"] for v in r.json()["revisions"]}
            assert revs <= set(w.a_revs), f"revisions of another file: {revs - set(w.a_revs)}"
        elif a == "trash-list":
            ids = {t["id"] for t in r.json()["items"]}
            if outsider:
                assert c.trash_id not in ids, "alice's trash shown to another user"
            else:
                assert c.trash_id in ids
        elif a == "share-get":
            assert r.json()["id"] == w.share_ids["bob"]
    elif door == "page":
        text = r.text if r.headers.get("Content-Type", "").startswith("text/") else ""
        if text:
            assert "Team" not in text and "alice" not in text, "a link page shows what is above"
        if a in ("page", "page-folder", "page-file") and drop:
            assert "a.txt" not in text and "b.txt" not in text, "a drop page lists files"
        if a == "page" and not drop:
            assert "a.txt" in text and "sub" in text
        if a == "download":
            assert r.content == A_TXT
        if a == "upload-new":
            assert w.read(docs + c.n) == c.body
        if a == "upload-existing":
            if drop:
                assert w.read(docs + c.f) == f"fresh {c.slug} v1".encode(), "drop overwrote"
                assert w.read(f"{docs}f-{c.slug} (2).txt") == c.body, "drop not renamed"
                assert "name" not in r.json(), "a drop tells the name it renamed to"
            else:
                assert w.read(docs + c.f) == c.body


def _diff(old: Any, new: Any) -> str:
    """What changed between two snapshots of one thing (short)."""
    if isinstance(old, dict) and isinstance(new, dict) and set(old) == {"links"}:
        old, new = old["links"], new["links"]
    if isinstance(old, list) and isinstance(new, list):
        gone = [x for x in old if x not in new]
        came = [x for x in new if x not in old]
        return f"gone {gone!r:.400} came {came!r:.400}"
    return f"{old!r:.200} -> {new!r:.200}"


# -- the matrix ------------------------------------------------------------------------------------
SLUGS = {cell.id: f"c{i:03d}" for i, cell in enumerate(CELLS)}


def test_matrix_ids_are_unique() -> None:
    assert len(SLUGS) == len(CELLS), "two cells share an id"


@pytest.mark.parametrize("cell", CELLS, ids=[c.id for c in CELLS])
def test_cell(world: World, cell: Cell) -> None:
    if cell.door == "page" and not world.pages_live:
        pytest.xfail("link pages not routed yet")
    c = Ctx(world, cell, viewer(world, cell.who), SLUGS[cell.id])
    prepare(c)
    before = snapshot(c) if cell.refusal else None
    try:
        r = DOORS[cell.door](c)
    finally:
        for undo in c.after:
            undo()
    where = f"{cell.who} {r.request.method} {r.request.url}"
    want = cell.expect if isinstance(cell.expect, tuple) else (cell.expect,)
    if cell.door == "page" and r.status_code in (404, 503) and r.status_code not in want:
        pytest.xfail(f"link pages not routed yet ({where} -> {r.status_code})")
    problems = []
    if r.status_code not in want:
        problems.append(f"{where}: {r.status_code} (want {cell.expect}) {r.text[:300]!r}")
    if before is not None:
        after = snapshot(c)
        changed = [k for k in before if before[k] != after.get(k)]
        if changed:
            diffs = "; ".join(f"{k}: {_diff(before[k], after.get(k))}" for k in changed)
            problems.append(f"{where} was refused but changed {diffs}")
    elif r.status_code in want:
        try:
            verify(c, r)
        except AssertionError as exc:
            problems.append(f"{where} answered {r.status_code} but: {exc}")
    assert not problems, "\n".join(problems)


# -- RFC 6578, the changes feed and long-poll for a recipient ----------------------------------
def _report(w: World, login: str, rel: str, token: str = "") -> requests.Response:
    return w.s[login].request(
        "REPORT",
        f"{w.srv.url}/dav/{login}/{rel}",
        data=_sync_body(token),
        headers={"Content-Type": "application/xml", "Depth": "0"},
        timeout=TIMEOUT,
    )


def _sync(r: requests.Response) -> tuple[dict[str, str], str]:
    assert r.status_code == 207, (r.status_code, r.text[:300])
    root = fromstring(r.content)
    out = {}
    for resp in root.findall("{DAV:}response"):
        href = resp.findtext("{DAV:}href") or ""
        status = resp.findtext("{DAV:}status") or ""
        out[href] = "gone" if "404" in status else "present"
    return out, root.findtext("{DAV:}sync-token") or ""


def test_sync_collection_shows_every_writer_to_the_recipients(world: World) -> None:
    """bob's and carol's RFC 6578 reports of their mount show alice's and carol's writes at
    their own paths, and nothing of alice's outside the share."""
    w = world
    first_bob, token_bob = _sync(_report(w, "bob", "Docs/"))
    assert "/dav/bob/Docs/a.txt" in first_bob and "/dav/bob/Docs/sub/" in first_bob
    assert not [h for h in first_bob if "private" in h or "Team" in h], first_bob
    _, token_carol = _sync(_report(w, "carol", "Docs/"))
    w.upload("alice", "/Team/Docs/sync-alice.txt", b"from alice")
    w.upload("alice", "/Team/sync-private.txt", b"not shared")
    put = w.s["carol"].put(f"{w.srv.url}/dav/carol/Docs/sync-carol.txt", data=b"c", timeout=30)
    assert put.status_code == 201, put.text
    want = {"sync-alice.txt": "present", "sync-carol.txt": "present"}
    for login, token in (("bob", token_bob), ("carol", token_carol)):
        got, _ = _sync(_report(w, login, "Docs/", token))
        assert got == {f"/dav/{login}/Docs/{k}": v for k, v in want.items()}, (login, got)
    # a recipient's token is no key to the owner's other folders
    r = _report(w, "bob", "Team/", token_bob)
    assert r.status_code == 404, (r.status_code, r.text[:200])
    r = w.s["bob"].request(
        "REPORT",
        f"{w.srv.url}/dav/alice/Team/",
        data=_sync_body(token_bob),
        headers={"Content-Type": "application/xml", "Depth": "0"},
        timeout=TIMEOUT,
    )
    assert r.status_code == 404, (r.status_code, r.text[:200])


def _feed(w: World, login: str, cursor: str) -> list[tuple[str, str]]:
    r = w.ok(login, "GET", "/changes", 200, params={"cursor": cursor})
    return [(c["kind"], c["path"]) for c in r.json()["changes"]]


def test_changes_feed_of_owner_recipients_and_stranger(world: World) -> None:
    w = world
    cursors = {u: w.ok(u, "GET", "/changes/latest", 200).json()["cursor"] for u in USERS}
    w.upload("alice", "/Team/Docs/feed.txt", b"feed")
    w.upload("alice", "/Team/feed-private.txt", b"private")
    w.ok("carol", "POST", "/files/create_folder", 201, json={"path": "/Docs/feed-dir"})
    assert _feed(w, "alice", cursors["alice"]) == [
        ("created", "/Team/Docs/feed.txt"),
        ("created", "/Team/feed-private.txt"),
        ("created", "/Team/Docs/feed-dir"),
    ]
    for login in ("bob", "carol"):
        got = _feed(w, login, cursors[login])
        assert got == [("created", "/Docs/feed.txt"), ("created", "/Docs/feed-dir")], login
    assert _feed(w, "dave", cursors["dave"]) == []
    # someone else's cursor: a reset (410) or the caller's own journal, never the owner's
    for login in ("bob", "carol", "dave"):
        r = w.call(login, "GET", "/changes", params={"cursor": cursors["alice"]})
        assert r.status_code in (200, 410), (login, r.status_code, r.text)
        paths = [c["path"] for c in r.json().get("changes", [])]
        assert not [p for p in paths if "private" in p or p.startswith("/Team")], (login, paths)


def _park(w: World, login: str, timeout: int) -> tuple[threading.Thread, dict[str, Any]]:
    cursor = w.ok(login, "GET", "/changes/latest", 200).json()["cursor"]
    out: dict[str, Any] = {}

    def poll() -> None:
        r = w.call(login, "GET", "/longpoll", params={"cursor": cursor, "timeout": timeout})
        out["at"] = time.monotonic()
        out["status"], out["body"] = r.status_code, r.json()

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    return thread, out


def test_long_poll_wakes_recipients_only_for_the_share(world: World) -> None:
    """Parked long-polls: alice's write outside the share wakes no one else; her write inside
    wakes bob and carol within a second; dave sleeps to his timeout."""
    w = world
    polls = {u: _park(w, u, 4) for u in ("bob", "carol", "dave")}
    time.sleep(0.5)
    w.upload("alice", "/Team/lp-private.txt", b"private")
    time.sleep(1.0)
    for login, (thread, _) in polls.items():
        assert thread.is_alive(), f"{login}'s long-poll woke for alice's private write"
    sent = time.monotonic()
    w.upload("alice", "/Team/Docs/lp.txt", b"shared")
    for login in ("bob", "carol"):
        thread, out = polls[login]
        thread.join(3)
        assert out.get("body") == {"changes": True}, (login, out)
        assert out["at"] - sent < 1.0, f"{login} woke after {out['at'] - sent:.2f}s"
    thread, out = polls["dave"]
    thread.join(6)
    assert out.get("status") == 200 and out.get("body") == {"changes": False}, out


# -- dead links, and link limits across a restart -------------------------------------------------
def _link_doors(w: World, link: dict[str, Any]) -> dict[str, int]:
    dav, page = link["dav_url"], link["url"]
    out = {
        "PROPFIND": requests.request("PROPFIND", dav, headers={"Depth": "1"}, timeout=30),
        "GET a.txt": requests.get(dav + "a.txt", timeout=30),
        "PUT dead.txt": requests.put(dav + "dead.txt", data=b"x", timeout=30),
    }
    if w.pages_live:
        out["page"] = requests.get(page, timeout=30)
        out["page download"] = requests.get(
            page + "/download", params={"path": "/a.txt"}, timeout=30
        )
    return {k: r.status_code for k, r in out.items()}


def _new_link(w: World, **settings: Any) -> dict[str, Any]:
    body = {"path": "/Team/Docs", "type": settings.pop("type", "view"), **settings}
    return w.ok("alice", "POST", "/links", 201, json=body).json()


def test_revoked_and_unknown_links_answer_404_everywhere(world: World) -> None:
    w = world
    link = _new_link(w, type="edit")
    assert w.ok("alice", "DELETE", f"/links/{link['id']}", 204)
    unknown = dict(link, dav_url=link["dav_url"].replace(link["token"], "x" * 32))
    unknown["url"] = link["url"].replace(link["token"], "x" * 32)
    tree = w.tree("alice")
    for what, dead in (("revoked", link), ("unknown", unknown)):
        got = _link_doors(w, dead)
        assert set(got.values()) == {404}, (what, got)
    assert w.tree("alice") == tree


def test_link_expiry_and_max_uses_hold_across_a_restart(world: World) -> None:
    w = world
    once = _new_link(w, max_uses=1)
    soon = _new_link(w, expires=time.time() + 3)
    first = requests.get(once["dav_url"] + "a.txt", timeout=30)
    assert first.status_code == 200 and first.content == A_TXT
    assert requests.get(once["dav_url"] + "a.txt", timeout=30).status_code == 404
    assert requests.request("PROPFIND", soon["dav_url"], timeout=30).status_code == 207

    w.srv.restart()

    assert set(_link_doors(w, once).values()) == {404}, "a used-up link came back"
    got = w.ok("alice", "GET", f"/links/{once['id']}", 200).json()
    assert (got["uses"], got["active"]) == (1, False), got
    time.sleep(max(0.0, soon_expiry(soon) + 0.2 - time.time()))
    assert set(_link_doors(w, soon).values()) == {404}, "an expired link still answers"
    assert w.ok("alice", "GET", f"/links/{soon['id']}", 200).json()["active"] is False


def soon_expiry(link: dict[str, Any]) -> float:
    return datetime.fromisoformat(link["expires"].replace("Z", "+00:00")).timestamp()


def test_refused_writes_do_not_use_up_a_link(world: World) -> None:
    """A use is a file downloaded or uploaded: a refused PUT through a view link is neither, so
    a link with one use left still serves its download afterwards."""
    w = world
    link = _new_link(w, max_uses=1)
    refused = requests.put(link["dav_url"] + "burn.txt", data=b"x", timeout=30)
    assert refused.status_code == 403
    uses = w.ok("alice", "GET", f"/links/{link['id']}", 200).json()["uses"]
    got = requests.get(link["dav_url"] + "a.txt", timeout=30)
    assert (uses, got.status_code) == (0, 200), "a refused PUT counted as a use of the link"
