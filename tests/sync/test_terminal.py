"""``davdrive-sync init`` asks for the app password on the terminal (getpass: no echo)."""

from __future__ import annotations

import os
import pty
import select
import sys
import time

from tests.sync.conftest import CLIENT, app_password, server_tree


class Tty:
    """A client process whose controlling terminal is a pseudo-terminal (``pty.fork``)."""

    def __init__(self, *args: str) -> None:
        pid, fd = pty.fork()
        if pid == 0:  # the child: exec at once (the parent has threads)
            try:
                os.execv(sys.executable, [sys.executable, *CLIENT[1:], *args])
            finally:
                os._exit(127)
        self.pid, self.fd = pid, fd
        self.seen = b""

    def read_until(self, marker: bytes, timeout: float = 30.0) -> bytes:
        """What the terminal shows until ``marker`` (included)."""
        deadline = time.monotonic() + timeout
        while marker not in self.seen:
            left = deadline - time.monotonic()
            assert left > 0, f"no {marker!r} on the terminal: {self.seen!r}"
            if select.select([self.fd], [], [], left)[0]:
                try:
                    data = os.read(self.fd, 4096)
                except OSError:  # EIO: the process closed the terminal
                    data = b""
                assert data, f"the process ended before {marker!r}: {self.seen!r}"
                self.seen += data
        return self.seen

    def type(self, text: str) -> None:
        os.write(self.fd, text.encode())

    def finish(self, timeout: float = 60.0) -> tuple[int, str]:
        """Everything shown after the last read, and the exit status."""
        start = len(self.seen)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not select.select([self.fd], [], [], 0.2)[0]:
                done, status = os.waitpid(self.pid, os.WNOHANG)
                if done:
                    break
                continue
            try:
                data = os.read(self.fd, 4096)
            except OSError:
                data = b""
            if not data:
                _, status = os.waitpid(self.pid, 0)
                break
            self.seen += data
        else:
            os.kill(self.pid, 9)
            raise AssertionError(f"still running: {self.seen!r}")
        os.close(self.fd)
        return os.waitstatus_to_exitcode(status), self.seen[start:].decode(errors="replace")


def test_init_asks_for_the_password_on_the_terminal_without_echo(live_server, tmp_path):
    root = tmp_path / "laptop"
    args = ("init", str(root), live_server.url, "--user", "alice", "--device", "laptop")

    wrong = Tty(*args)
    wrong.read_until(b"app password for alice: ")
    wrong.type("not-the-password\n")
    rc, shown = wrong.finish()
    assert rc == 1 and "refused" in shown, shown
    assert "not-the-password" not in shown  # typed, never echoed
    assert not (root / ".davdrive-sync" / "credential").exists()

    pw = app_password(live_server, "alice", "laptop")
    tty = Tty(*args)
    tty.read_until(b"app password for alice: ")
    tty.type(pw + "\n")
    rc, shown = tty.finish()
    assert rc == 0, shown
    assert pw not in shown and "will sync with" in shown
    cred = root / ".davdrive-sync" / "credential"
    assert cred.read_text() == pw and cred.stat().st_mode & 0o777 == 0o600


def test_once_on_a_terminal_asks_at_the_delete_guard(devices, live_server):
    """A person running ``once`` is asked; "n" keeps the files (exit 3), "y" deletes them."""
    a = devices("A")
    for i in range(12):
        a.write(f"f{i:02}.txt", f"file {i}")
    a.once()
    for i in range(10):
        a.path(f"f{i:02}.txt").unlink()
    question = b"this pass would delete 10 of 12 synced files on the server. Delete them? [y/N]"
    tty = Tty("once", str(a.root))
    tty.read_until(question)
    tty.type("n\n")
    status, shown = tty.finish()
    assert status == 3 and "nothing was deleted" in shown, shown
    assert len(server_tree(live_server)) == 12
    tty = Tty("once", str(a.root))
    tty.read_until(question)
    tty.type("y\n")
    status, shown = tty.finish()
    assert status == 0, shown
    assert set(server_tree(live_server)) == {"f10.txt", "f11.txt"}
