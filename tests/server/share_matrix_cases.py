"""The table of ``test_share_matrix.py``: who (a principal, as it reaches alice's shared
``/Team/Docs``) × door (an action on a WebDAV method, a JSON API route or a link page) → the
expected status.

Principals and where each one names the shared folder:

==================  ==========================  =============================================
who                 WebDAV base                 API base / notes
==================  ==========================  =============================================
``alice``           ``/dav/alice/Team/Docs/``   ``/Team/Docs`` (the owner)
``bob``             ``/dav/bob/Docs/``          ``/Docs`` (share, read 1)
``carol``           ``/dav/carol/Docs/``        ``/Docs`` (share, read-write 15)
``dave``            ``/dav/dave/Docs/``         ``/Docs`` (stranger: no such folder for him)
``dave@Team``       ``/dav/dave/Team/Docs/``    ``/Team/Docs`` (alice's path: dave's own tree)
``dave@alice-url``  ``/dav/alice/Team/Docs/``   dave's credentials on alice's URL
``bob@alice-url``   ``/dav/alice/Team/Docs/``   bob's credentials on alice's URL
``link:<kind>``     ``/s/<token>/dav/``         ``/s/<token>`` pages (anonymous)
==================  ==========================  =============================================

Targets (created fresh by alice for each cell that needs them, so cells do not depend on each
other): ``a.txt`` (stable, content ``a v2``), ``f-<slug>.txt`` (a fresh file of the cell),
``n-<slug>.txt`` (a new name), ``d-<slug>`` (a new folder), ``m-``/``c-<slug>.txt`` (move and copy
destinations inside the share).
"""

from __future__ import annotations

from dataclasses import dataclass

USERS = {
    "alice": "alice-pw",
    "bob": "bob-pw",
    "carol": "carol-pw",
    "dave": "dave-pw",
}
LINK_KINDS = ("view", "edit", "upload", "drop")


@dataclass(frozen=True)
class Cell:
    who: str
    door: str  # "dav", "api", "page"
    action: str
    expect: int | tuple[int, ...]  # a tuple: any of these (path tricks only; said why)

    @property
    def id(self) -> str:
        want = "|".join(map(str, self.expect)) if isinstance(self.expect, tuple) else self.expect
        return f"{self.who}-{self.door}-{self.action}-{want}"

    @property
    def refusal(self) -> bool:
        codes = self.expect if isinstance(self.expect, tuple) else (self.expect,)
        return min(codes) >= 400


# -- WebDAV on a user's URL ------------------------------------------------------------------
# action: alice, bob (read), carol (read-write), dave (/Docs: nothing), dave@Team (his own empty
# tree), dave@alice-url, bob@alice-url
DAV_ACTIONS = (
    "GET",  # a.txt
    "HEAD",  # a.txt
    "PROPFIND",  # the folder, Depth 1
    "PROPFIND-file",  # a.txt, Depth 0
    "PUT-existing",  # f-<slug>.txt
    "PUT-new",  # n-<slug>.txt
    "MKCOL",  # d-<slug>
    "DELETE",  # f-<slug>.txt
    "DELETE-folder",  # sub-<slug>/ (with a file in it)
    "MOVE",  # f-<slug>.txt -> m-<slug>.txt inside the share
    "COPY",  # f-<slug>.txt -> c-<slug>.txt inside the share
    "COPY-over",  # a.txt -> f-<slug>.txt (Overwrite: T)
    "PROPPATCH",  # f-<slug>.txt
    "LOCK",  # f-<slug>.txt (exclusive write lock)
    "LOCK-new",  # n-<slug>.txt (a lock-null resource: creates an empty file)
    "REPORT",  # RFC 6578 sync-collection on the folder
)
#                 alice bob  carol dave dave@Team dave@alice-url bob@alice-url
DAV_USER_TABLE = {
    "GET": (200, 200, 200, 404, 404, 404, 404),
    "HEAD": (200, 200, 200, 404, 404, 404, 404),
    "PROPFIND": (207, 207, 207, 404, 404, 404, 404),
    "PROPFIND-file": (207, 207, 207, 404, 404, 404, 404),
    "PUT-existing": (204, 403, 204, 409, 409, 404, 404),
    "PUT-new": (201, 403, 201, 409, 409, 404, 404),
    "MKCOL": (201, 403, 201, 409, 409, 404, 404),
    "DELETE": (204, 403, 204, 404, 404, 404, 404),
    "DELETE-folder": (204, 403, 204, 404, 404, 404, 404),
    "MOVE": (201, 403, 201, 404, 404, 404, 404),
    "COPY": (201, 403, 201, 404, 404, 404, 404),
    "COPY-over": (204, 403, 204, 404, 404, 404, 404),
    "PROPPATCH": (207, 403, 207, 404, 404, 404, 404),
    "LOCK": (200, 403, 200, 409, 409, 404, 404),  # dave: a lock-null under no parent
    "LOCK-new": (201, 403, 201, 409, 409, 404, 404),
    "REPORT": (207, 207, 207, 404, 404, 404, 404),
}
DAV_USERS = ("alice", "bob", "carol", "dave", "dave@Team", "dave@alice-url", "bob@alice-url")

