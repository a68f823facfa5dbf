"""Saving through a temp file and a rename keeps the file's history (issue 9, defect 7).

First the exact request sequences that davfs2 sends for ``sed -i`` and for vim (recorded from a
real mount) and a LibreOffice-style lock/temp/rename save, over plain HTTP; then the same
editors on a real davfs2 mount of the live server (root, /dev/fuse and mount.davfs needed).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import unavailable
from tests.dav.davfs import davfs_mount, davfs_umount

LOCK_BODY = (
    b'<?xml version="1.0" encoding="utf-8"?><D:lockinfo xmlns:D="DAV:">'
    b"<D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype>"
    b"<D:owner>editor</D:owner></D:lockinfo>"
)


class Client:
    """WebDAV and JSON API calls of one account on the live server."""

    def __init__(self, server, login: str = "alice") -> None:
        self.s = requests.Session()
        self.s.auth = server.auth(login)
        self.dav = server.dav(login)
        self.api = f"{server.url}/api/v1"

    def req(self, method: str, name: str, **kw) -> requests.Response:
        return self.s.request(method, self.dav + name, **kw)

    def lock(self, name: str) -> str:
        r = self.req("LOCK", name, data=LOCK_BODY, headers={"Timeout": "Second-600"})
        assert r.status_code in (200, 201), r.text
        return r.headers["Lock-Token"].strip("<>")

    def put(self, name: str, data: bytes, token: str | None = None) -> None:
        headers = {"If": f"(<{token}>)"} if token else {}
        r = self.req("PUT", name, data=data, headers=headers)
        assert r.status_code in (201, 204), r.text

    def unlock(self, name: str, token: str) -> None:
        r = self.req("UNLOCK", name, headers={"Lock-Token": f"<{token}>"})
        assert r.status_code == 204, r.text

    def move(self, src: str, dst: str, token: str | None = None) -> requests.Response:
        headers = {"Destination": self.dav + dst, "Overwrite": "T"}
        if token:  # tagged: the token is the destination's (LibreOffice keeps it locked)
            headers["If"] = f"<{self.dav + dst}> (<{token}>)"
        return self.req("MOVE", src, headers=headers)

    def meta(self, name: str) -> dict:
        r = self.s.get(f"{self.api}/files/metadata", params={"path": "/" + name})
        assert r.status_code == 200, r.text
        return r.json()

    def history(self, name: str) -> list[dict]:
        r = self.s.get(f"{self.api}/files/list_revisions", params={"path": "/" + name})
        assert r.status_code == 200, r.text
        return r.json()["revisions"]

    def contents(self, name: str) -> list[bytes]:
        """Every revision's bytes, newest first."""
        return [
            self.s.get(
                f"{self.api}/files/download", params={"path": "/" + name, "rev": r["rev"]}
            ).content
            for r in self.history(name)
        ]

    def pin_oldest(self, name: str) -> None:
        rev = self.history(name)[-1]["rev"]
        r = self.s.post(f"{self.api}/files/pin", json={"path": "/" + name, "rev": rev})
        assert r.status_code == 200, r.text


def _seed(c: Client, name: str) -> str:
    """A file with two revisions, the oldest pinned; returns its id."""
    c.put(name, b"version 1\n")
    c.put(name, b"version 2\n")
    c.pin_oldest(name)
    return c.meta(name)["id"]


def _assert_history(c: Client, name: str, newest: bytes, file_id: str | None) -> None:
    if file_id is not None:
        assert c.meta(name)["id"] == file_id
    assert c.contents(name) == [newest, b"version 2\n", b"version 1\n"]
    assert [r["pinned"] for r in c.history(name)] == [False, False, True]


