"""``davdrive-sync run`` (watcher + long-poll) and the full-listing reconciliation."""

from __future__ import annotations

import random
import re
import signal
import sqlite3
import subprocess
import time

import requests

from davdrive.app import build_app
from davdrive.config import load_config
from davdrive.service.changes import Changes
from scripts.counting_proxy import CountingProxy
from tests.sync.conftest import CLIENT, server_tree

MiB = 1 << 20


def _wait(cond, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def test_run_follows_both_sides(devices, live_server):
    a, b = devices("A"), devices("B")
    procs = [
        subprocess.Popen(
            [*CLIENT, "run", str(d.root), "--debounce", "0.3"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for d in (a, b)
    ]
    try:
        a.write("hello.txt", "from A")
        _wait(lambda: b.path("hello.txt").exists() and b.path("hello.txt").read_text() == "from A")
        b.write("sub/reply.txt", "from B")
        _wait(lambda: a.path("sub/reply.txt").exists())
        busy = a.cli("once", str(a.root), check=False)
        assert busy.returncode != 0 and "another davdrive-sync" in busy.stderr
        assert "running:  yes" in a.cli("status", str(a.root)).stdout
    finally:
        for p in procs:
            p.send_signal(signal.SIGINT)
        errs = [p.communicate(timeout=10)[1] for p in procs]
    _wait(lambda: a.tree() == b.tree() == server_tree(live_server))
    # quiet: a line per pass that did something, no per-file chatter
    assert "upload:" not in errs[0] and "synced:" in errs[0]


def test_lost_cursor_means_a_three_way_reconciliation_not_a_mass_transfer(devices, live_server):
    a, b = devices("A"), devices("B")
    for i in range(6):
        a.write(f"f{i}.txt", f"v{i}")
    a.once()
    b.once()
    a.write("f0.txt", "edited on A")
    a.once()
    b.write("f1.txt", "edited on B")
    # what a 410 leads to: no usable cursor, a full listing instead of the journal
    db = sqlite3.connect(b.root / ".davdrive-sync" / "state.db")
    db.execute("DELETE FROM meta WHERE key='cursor'")
    db.commit()
    db.close()
    out = b.once().stdout
    assert "1 up, 1 down" in out and "0 deleted" in out and "0 conflicts" in out
    a.once()
    assert a.tree() == b.tree() == server_tree(live_server)


def test_a_410_from_the_server_means_a_three_way_reconciliation(devices, live_server):
    """The server pruned its journal past B's cursor while B was offline: B lists everything
    and reconciles against what it had synced. Nothing already in sync moves again (counted at
    the socket), B's offline edits go up, A's changes come down, A's one delete is the only
    delete."""
    proxy = CountingProxy(live_server.port)
    a, b = devices("A"), devices("B", url=proxy.url)
    rng = random.Random(410)
    synced = {f"f{i}.bin": rng.randbytes(MiB) for i in range(8)}
    for name, data in synced.items():
        a.write(name, data)
    a.write("docs/keep.txt", "kept")
    a.once()
    b.once()
    # B goes offline; meanwhile A edits, creates and deletes
    a.write("f0.bin", "edited on A")
    a.write("docs/new-on-A.txt", "from A")
    a.path("f7.bin").unlink()
    a.once()
    # ... and B edits and creates while offline
    b.write("f1.bin", "edited on B")
    b.write("new-on-B.txt", "from B")
    # the server prunes its journal past B's cursor (what upkeep does after
    # journal_retention_days), so B's next /changes is a 410
    cursor = (
        sqlite3.connect(b.root / ".davdrive-sync" / "state.db")
        .execute("SELECT value FROM meta WHERE key='cursor'")
        .fetchone()[0]
    )
    app = build_app(load_config(data_dir=live_server.data_dir))
    try:
        assert Changes(app.drive).prune(older_than=0, now=time.time() + 1) >= 2
    finally:
        app.close()
    gone = requests.get(
        f"{live_server.url}/api/v1/changes",
        params={"cursor": cursor},
        auth=live_server.auth("alice"),
    )
    assert gone.status_code == 410 and gone.json()["error"]["code"] == "cursor_expired"

    proxy.reset()
    out = b.cli("once", str(b.root))
    up, down = proxy.counts()
    assert "listing everything" in out.stderr  # the client met the 410
    summary = out.stdout
    assert re.search(r"\b2 up, 2 down, 0 moved, 1 deleted\b", summary), summary
    assert "0 conflicts" in summary
    # the seven 1 MiB files already in sync crossed the wire in neither direction
    assert up < 256 * 1024 and down < 256 * 1024, (up, down)
    assert b.path("f0.bin").read_text() == "edited on A"
    assert b.path("docs/new-on-A.txt").read_text() == "from A"
    assert not b.path("f7.bin").exists()
    for name in ("f2.bin", "f3.bin", "f4.bin", "f5.bin", "f6.bin"):
        assert b.path(name).read_bytes() == synced[name]
    remote = server_tree(live_server)
    assert remote["f1.bin"] == b"edited on B" and remote["new-on-B.txt"] == b"from B"
    a.once()
    assert a.tree() == b.tree() == server_tree(live_server)
    proxy.close()
