"""What the scan skips, with a warning: devices, FIFOs, sockets, and files or folders it cannot
read. An unreadable item is left alone on both sides: not uploaded, not deleted on the server,
not overwritten by a download; once readable again it syncs as usual."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import sys

import pytest

from tests.sync.conftest import CLIENT, server_tree


def test_devices_fifos_and_sockets_are_skipped_with_a_warning(devices, live_server):
    if os.geteuid() != 0:
        pytest.skip("creating a device node needs root (CAP_MKNOD)")
    a = devices("A")
    a.write("plain.txt", "plain")
    # /dev/zero's numbers: a client that opened it would read (and hash) forever
    os.mknod(a.path("zero"), stat.S_IFCHR | 0o666, os.makedev(1, 5))
    os.mkfifo(a.path("pipe"))  # opening it would block
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(a.path("sock")))
    try:
        out = a.cli("once", str(a.root), timeout=60)
    finally:
        sock.close()
    for name in ("zero", "pipe", "sock"):
        assert f"skipping {name}: not a regular file" in out.stderr, out.stderr
    assert server_tree(live_server) == {"plain.txt": b"plain"}
    assert "0 up, 0 down" in a.once().stdout  # skipped every pass, never an error


def _without_root_override() -> list[str]:
    """A command prefix under which a 000 file cannot be read. As root, that means dropping
    the capabilities that bypass file permissions (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH) with
    util-linux ``setpriv``: the client is still uid 0, so it can use the root-owned interpreter,
    folders and state, but reads through the permission bits like any user."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        if os.environ.get("CI") == "true":
            pytest.fail("setpriv (util-linux) is needed to test unreadable files as root")
        pytest.skip("setpriv (util-linux) missing: as root every file is readable")
    caps = "-dac_override,-dac_read_search"
    return [setpriv, f"--inh-caps={caps}", f"--bounding-set={caps}"]


def test_unreadable_files_and_folders_are_skipped_and_left_alone(devices, live_server):
    a, b = devices("A"), devices("B")
    a.write("open.txt", "open")
    a.write("locked.txt", "v1")
    a.write("secret/inside.txt", "inside")
    a.once()
    b.once()
    b.write("locked.txt", "v2 from B")  # edited elsewhere while A cannot read its copy
    b.once()
    a.write("new-locked.txt", "never read")
    for rel in ("locked.txt", "new-locked.txt", "secret"):
        os.chmod(a.path(rel), 0)
    a.write("open.txt", "open, edited")

    prefix = _without_root_override()
    probe = subprocess.run(
        [*prefix, sys.executable, "-c", f"open({str(a.path('locked.txt'))!r})"],
        capture_output=True,
    )
    assert probe.returncode != 0, "the test's client could read a mode-000 file"
    try:
        out = subprocess.run(
            [*prefix, *CLIENT, "once", str(a.root)], capture_output=True, text=True, timeout=120
        )
        assert out.returncode == 0, out.stderr
        for rel in ("locked.txt", "new-locked.txt", "secret"):
            assert f"skipping unreadable {rel}" in out.stderr, out.stderr
        remote = server_tree(live_server)
        # the readable edit went up; nothing unreadable was deleted, uploaded or replaced
        assert remote["open.txt"] == b"open, edited"
        assert remote["secret/inside.txt"] == b"inside" and remote["locked.txt"] == b"v2 from B"
        assert "new-locked.txt" not in remote
        assert "0 deleted" in out.stdout and "0 conflicts" in out.stdout
    finally:
        os.chmod(a.path("locked.txt"), 0o644)
        os.chmod(a.path("new-locked.txt"), 0o644)
        os.chmod(a.path("secret"), 0o755)
    assert a.path("locked.txt").read_text() == "v1"  # not overwritten while unreadable

    # readable again: the server's edit comes down, the new file goes up
    a.once()
    b.once()
    assert a.tree() == b.tree() == server_tree(live_server)
    assert a.path("locked.txt").read_text() == "v2 from B"
    assert b.path("new-locked.txt").read_text() == "never read"
