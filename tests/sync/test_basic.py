"""Two client processes and a real server: init, both ways, edits, moves, deletes, folders."""

from __future__ import annotations

import os
import stat

from tests.sync.conftest import Device, app_password, server_tree


def test_init_checks_credentials_and_stores_them_0600(live_server, tmp_path):
    d = Device(live_server, tmp_path / "a", "laptop")
    bad = d.cli(
        "init",
        str(d.root),
        live_server.url,
        "--user",
        "alice",
        "--password-stdin",
        input="wrong\n",
        check=False,
    )
    assert bad.returncode != 0 and "refused" in bad.stderr
    assert not (d.root / ".davdrive-sync" / "credential").exists()
    d.init()
    cred = d.root / ".davdrive-sync" / "credential"
    assert stat.S_IMODE(cred.stat().st_mode) == 0o600
    status = d.cli("status", str(d.root)).stdout
    assert "alice" in status and "never" in status
    # a device token works too
    out = live_server.cli("device", "add", "alice", "tok").stdout
    token = next(x.split(": ", 1)[1] for x in out.splitlines() if x.startswith("token"))
    t = Device(live_server, tmp_path / "t", "tok")
    t.cli("init", str(t.root), live_server.url, "--user", "alice", "--token", token)
    t.once()
    assert app_password(live_server, "alice", "x")


def test_first_sync_both_ways_and_changes_propagate(devices, live_server):
    a = devices("A")
    a.write("docs/report.txt", "v1")
    a.write("top.bin", os.urandom(3000))
    (a.root / "empty" / "nested").mkdir(parents=True)
    a.once()
    b = devices("B")
    b.write("from-b.txt", "hello from B")
    b.once()
    a.once()
    assert a.tree() == b.tree() == server_tree(live_server)
    assert a.tree()["empty/nested"] is None and a.tree()["from-b.txt"] == b"hello from B"

    # edit, rename, move into a folder, delete, empty folder: A -> server -> B
    a.write("docs/report.txt", "v2")
    os.rename(a.path("top.bin"), a.path("renamed.bin"))
    os.rename(a.path("from-b.txt"), a.path("docs/from-b.txt"))
    (a.root / "empty" / "nested").rmdir()
    (a.root / "new-empty").mkdir()
    ids_before = _ids(live_server)
    a.once()
    b.once()
    assert a.tree() == b.tree() == server_tree(live_server)
    tree = b.tree()
    assert tree["docs/report.txt"] == b"v2"
    assert "top.bin" not in tree and "renamed.bin" in tree and "docs/from-b.txt" in tree
    assert "empty/nested" not in tree and tree["new-empty"] is None
    ids_after = _ids(live_server)
    # renames and moves were sent as moves: the file ids survived
    assert ids_after["/renamed.bin"] == ids_before["/top.bin"]
    assert ids_after["/docs/from-b.txt"] == ids_before["/from-b.txt"]

    # a folder renamed on B is a rename on A (same inode), and a delete goes through
    os.rename(b.path("docs"), b.path("papers"))
    b.path("renamed.bin").unlink()
    b.once()
    a.once()
    assert a.tree() == b.tree() == server_tree(live_server)
    assert "papers/report.txt" in a.tree() and "renamed.bin" not in a.tree()
    # the deleted file is in the server's trash
    trash = live_server_trash(live_server)
    assert any(p.endswith("renamed.bin") for p in trash)
    # a second pass has nothing to do
    assert "0 up, 0 down" in a.once().stdout


def _ids(server) -> dict[str, str]:
    import requests

    page = requests.get(
        f"{server.url}/api/v1/files/list",
        params={"path": "/", "recursive": "true"},
        auth=server.auth("alice"),
    ).json()
    return {e["path"]: e["id"] for e in page["entries"]}


def live_server_trash(server) -> list[str]:
    import requests

    r = requests.get(f"{server.url}/api/v1/trash", auth=server.auth("alice")).json()
    items = r.get("entries") or r.get("items") or r.get("trash") or []
    return [i.get("path") or i.get("original_path") or i.get("name") for i in items]
