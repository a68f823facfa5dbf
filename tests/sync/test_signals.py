"""Stopping the client with SIGTERM (``kill``, ``systemctl stop``) or SIGINT (Ctrl-C): it exits
within seconds, even parked in the server's long-poll or in the middle of a big transfer, leaves
no temp file, and the next pass converges (an interrupted upload sends only what is missing)."""

from __future__ import annotations

import random
import signal
import subprocess
import time
from collections.abc import Callable

import pytest

from scripts.counting_proxy import CountingProxy
from tests.sync.conftest import CLIENT, Device, server_tree

MiB = 1 << 20
PROMPT = 5.0  # seconds from the signal to the exit (blocks in flight finish: ≤ 1 s each here)


class Running:
    """A client process; its output goes to a file beside the synced folder (readable while it
    runs, and not a file the watcher would sync)."""

    def __init__(self, d: Device, *args: str) -> None:
        self.log = d.root.parent / f"{d.name}-{args[0]}.log"
        self._out = open(self.log, "wb")  # noqa: SIM115 - closed by stop()
        self.proc = subprocess.Popen(
            [*CLIENT, *args], stdin=subprocess.DEVNULL, stdout=self._out, stderr=subprocess.STDOUT
        )

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, sig: int) -> tuple[int, float]:
        """Send ``sig``; the exit status and the seconds it took to exit."""
        assert self.proc.poll() is None, f"exited early:\n{self.text()}"
        t0 = time.monotonic()
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(60)
        finally:
            self._out.close()
        return rc, time.monotonic() - t0

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._out.close()


def _wait(cond: Callable[[], bool], proc: Running, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert proc.proc.poll() is None, f"the client exited:\n{proc.text()}"
        assert time.monotonic() < deadline, f"timed out:\n{proc.text()}"
        time.sleep(0.02)


def _parked(proxy: CountingProxy, for_s: float = 1.5) -> bool:
    """One request has been in flight, and nothing else, for ``for_s`` seconds (a pass's
    requests take milliseconds: that one is the long-poll)."""
    end = time.monotonic() + for_s
    while time.monotonic() < end:
        if proxy.busy != 1:
            return False
        time.sleep(0.02)
    return True


def _tmp_files(d: Device) -> list[str]:
    return [p.name for p in (d.root / ".davdrive-sync" / "tmp").iterdir()]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_run_stops_at_once_while_parked_in_the_long_poll(devices, live_server, sig):
    proxy = CountingProxy(live_server.port)
    a = devices("A", url=proxy.url)
    a.write("hello.txt", "hi")
    run = Running(a, "run", str(a.root), "--debounce", "0.2")
    try:
        _wait(lambda: "synced:" in run.text(), run)
        # the only request in flight is the long-poll, waiting on the server (60 s timeout)
        _wait(lambda: _parked(proxy), run)
        rc, took = run.stop(sig)
    finally:
        run.kill()
    name = signal.Signals(sig).name
    assert rc == 0, run.text()
    print(f"stopped in {took:.2f} s")
    assert took < PROMPT, f"{took:.1f} s to stop"
    assert f"stopped ({name})" in run.text()
    assert "running:  no" in a.cli("status", str(a.root)).stdout  # the folder lock is free
    assert not _tmp_files(a)
    assert "0 up, 0 down" in a.once().stdout
    assert server_tree(live_server) == {"hello.txt": b"hi"}
    proxy.close()


@pytest.mark.parametrize("way", ["up", "down"])
def test_run_stops_cleanly_in_the_middle_of_a_big_transfer(devices, live_server, way):
    proxy = CountingProxy(live_server.port, rate=4 * MiB)  # per connection; 4 in parallel
    data = random.Random(15).randbytes(32 * MiB)
    if way == "up":
        a, b = devices("A", url=proxy.url), devices("B")
        a.write("big.bin", data)
        runner = a
    else:
        a, b = devices("A"), devices("B", url=proxy.url)
        a.write("big.bin", data)
        a.once()
        runner = b
    proxy.reset()
    run = Running(runner, "run", str(runner.root), "--debounce", "0.2")
    try:
        _wait(lambda: proxy.counts()[0 if way == "up" else 1] >= 6 * MiB, run)
        rc, took = run.stop(signal.SIGTERM)
    finally:
        run.kill()
    assert rc == 0, run.text()
    print(f"stopped in {took:.2f} s")
    assert took < PROMPT, f"{took:.1f} s to stop"
    assert "stopped (SIGTERM)" in run.text()
    assert not _tmp_files(runner)  # the download's temp file is gone (kill -9 leaves it)
    if way == "up":
        assert "big.bin" not in server_tree(live_server)  # not committed: nothing partial
        assert a.path("big.bin").read_bytes() == data
        # resumable: the blocks that went up before the stop are not sent again
        proxy.reset()
        a.once()
        assert proxy.up <= len(data) - 4 * MiB, proxy.up
        b.once()
    else:
        assert not b.path("big.bin").exists()
        b.once()
    assert a.tree() == b.tree() == server_tree(live_server)
    assert b.path("big.bin").read_bytes() == data
    proxy.close()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_once_interrupted_mid_download_exits_128_plus_the_signal_and_leaves_no_temp_file(
    devices, live_server, sig
):
    proxy = CountingProxy(live_server.port, rate=4 * MiB)
    a, b = devices("A"), devices("B", url=proxy.url)
    data = random.Random(16).randbytes(32 * MiB)
    a.write("big.bin", data)
    a.once()
    proxy.reset()
    run = Running(b, "once", str(b.root))
    try:
        _wait(lambda: proxy.down >= 6 * MiB, run)
        assert _tmp_files(b)  # the download is being written to its temp file
        rc, took = run.stop(sig)
    finally:
        run.kill()
    assert rc == 128 + sig and took < PROMPT, (rc, took, run.text())
    assert "interrupted" in run.text() and "not in sync" in run.text()
    assert not _tmp_files(b) and not b.path("big.bin").exists()
    b.once()
    assert b.path("big.bin").read_bytes() == data
    proxy.close()