# Destination tricks and path tricks over WebDAV: (who, action, expected). A path trick may
# answer 400 (refused as malformed) or 404 (resolved inside the caller's own tree, where it
# names nothing): both reach nothing, so both are accepted.
DAV_TRICKS = (
    ("carol", "MOVE-out", 502),  # /dav/carol/Docs/f -> /dav/carol/f (another tree: 502)
    ("carol", "COPY-out", 502),
    ("bob", "MOVE-out", 502),  # the tree crossing is refused before the missing right
    ("bob", "COPY-out", 502),  # a reader may read it, but the copy would cross trees
    # a Destination in alice's home, by URL: 403 "destination outside your home"
    ("carol", "COPY-to-alice-url", 403),
    ("bob", "COPY-to-alice-url", 403),
    ("dave", "COPY-own-to-alice-url", 403),  # dave's own file into alice's home
    ("dave", "MOVE-own-to-alice-url", 403),
    ("bob", "GET-dotdot", (400, 404)),  # /dav/bob/Docs/%2e%2e/private.txt (alice: /Team/..)
    ("carol", "PUT-dotdot", (400, 403, 404, 409)),  # /dav/carol/Docs/%2e%2e/%2e%2e/x: above root
    ("bob", "GET-private-by-alice-path", 404),  # /dav/bob/Team/private.txt (bob's own tree)
)

# -- the JSON API ----------------------------------------------------------------------------
#                        alice bob  carol dave dave@Team
API_TABLE = {
    "download": (200, 200, 200, 404, 404),  # a.txt
    "list": (200, 200, 200, 404, 404),  # the folder
    "list-recursive": (200, 200, 200, 404, 404),
    "metadata": (200, 200, 200, 404, 404),  # a.txt
    "metadata-folder": (200, 200, 200, 404, 404),
    "list_revisions": (200, 200, 200, 404, 404),  # a.txt
    "upload-existing": (200, 403, 200, 409, 409),  # files/upload media over f-<slug>.txt
    "upload-new": (201, 403, 201, 409, 409),  # files/upload media n-<slug>.txt
    "upload-resumable": (201, 403, 201, 409, 409),  # files/upload?uploadType=resumable
    "tus-create": (201, 403, 201, 409, 409),  # POST /uploads?path=n-<slug>.txt
    "tus-create-metadata": (201, 403, 201, 409, 409),  # path in Upload-Metadata
    "tus-create-existing": (201, 403, 201, 409, 409),  # a session over f-<slug>.txt
    "restore": (200, 403, 200, 404, 404),  # f-<slug>.txt to its first revision
    "pin": (200, 403, 200, 404, 404),
    "create_folder": (201, 403, 201, 409, 409),
    "delete": (200, 403, 200, 404, 404),
    "move": (201, 403, 201, 404, 404),
    "copy": (201, 403, 201, 404, 404),
    "copy-over": (200, 403, 200, 404, 404),  # a.txt over f-<slug>.txt, overwrite
    "share-create": (201, 403, 403, 404, 404),  # POST /shares of the folder to dave
    "link-create": (201, 403, 403, 404, 404),  # POST /links of the folder (view)
    "shares-given-of-path": (200, 200, 200, 404, 404),  # GET /shares?path=<folder>: only own
}
API_USERS = ("alice", "bob", "carol", "dave", "dave@Team")

