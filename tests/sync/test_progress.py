"""Progress bars: ``once`` draws one for big transfers on a terminal, ``run`` logs quietly."""

from __future__ import annotations

import fcntl
import os
import pty
import random
import re
import signal
import struct
import subprocess
import termios
import threading
import time
from collections.abc import Callable

from tests.sync.conftest import CLIENT

MiB = 1 << 20


class Terminal:
    """A client process whose stderr is a pseudo-terminal (``isatty()`` is true), read whole."""

    def __init__(self, *args: str) -> None:
        master, slave = pty.openpty()
        # 24 rows, 120 columns: a pty starts with 0 columns, where tqdm draws nothing
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
        self.proc = subprocess.Popen(
            [*CLIENT, *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave
        )
        os.close(slave)
        self._master = master
        self._chunks: list[bytes] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self._master, 65536)
            except OSError:  # EIO: the process closed the terminal
                return
            if not data:
                return
            self._chunks.append(data)

    def text(self) -> str:
        """What the process wrote to the terminal so far."""
        return b"".join(self._chunks).decode(errors="replace")

    def finish(self, timeout: float = 120) -> tuple[int, str]:
        """Wait for the process; its exit status and everything it wrote to the terminal."""
        rc = self.proc.wait(timeout)
        self.proc.stdout.close()  # type: ignore[union-attr]
        self._reader.join(10)
        os.close(self._master)
        return rc, self.text()


def _wait(cond: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def test_once_draws_a_bar_for_big_transfers_and_run_stays_quiet(devices):
    a, b, c = devices("A"), devices("B"), devices("C")
    data = random.Random(5).randbytes(12 * MiB)
    a.write("big.bin", data)
    a.write("small.txt", "small")

    # once, stderr a terminal: a bar for the 12 MiB upload, none for the 5-byte file
    rc, err = Terminal("once", str(a.root)).finish()
    assert rc == 0, err
    assert re.search(r"up big\.bin: +\d+%\|", err), err
    assert "upload: small.txt" in err and "up small.txt" not in err

    # run, stderr a terminal too: the same 12 MiB download, a log line and no bar
    term = Terminal("run", str(b.root), "--debounce", "0.3")
    try:
        _wait(lambda: b.path("big.bin").exists() and b.path("big.bin").read_bytes() == data)
        _wait(lambda: "synced:" in term.text())  # the pass that downloaded it has ended
    finally:
        term.proc.send_signal(signal.SIGINT)
        rc, err = term.finish()
    assert "download: big.bin" not in err  # run logs one line per pass, not per file
    assert "down big.bin" not in err and "%|" not in err, err

    # --progress draws the bar when stderr is not a terminal (a pipe here) ...
    out = c.once("--progress")
    assert re.search(r"down big\.bin: +\d+%\|", out.stderr), out.stderr
    # ... and --no-progress keeps a terminal free of it
    a.write("big.bin", random.Random(6).randbytes(12 * MiB))
    rc, err = Terminal("once", str(a.root), "--no-progress").finish()
    assert rc == 0 and "upload: big.bin" in err and "%|" not in err, err
