"""The real Nextcloud desktop client (``nextcloudcmd``, Debian's nextcloud-desktop-cmd) syncs
with a real server: an initial upload of a tree with non-ASCII names, a no-op run that sends one
PROPFIND, and, in nested folders (the client always lists the root, so only nested changes
prove ETag propagation), a remote edit downloaded, a remote rename applied as a rename, a remote
delete, and a local rename sent as MOVE with the file id kept."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from pathlib import Path

import pytest
import requests

from tests.conftest import require_tool

PASSWORD = "nc-pw"


def _sync(srv, local: Path) -> str:
    client = require_tool("nextcloudcmd")
    proc = subprocess.run(
        [client, "--non-interactive", "-u", "alice", "-p", PASSWORD, str(local), srv.url],
        capture_output=True,
        text=True,
        timeout=300,
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    return log


def _downloads(log: str) -> list[str]:
    """The paths the client downloaded (its GETFileJob log lines)."""
    return re.findall(r'GETFileJob created for "[^"]*" \+ "([^"]+)"', log)


def _listed(log: str) -> list[str]:
    """The folders the client listed (its PROPFIND log lines)."""
    return re.findall(r'"PROPFIND" "http[^"]*?(/remote\.php/dav/files/alice/[^"]*)"', log)


@pytest.fixture
def nc(live_server_factory):
    return live_server_factory(users={"alice": PASSWORD})


def _dav(srv, method: str, path: str, **kw) -> requests.Response:
    return requests.request(
        method, f"{srv.url}/dav/alice/{path}", auth=("alice", PASSWORD), timeout=30, **kw
    )


@pytest.mark.slow
def test_nextcloudcmd_syncs_both_ways(nc, tmp_path: Path) -> None:
    local = tmp_path / "local"
    (local / "docs" / "deep").mkdir(parents=True)
    (local / "a.txt").write_bytes(b"top")
    (local / "docs" / "deep" / "ünïcödé ✓.txt").write_bytes(b"deep v1")
    (local / "docs" / "日本語.md").write_bytes(b"nihongo")
    _sync(nc, local)
    assert _dav(nc, "GET", "docs/deep/%C3%BCn%C3%AFc%C3%B6d%C3%A9%20%E2%9C%93.txt").content == (
        b"deep v1"
    )
    assert _dav(nc, "GET", "docs/%E6%97%A5%E6%9C%AC%E8%AA%9E.md").content == b"nihongo"
    _sync(nc, local)  # settles: re-lists the folders that received files
    quiet = _sync(nc, local)
    assert _listed(quiet) == ["/remote.php/dav/files/alice/"], "a no-op sync is one PROPFIND"

    # remote changes in nested folders
    assert _dav(nc, "PUT", "docs/deep/%C3%BCn%C3%AFc%C3%B6d%C3%A9%20%E2%9C%93.txt", data=b"v2").ok
    moved = _dav(
        nc,
        "MOVE",
        "docs/%E6%97%A5%E6%9C%AC%E8%AA%9E.md",
        headers={"Destination": f"{nc.url}/dav/alice/docs/deep/renamed.md"},
    )
    assert moved.status_code == 201
    assert _dav(nc, "DELETE", "a.txt").status_code == 204
    log = _sync(nc, local)
    assert (local / "docs" / "deep" / "ünïcödé ✓.txt").read_bytes() == b"v2"
    assert (local / "docs" / "deep" / "renamed.md").read_bytes() == b"nihongo"
    assert not (local / "docs" / "日本語.md").exists()
    assert not (local / "a.txt").exists()
    assert "Rename detected" in log, "the remote rename was not applied as a rename"
    downloaded = _downloads(log)
    assert "/docs/deep/ünïcödé ✓.txt" in downloaded  # the edit: found below two folders
    assert not any(d.endswith("renamed.md") for d in downloaded), "the rename was downloaded"

    # a local rename goes up as a MOVE and keeps the file's id
    before = _dav(nc, "PROPFIND", "docs/deep/renamed.md", headers={"Depth": "0"}, data=ID_PROP)
    (local / "docs" / "deep" / "renamed.md").rename(local / "docs" / "local-name.md")
    log = _sync(nc, local)
    after = _dav(nc, "PROPFIND", "docs/local-name.md", headers={"Depth": "0"}, data=ID_PROP)
    assert after.status_code == 207
    assert _fileid(after) == _fileid(before)
    assert _dav(nc, "GET", "docs/deep/renamed.md").status_code == 404


ID_PROP = (
    '<?xml version="1.0"?><d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns">'
    "<d:prop><oc:fileid/></d:prop></d:propfind>"
)


def _fileid(resp: requests.Response) -> str:
    found = re.search(r"fileid>(\d+)<", resp.text)
    assert found, resp.text
    return found.group(1)


@pytest.mark.slow
def test_nextcloudcmd_keeps_both_sides_of_a_conflict(nc, tmp_path: Path) -> None:
    local = tmp_path / "local"
    (local / "docs" / "deep").mkdir(parents=True)
    (local / "docs" / "deep" / "both.txt").write_bytes(b"original")
    _sync(nc, local)
    _sync(nc, local)
    assert _dav(nc, "PUT", "docs/deep/both.txt", data=b"server side").status_code == 204
    (local / "docs" / "deep" / "both.txt").write_bytes(b"client side, longer")
    _sync(nc, local)
    names = sorted(p.name for p in (local / "docs" / "deep").iterdir())
    conflict = [n for n in names if "conflicted copy" in n]
    assert len(conflict) == 1, names
    contents = {
        (local / "docs" / "deep" / "both.txt").read_bytes(),
        (local / "docs" / "deep" / conflict[0]).read_bytes(),
    }
    assert contents == {b"server side", b"client side, longer"}  # nothing lost
    assert _dav(nc, "GET", "docs/deep/both.txt").content == b"server side"


@pytest.mark.slow
def test_a_read_only_share_arrives_read_only(live_server_factory, tmp_path: Path) -> None:
    srv = live_server_factory(users={"alice": PASSWORD, "bob": "bob-pw"})
    alice = requests.Session()
    alice.auth = ("alice", PASSWORD)
    api = f"{srv.url}/api/v1"
    assert alice.post(f"{api}/files/create_folder", json={"path": "/Team"}).ok
    assert alice.post(f"{api}/files/upload", params={"path": "/Team/t.txt"}, data=b"team").ok
    r = alice.post(f"{api}/shares", json={"path": "/Team", "user": "bob", "permissions": 1})
    assert r.status_code == 201
    local = tmp_path / "bob"
    local.mkdir()
    client = require_tool("nextcloudcmd")

    def sync() -> str:
        proc = subprocess.run(
            [client, "--non-interactive", "-u", "bob", "-p", "bob-pw", str(local), srv.url],
            capture_output=True,
            text=True,
            timeout=300,
        )
        return proc.stdout + proc.stderr

    sync()
    assert (local / "Team" / "t.txt").read_bytes() == b"team"
    (local / "Team" / "t.txt").write_bytes(b"bob's edit")
    (local / "Team" / "new.txt").write_bytes(b"bob's new file")
    sync()
    got = alice.get(f"{api}/files/download", params={"path": "/Team/t.txt"})
    assert got.content == b"team"  # the read-only share was not written
    listing = alice.get(f"{api}/files/list", params={"path": "/Team"}).json()["entries"]
    assert [e["name"] for e in listing] == ["t.txt"]


@pytest.mark.slow
def test_owncloudcmd_uploads_and_downloads_the_same_tree(nc, tmp_path: Path) -> None:
    client = require_tool("owncloudcmd")
    exclude = tmp_path / "exclude.lst"  # Debian ships no exclude list; the client needs one
    exclude.write_text("")
    local = tmp_path / "local"
    (local / "sub dir").mkdir(parents=True)
    (local / "a.txt").write_bytes(b"a")
    (local / "sub dir" / "ünï ✓.txt").write_bytes(b"deep")

    def sync(folder: Path) -> None:
        proc = subprocess.run(
            [client, "--non-interactive", "--exclude", str(exclude), "-u", "alice", "-p", PASSWORD]
            + [str(folder), nc.url],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]

    sync(local)
    assert _dav(nc, "GET", "sub%20dir/%C3%BCn%C3%AF%20%E2%9C%93.txt").content == b"deep"
    assert _dav(nc, "PUT", "sub%20dir/remote.txt", data=b"from the server").status_code == 201
    other = tmp_path / "second"
    other.mkdir()
    sync(other)  # a second machine downloads everything
    assert (other / "a.txt").read_bytes() == b"a"
    assert (other / "sub dir" / "ünï ✓.txt").read_bytes() == b"deep"
    assert (other / "sub dir" / "remote.txt").read_bytes() == b"from the server"
    sync(local)
    assert (local / "sub dir" / "remote.txt").read_bytes() == b"from the server"


def _uploads(log: str, method: str) -> list[str]:
    """The chunked-upload requests of ``method`` the client sent."""
    return re.findall(rf'"{method}" "http[^"]*?(/remote\.php/dav/uploads/alice/[^"]*)"', log)


@pytest.mark.slow
def test_big_files_go_up_in_chunks(nc, tmp_path: Path) -> None:
    """A 25 MB file (and its edit) goes through chunked upload v2 and arrives byte-exact;
    owncloudcmd (offset-named chunks) too."""
    local = tmp_path / "local"
    (local / "Vidéos").mkdir(parents=True)
    big = local / "Vidéos" / "grand fichier ✓.bin"
    data = os.urandom(25 * 1000 * 1000)
    big.write_bytes(data)
    log = _sync(nc, local)
    assert _uploads(log, "MKCOL") and _uploads(log, "MOVE"), "no chunked upload"
    chunks = re.findall(r'PUT of "http[^"]*?/remote\.php/dav/uploads/alice/\d+/(\d+)"', log)
    assert len(chunks) >= 2, "not sent in chunks"
    url = "Vid%C3%A9os/grand%20fichier%20%E2%9C%93.bin"
    assert hashlib.sha256(_dav(nc, "GET", url).content).digest() == hashlib.sha256(data).digest()

    # an edit goes up in chunks again and replaces the file (the MOVE carries If: its ETag)
    edited = data[:1000] + b"edited" + data[1006:] + os.urandom(1000)
    big.write_bytes(edited)
    log = _sync(nc, local)
    assert _uploads(log, "MOVE")
    assert _dav(nc, "GET", url).content == edited
    listed = _dav(nc, "PROPFIND", "", headers={"Depth": "1"}, data=ID_PROP)
    assert listed.status_code == 207

    # owncloudcmd names its chunks by byte offset; a second machine gets the same bytes
    client = require_tool("owncloudcmd")
    exclude = tmp_path / "exclude.lst"
    exclude.write_text("")
    oc_local = tmp_path / "oc"
    oc_local.mkdir()
    oc_data = os.urandom(12 * 1000 * 1000)
    (oc_local / "oc big.bin").write_bytes(oc_data)
    proc = subprocess.run(
        [client, "--non-interactive", "--exclude", str(exclude), "-u", "alice", "-p", PASSWORD]
        + [str(oc_local), nc.url],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    assert _uploads(proc.stdout + proc.stderr, "MKCOL"), "owncloudcmd did not send chunks"
    assert _dav(nc, "GET", "oc%20big.bin").content == oc_data
    assert (oc_local / "Vidéos" / "grand fichier ✓.bin").read_bytes() == edited


@pytest.mark.slow
def test_a_slow_assembly_is_polled_by_the_client(live_server_factory, tmp_path: Path) -> None:
    """When the assembly outlives the MOVE (here: always), the server answers 202 with
    OC-JobStatus-Location and nextcloudcmd polls it until the file is there."""
    cfg = tmp_path / "slow.yaml"
    cfg.write_text("assembly_wait: 0\n")
    srv = live_server_factory(users={"alice": PASSWORD}, extra_args=("--config", str(cfg)))
    local = tmp_path / "local"
    local.mkdir()
    data = os.urandom(15 * 1000 * 1000)
    (local / "polled.bin").write_bytes(data)
    log = _sync(srv, local)
    assert "OCC::PollJob created" in log and "/remote.php/dav/job-status/alice/" in log
    assert _dav(srv, "GET", "polled.bin").content == data
    quiet = _sync(srv, local)  # the client recorded the id and ETag the job reported
    assert "polled.bin" not in "".join(_downloads(quiet))
    assert not _uploads(quiet, "MKCOL"), "the file was sent again"