# Ids of alice's things, named by a principal who must not reach them: (action, expected for
# alice, bob, carol, dave). ``priv-rev``: a revision id of alice's /Team/private.txt, used on
# a.txt of the share (as each one names it).
ID_TABLE = {
    "download-priv-rev": (404, 404, 404, 404),
    "restore-priv-rev": (404, 403, 404, 404),  # bob: no write right at all (403 tells nothing)
    "pin-priv-rev": (404, 403, 404, 404),
    "list_revisions-cursor-priv-rev": (200, 200, 200, 404),  # a cursor below it: a.txt's only
    "share-get": (200, 200, 404, 404),  # bob's share: its owner and its recipient see it
    "share-patch": (200, 404, 404, 404),  # a fresh share to bob: only its owner changes it
    "share-delete": (204, 204, 404, 404),  # a fresh share to bob: revoke, decline, 404
    "link-get": (200, 404, 404, 404),
    "link-patch": (200, 404, 404, 404),
    "link-delete": (204, 404, 404, 404),
    "upload-session-get": (200, 404, 404, 404),
    "upload-session-head": (200, 404, 404, 404),
    "upload-session-patch": (204, 404, 404, 404),
    "upload-session-delete": (204, 404, 404, 404),
    "trash-restore-id": (200, 404, 404, 404),
    "trash-purge-id": (200, 404, 404, 404),
    "trash-restore-path": (200, 404, 404, 404),  # {"path": alice's trashed path}
    "trash-list": (200, 200, 200, 200),  # 200, and nothing of alice's shown to the others
    "private-by-path": (200, 404, 404, 404),  # /Team/private.txt: the others' own trees
    "private-dotdot": (400, 400, 400, 400),  # <folder>/../private.txt: ".." is refused
}
ID_USERS = ("alice", "bob", "carol", "dave")

# -- share links: WebDAV at /s/<token>/dav/ ------------------------------------------------------
#                 view edit upload drop
LINK_DAV_TABLE = {
    "GET": (200, 200, 200, 404),
    "GET-sub": (200, 200, 200, 404),  # sub/b.txt
    "HEAD": (200, 200, 200, 404),
    "PROPFIND": (207, 207, 207, 207),  # the drop's root lists nothing
    "PROPFIND-file": (207, 207, 207, 404),
    "PUT-existing": (403, 204, 403, 201),  # drop: lands renamed, never overwrites
    "PUT-new": (403, 201, 201, 201),
    "MKCOL": (403, 201, 201, 201),
    # "sub" exists: a drop must not tell (like PUT, which renames; 405 would say it exists)
    "MKCOL-existing": (405, 405, 405, 201),  # view: 405 before 403 (it may list: no leak)
    "DELETE": (403, 204, 403, 404),
    "DELETE-folder": (403, 204, 403, 404),
    "MOVE": (403, 201, 403, 404),
    "COPY": (403, 201, 201, 404),  # upload: read + create
    "COPY-over": (403, 204, 403, 404),
    "PROPPATCH": (403, 207, 403, 403),  # drop: 403 for any name (tells nothing)
    # a lock for write on an existing item needs the write right, a lock on a new name the
    # rights to add and to see (a lock-null file); a drop's holder locks nothing (403 for any
    # name: it tells nothing)
    "LOCK": (403, 200, 403, 403),
    "LOCK-new": (403, 201, 201, 403),
    "GET-dotdot": ((400, 404),) * 4,  # /s/<token>/dav/%2e%2e/private.txt
}

# -- share links: the pages at /s/<token> --------------------------------------------------------
LINK_PAGE_TABLE = {
    "page": (200, 200, 200, 200),
    "page-file": (200, 200, 200, 200),  # ?path=/a.txt (drop: the form alone)
    "page-folder": (200, 200, 200, 200),  # ?path=/sub
    "download": (200, 200, 200, 403),  # /download?path=/a.txt (drop: 403 for any name)
    "zip": (200, 200, 200, 403),  # /zip
    "upload-new": (403, 201, 201, 201),  # PUT /upload?path=/n-<slug>.txt
    "upload-existing": (403, 200, 403, 201),  # over f-<slug>.txt (drop: renamed)
    "page-dotdot": (400, 400, 400, 200),  # ?path=/../private.txt (drop: path ignored, form)
}


def _expect(value: object) -> int | tuple[int, ...]:
    return value  # type: ignore[return-value]


def cells() -> list[Cell]:
    out: list[Cell] = []
    for action, row in DAV_USER_TABLE.items():
        for who, want in zip(DAV_USERS, row, strict=True):
            out.append(Cell(who, "dav", action, want))
    for who, action, want in DAV_TRICKS:
        out.append(Cell(who, "dav", action, _expect(want)))
    for action, row in API_TABLE.items():
        for who, want in zip(API_USERS, row, strict=True):
            out.append(Cell(who, "api", action, want))
    for action, row in ID_TABLE.items():
        for who, want in zip(ID_USERS, row, strict=True):
            out.append(Cell(who, "api", action, _expect(want)))
    for action, row in LINK_DAV_TABLE.items():
        for kind, want in zip(LINK_KINDS, row, strict=True):
            out.append(Cell(f"link:{kind}", "dav", action, _expect(want)))
    for action, row in LINK_PAGE_TABLE.items():
        for kind, want in zip(LINK_KINDS, row, strict=True):
            out.append(Cell(f"link:{kind}", "page", action, _expect(want)))
    return out


CELLS = cells()
