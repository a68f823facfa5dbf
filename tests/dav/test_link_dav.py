"""The WebDAV view of share links (``/s/<token>/dav/``) against a real server, with rclone and
cadaver: view reads and refuses writes, edit round-trips, drop lands renamed and lists nothing,
passwords (Basic, any user name) with their rate limit, uses, revocation."""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests
from cheroot import wsgi

from davdrive.blockstore.keys import KeyRing
from davdrive.blockstore.store import BlockStore
from davdrive.metadata.db import Database
from davdrive.service.drive import Drive
from davdrive.storage.local import LocalBackend
from providers.link_provider import make_link_dav_app
from tests.conftest import require_tool


@pytest.fixture
def links(tmp_path: Path):
    """A server for ``/s/...`` over a drive where alice has /Work/Pub (a.txt, sub/b.txt) and a
    private /Work/secret.txt."""
    db = Database(f"sqlite:///{tmp_path / 'meta.db'}")
    db.upgrade()
    store = BlockStore(LocalBackend(tmp_path / "blocks"), zstd_level=1, threads=2)
    drive = Drive(db, store, KeyRing.load_or_create(str(tmp_path / "master.key")))
    alice = drive.create_account("alice", "x")
    drive.mkdir(alice, "/Work")
    drive.mkdir(alice, "/Work/Pub")
    drive.mkdir(alice, "/Work/Pub/sub")
    drive.write_file(alice, "/Work/Pub/a.txt", b"public a")
    drive.write_file(alice, "/Work/Pub/sub/b.txt", b"public b")
    drive.write_file(alice, "/Work/secret.txt", b"secret")
    app = SimpleNamespace(drive=drive, db=db)
    server = wsgi.Server(("127.0.0.1", 0), make_link_dav_app(app), numthreads=16, timeout=10)
    server.prepare()
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    host, port = server.bind_addr[:2]
    srv = SimpleNamespace(url=f"http://{host}:{port}", drive=drive, alice=alice)

    def make(kind: str, **kw: object) -> str:
        info = drive.links.create(alice, "/Work/Pub", kind, **kw)  # type: ignore[arg-type]
        srv.last = info
        return f"{srv.url}/s/{info.token}/dav/"

    srv.make = make
    yield srv
    server.stop()
    thread.join(timeout=5)
    store.close()
    db.dispose()


