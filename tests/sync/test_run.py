"""``davdrive-sync run`` (watcher + long-poll) and the full-listing reconciliation."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import time

from tests.sync.conftest import CLIENT, server_tree


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
