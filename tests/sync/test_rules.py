"""Conflicts, delete-vs-edit, ignore rules, the delete guard."""

from __future__ import annotations

import re

import requests

from davdrive_sync.engine import guard_verdict
from davdrive_sync.state import Config
from tests.sync.conftest import server_tree

COPY = re.compile(r"^notes \(conflicted copy (A|B) \d{4}-\d\d-\d\d \d{6}\)\.txt$")


def test_both_edit_offline_keeps_both_versions_everywhere(devices, live_server):
    a, b = devices("A"), devices("B")
    a.write("notes.txt", "base")
    a.once()
    b.once()
    a.write("notes.txt", "edit from A")
    b.write("notes.txt", "edit from B, longer")
    a.once()
    out = b.once()  # B loses the race: its edit becomes a conflicted copy
    assert "conflict" in out.stderr
    a.once()
    ta, tb = a.tree(), b.tree()
    assert ta == tb == server_tree(live_server)
    assert ta["notes.txt"] == b"edit from A"  # the server's version keeps the name
    copies = [k for k in ta if COPY.match(k)]
    assert len(copies) == 1 and copies[0].startswith("notes (conflicted copy B ")
    assert ta[copies[0]] == b"edit from B, longer"


def test_both_create_same_name(devices, live_server):
    a, b = devices("A"), devices("B")
    a.write("notes.txt", "A's")
    b.write("notes.txt", "B's")
    a.once()
    b.once()
    a.once()
    ta = a.tree()
    assert ta == b.tree() == server_tree(live_server)
    assert ta["notes.txt"] == b"A's"
    assert sorted(v for k, v in ta.items() if COPY.match(k)) == [b"B's"]


def test_edit_of_a_file_deleted_elsewhere_resurrects_it(devices, live_server):
    a, b = devices("A"), devices("B")
    a.write("d/keep.txt", "v1")
    a.write("d/gone.txt", "v1")
    a.once()
    b.once()
    a.path("d/keep.txt").unlink()  # deleted on A
    b.write("d/keep.txt", "v2 from B")  # edited on B
    b.path("d/gone.txt").unlink()  # deleted on B, untouched on A
    a.once()
    b.once()
    a.once()
    ta = a.tree()
    assert ta == b.tree() == server_tree(live_server)
    assert ta["d/keep.txt"] == b"v2 from B" and "d/gone.txt" not in ta
    # the other order: B deletes, A (offline) edits
    b.path("d/keep.txt").unlink()
    b.once()
    a.write("d/keep.txt", "v3 from A")
    a.once()
    b.once()
    assert a.tree() == b.tree() == server_tree(live_server)
    assert b.tree()["d/keep.txt"] == b"v3 from A"


def test_ignore_rules_and_skipped_files(devices, live_server):
    a = devices("A")
    a.write(".davdriveignore", "build/\n*.log\n!keep.log\n")
    for rel in [
        "build/out.o",
        "x.log",
        "keep.log",
        "doc.txt~",
        ".#lock",
        "a.swp",
        ".~lock.doc.odt#",
        "~$doc.docx",
        ".DS_Store",
        "Thumbs.db",
        "dl.part",
        "t.tmp",
        "sub/real.txt",
    ]:
        a.write(rel, rel)
    (a.root / "link").symlink_to("sub/real.txt")
    out = a.once()
    assert "symbolic link" in out.stderr
    remote = server_tree(live_server)
    assert set(remote) == {".davdriveignore", "keep.log", "sub", "sub/real.txt"}
    b = devices("B")
    b.write("b.log", "ignored on B too? no: B has no ignore file yet")
    b.once()
    assert b.tree()[".davdriveignore"] == a.tree()[".davdriveignore"]


def test_delete_guard_stops_and_force_proceeds(devices, live_server):
    a, b = devices("A"), devices("B")
    for i in range(12):
        a.write(f"f{i:02}.txt", f"file {i}")
    a.once()
    b.once()
    for i in range(10):
        a.path(f"f{i:02}.txt").unlink()
    stopped = a.once(check=False)
    assert stopped.returncode == 3, stopped.stderr
    assert "would delete 10 of 12" in stopped.stderr and "--force" in stopped.stderr
    assert len(server_tree(live_server)) == 12  # nothing was deleted
    a.once("--force")
    assert len(server_tree(live_server)) == 2
    # the other side: B would now delete 10 local files; the guard asks there too
    stopped = b.once(check=False)
    assert stopped.returncode == 3 and "here" in stopped.stderr
    assert len(b.tree()) == 12
    b.once("--force")
    assert b.tree() == a.tree() == server_tree(live_server)


def test_guard_verdict_at_the_default_thresholds():
    cfg = Config(url="http://x", user="u")  # the defaults init writes
    assert (cfg.guard_ratio, cfg.guard_min, cfg.guard_max) == (0.5, 5, 1000)
    assert not guard_verdict(4, 4, cfg)  # under the minimum: a small tree may empty itself
    assert guard_verdict(5, 9, cfg) and not guard_verdict(5, 10, cfg)  # more than half
    assert not guard_verdict(1000, 2002, cfg) and guard_verdict(1001, 2002, cfg)  # 1,000
    assert guard_verdict(1001, 10**6, cfg)


def test_the_default_guard_stops_more_than_1000_deletes_even_under_half(devices, live_server):
    """The real default: 1,001 deletes of 2,002 files (under 50 %) stop; 1,000 go through.
    Empty files keep it cheap: no blocks, one commit each."""
    a = devices("A")
    names = [f"d{i % 10}/f{i:04}" for i in range(2002)]
    for name in names:
        a.write(name, b"")
    a.once()
    assert _server_files(live_server) == 2002
    for name in names[:1001]:
        a.path(name).unlink()
    stopped = a.once(check=False)
    assert stopped.returncode == 3, stopped.stderr
    assert "would delete 1001 of 2002 synced files on the server" in stopped.stderr
    assert _server_files(live_server) == 2002  # nothing was deleted
    a.write(names[0], b"")  # one comes back: 1,000 deletes are allowed
    done = a.once()
    assert "1000 deleted" in done.stdout, done.stdout
    assert _server_files(live_server) == 1002


def _server_files(server) -> int:
    base, auth, n, cursor = f"{server.url}/api/v1", server.auth("alice"), 0, None
    while True:
        params = {"path": "/", "recursive": "true", **({"cursor": cursor} if cursor else {})}
        page = requests.get(f"{base}/files/list", params=params, auth=auth).json()
        n += sum(1 for e in page["entries"] if not e["is_dir"])
        if not page["has_more"]:
            return n
        cursor = page["cursor"]