def _rclone(url: str, tmp_path: Path, *args: str, password: str | None = None, ok: bool = True):
    rclone = require_tool("rclone")
    env = {
        **os.environ,
        "RCLONE_CONFIG": str(tmp_path / "rclone.conf"),
        "RCLONE_CONFIG_LNK_TYPE": "webdav",
        "RCLONE_CONFIG_LNK_URL": url,
        "RCLONE_CONFIG_LNK_VENDOR": "other",
    }
    if password is not None:
        env["RCLONE_CONFIG_LNK_USER"] = "anyone"
        env["RCLONE_CONFIG_LNK_PASS"] = subprocess.run(
            [rclone, "obscure", password], capture_output=True, text=True, check=True
        ).stdout.strip()
    proc = subprocess.run(
        [rclone, "--retries", "1", "--low-level-retries", "1", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if ok:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _alice_tree(srv) -> list[tuple[str, str]]:
    return [(e.path, e.etag) for e in srv.drive.list_tree(srv.alice, "/")[0]]


def test_view_link_reads_with_rclone_and_refuses_writes(links, tmp_path: Path) -> None:
    url = links.make("view")
    listing = _rclone(url, tmp_path, "lsf", "-R", "lnk:").stdout.split()
    assert sorted(listing) == ["a.txt", "sub/", "sub/b.txt"]
    _rclone(url, tmp_path, "copy", "lnk:", str(tmp_path / "down"))
    assert (tmp_path / "down" / "sub" / "b.txt").read_bytes() == b"public b"
    before = _alice_tree(links)
    for method, path in (("PUT", "a.txt"), ("PUT", "new.txt"), ("MKCOL", "d"), ("DELETE", "a.txt")):
        r = requests.request(method, url + path, data=b"x" if method == "PUT" else None)
        assert r.status_code == 403, (method, path, r.status_code)
    r = requests.request("MOVE", url + "a.txt", headers={"Destination": url + "b.txt"}, timeout=30)
    assert r.status_code == 403
    r = requests.request(
        "LOCK",
        url + "a.txt",
        data=b'<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/>'
        b"</D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>",
        timeout=30,
    )
    assert r.status_code == 403
    assert _alice_tree(links) == before
    # nothing above the link's node, no owner's login
    propfind = requests.request("PROPFIND", url, headers={"Depth": "1"}, timeout=30)
    assert propfind.status_code == 207
    assert "alice" not in propfind.text and "Work" not in propfind.text
    assert requests.get(url + "../secret.txt", timeout=30).status_code in (400, 404)


def test_edit_link_round_trip_with_rclone(links, tmp_path: Path) -> None:
    url = links.make("edit")
    src = tmp_path / "up"
    (src / "deep").mkdir(parents=True)
    (src / "deep" / "c.bin").write_bytes(os.urandom(300_000))
    (src / "d.txt").write_bytes(b"d")
    _rclone(url, tmp_path, "copy", str(src), "lnk:incoming")
    _rclone(url, tmp_path, "check", str(src), "lnk:incoming")
    data = links.drive.read_bytes(links.alice, "/Work/Pub/incoming/deep/c.bin")
    assert data == (src / "deep" / "c.bin").read_bytes()
    _rclone(url, tmp_path, "deletefile", "lnk:incoming/d.txt")
    assert links.drive.try_stat(links.alice, "/Work/Pub/incoming/d.txt") is None


def test_drop_link_renames_on_clash_and_lists_nothing(links, tmp_path: Path) -> None:
    """cadaver drops the same name twice: both land, renamed; rclone lists nothing. (rclone
    cannot *upload* to a drop link: it reads every uploaded file back, which a drop refuses —
    docs/SHARING.md.)"""
    url = links.make("drop")
    (tmp_path / "a.txt").write_bytes(b"dropped once")
    _cadaver(url, tmp_path, f"put {tmp_path / 'a.txt'} a.txt\n")
    (tmp_path / "a.txt").write_bytes(b"dropped twice")
    _cadaver(url, tmp_path, f"put {tmp_path / 'a.txt'} a.txt\n")
    alice = links.alice
    assert links.drive.read_bytes(alice, "/Work/Pub/a.txt") == b"public a"
    assert links.drive.read_bytes(alice, "/Work/Pub/a (2).txt") == b"dropped once"
    assert links.drive.read_bytes(alice, "/Work/Pub/a (3).txt") == b"dropped twice"
    assert _rclone(url, tmp_path, "lsf", "-R", "lnk:").stdout.split() == []
    assert requests.get(url + "a.txt", timeout=30).status_code == 404
    propfind = requests.request("PROPFIND", url, headers={"Depth": "1"}, timeout=30)
    assert propfind.status_code == 207 and "a.txt" not in propfind.text
    listing = _cadaver(url, tmp_path, "ls\n")
    assert "a.txt" not in listing and "sub" not in listing


def _cadaver(url: str, tmp_path: Path, script: str) -> str:
    cadaver = require_tool("cadaver")
    proc = subprocess.run(
        [cadaver, url],
        input=script + "quit\n",
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "HOME": str(tmp_path)},
    )
    return proc.stdout


def test_cadaver_reads_a_view_link_and_cannot_write(links, tmp_path: Path) -> None:
    url = links.make("view")
    (tmp_path / "local.txt").write_bytes(b"from cadaver")
    script = f"ls\nget a.txt {tmp_path / 'got.txt'}\nput {tmp_path / 'local.txt'} up.txt\n"
    out = _cadaver(url, tmp_path, script)
    assert "a.txt" in out
    assert (tmp_path / "got.txt").read_bytes() == b"public a"
    assert "403" in out or "Forbidden" in out
    assert links.drive.try_stat(links.alice, "/Work/Pub/up.txt") is None


def test_password_uses_and_revocation(links) -> None:
    url = links.make("view", password="open sesame", max_uses=2)
    assert requests.request("PROPFIND", url, timeout=30).status_code == 401
    ok = requests.request("PROPFIND", url, auth=("anyone", "open sesame"), timeout=30)
    assert ok.status_code == 207
    for _ in range(5):
        assert requests.get(url, auth=("x", "wrong"), timeout=30).status_code == 401
    assert requests.get(url, auth=("x", "wrong"), timeout=30).status_code == 429
    other = links.make("view")
    assert requests.get(other + "a.txt", timeout=30).content == b"public a"  # 1 use
    links.drive.links.update(links.alice, links.last.id, max_uses=1)
    assert requests.get(other + "a.txt", timeout=30).status_code == 404  # used up
    assert requests.request("PROPFIND", other, timeout=30).status_code == 404
    third = links.make("view")
    links.drive.links.revoke(links.alice, links.last.id)
    gone = requests.request("PROPFIND", third, timeout=30)
    unknown = requests.request("PROPFIND", f"{links.url}/s/{'x' * 32}/dav/", timeout=30)
    assert gone.status_code == unknown.status_code == 404


def test_a_file_link_serves_the_file_at_its_root(links) -> None:
    info = links.drive.links.create(links.alice, "/Work/Pub/a.txt", "view")
    url = f"{links.url}/s/{info.token}/dav/"
    got = requests.get(url, timeout=30)
    assert got.status_code == 200 and got.content == b"public a"
    found = requests.request("PROPFIND", url, headers={"Depth": "0"}, timeout=30)
    assert found.status_code == 207 and "alice" not in found.text
    assert requests.put(url, data=b"x", timeout=30).status_code in (400, 403, 405, 409)
    assert links.drive.read_bytes(links.alice, "/Work/Pub/a.txt") == b"public a"