def test_sed_in_place_over_davfs2_keeps_id_history_and_pins(live_server):
    c = Client(live_server)
    file_id = _seed(c, "s.txt")
    token = c.lock("sednbj9De")  # davfs2: sed's temp file, locked while written
    c.put("sednbj9De", b"version 3\n", token)
    c.unlock("sednbj9De", token)
    r = c.move("sednbj9De", "s.txt")
    assert r.status_code == 204  # an existing file was replaced
    _assert_history(c, "s.txt", b"version 3\n", file_id)
    assert c.req("GET", "sednbj9De").status_code == 404
    journal = c.s.get(f"{c.api}/changes", params={"cursor": "0"}).json()["changes"]
    assert [(x["kind"], x["path"]) for x in journal[-2:]] == [
        ("deleted", "/sednbj9De"),
        ("updated", "/s.txt"),
    ]
    trash = c.s.get(f"{c.api}/trash").json()["items"]
    assert trash == []  # nothing of the save lands in the trash


def test_vim_backup_rename_over_davfs2_continues_history(live_server):
    c = Client(live_server)
    _seed(c, "v.txt")
    assert c.move("v.txt", "v.txt~").status_code == 201  # vim keeps a backup by renaming
    token = c.lock("v.txt")
    c.put("v.txt", b"version 3\n", token)
    c.unlock("v.txt", token)
    assert c.req("DELETE", "v.txt~").status_code == 204
    _assert_history(c, "v.txt", b"version 3\n", None)  # a new file id, the same history


def test_delete_and_recreate_continues_history(live_server):
    c = Client(live_server)
    _seed(c, "d.txt")
    assert c.req("DELETE", "d.txt").status_code == 204
    c.put("d.txt", b"version 3\n")
    _assert_history(c, "d.txt", b"version 3\n", None)


def test_libreoffice_lock_temp_rename_save_keeps_the_lock(live_server):
    c = Client(live_server)
    file_id = _seed(c, "report.odt")
    token = c.lock("report.odt")  # the document stays locked while it is open
    c.put("lu1234abcd.tmp", b"version 3\n")
    assert c.move("lu1234abcd.tmp", "report.odt").status_code == 423  # no token: refused
    assert c.move("lu1234abcd.tmp", "report.odt", token).status_code == 204
    _assert_history(c, "report.odt", b"version 3\n", file_id)
    assert c.req("PUT", "report.odt", data=b"x").status_code == 423  # still locked
    c.unlock("report.odt", token)


# -- a real davfs2 mount ---------------------------------------------------------------------------
def _mount(server, tmp_path: Path) -> Path:
    user, password = server.auth("alice")
    return davfs_mount(server.dav("alice"), user, password, tmp_path)


def _wait_for(c: Client, name: str, content: bytes) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if c.req("GET", name).content == content:
            return
        time.sleep(0.2)
    raise AssertionError(f"{name} never reached the server with {content!r}")


@pytest.mark.slow
def test_editors_on_a_real_davfs2_mount_keep_history(live_server, tmp_path):
    c = Client(live_server)
    point = _mount(live_server, tmp_path)
    try:
        target = point / "notes.txt"
        target.write_bytes(b"version 1\n")
        _wait_for(c, "notes.txt", b"version 1\n")
        file_id = c.meta("notes.txt")["id"]
        subprocess.run(["sed", "-i", "s/version 1/version 2/", str(target)], check=True)
        _wait_for(c, "notes.txt", b"version 2\n")
        assert c.meta("notes.txt")["id"] == file_id  # sed's rename over it kept the file
        if shutil.which("vim") is None:
            unavailable("vim is not installed")
        subprocess.run(
            [
                "vim",
                "-u",
                "DEFAULTS",
                "-i",
                "NONE",
                "-es",
                "-c",
                "%s/2/3/",
                "-c",
                "wq",
                "notes.txt",
            ],
            cwd=point,
            check=True,
            timeout=60,
        )
        _wait_for(c, "notes.txt", b"version 3\n")
    finally:
        davfs_umount(point)
    assert c.contents("notes.txt") == [b"version 3\n", b"version 2\n", b"version 1\n"]
    assert c.req("GET", "notes.txt~").status_code == 404
