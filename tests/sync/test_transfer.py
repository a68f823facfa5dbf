"""Bytes on the wire for a small edit of a big file, and kill -9 mid-transfer."""

from __future__ import annotations

import random
import time

import pytest

from davdrive_sync.engine import PARALLEL
from scripts.counting_proxy import CountingProxy
from tests.sync.conftest import server_tree

MiB = 1 << 20


def test_one_byte_insert_in_a_32_mib_file_moves_little(devices, live_server):
    proxy = CountingProxy(live_server.port)
    a, b = devices("A", url=proxy.url), devices("B", url=proxy.url)
    data = random.Random(7).randbytes(32 * MiB)
    a.write("big.bin", data)
    a.once()
    b.once()
    assert b.path("big.bin").read_bytes() == data

    edited = data[: 16 * MiB] + b"!" + data[16 * MiB :]
    a.write("big.bin", edited)
    proxy.reset()
    a.once()
    up = proxy.up
    proxy.reset()
    b.once()
    down = proxy.down
    print(
        f"\n1-byte insert in a {len(edited) / MiB:.0f} MiB file: {up / MiB:.2f} MiB up, "
        f"{down / MiB:.2f} MiB down on the second device (a whole-file client: "
        f"{len(edited) / MiB:.0f} MiB each way)"
    )
    assert b.path("big.bin").read_bytes() == edited
    assert up <= 2.5 * MiB and down <= 2.5 * MiB
    proxy.close()


def _kill_when(proc, proxy: CountingProxy, way: str, threshold: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while getattr(proxy, way) < threshold:
        assert proc.poll() is None, "the client finished before it could be killed"
        assert time.monotonic() < deadline, "no transfer seen"
        time.sleep(0.02)
    proc.kill()  # SIGKILL
    proc.wait(10)


def _no_partials(tree: dict, expected: set[str]) -> None:
    assert set(tree) <= expected, f"unexpected entries {set(tree) - expected}"


@pytest.mark.parametrize("way", ["up", "down"])
def test_kill_9_mid_transfer_then_rerun_converges(devices, live_server, way):
    proxy = CountingProxy(live_server.port, rate=12 * MiB)
    a, b = devices("A", url=proxy.url), devices("B", url=proxy.url)
    data = random.Random(3).randbytes(24 * MiB)
    a.write("small.txt", "x")
    a.once()
    b.once()
    a.write("big.bin", data)
    proxy.reset()
    if way == "up":
        proc = a.spawn_once()
        _kill_when(proc, proxy, "up", 6 * MiB)
        # nothing partial on the server, the local file untouched
        assert set(server_tree(live_server)) == {"small.txt"}
        assert a.path("big.bin").read_bytes() == data
        a.once()
        assert server_tree(live_server)["big.bin"] == data
        b.once()
    else:
        a.once()
        proxy.reset()
        proc = b.spawn_once()
        _kill_when(proc, proxy, "down", 6 * MiB)
        _no_partials(b.tree(), {"small.txt"})
        b.once()
        assert not list((b.root / ".davdrive-sync" / "tmp").iterdir())
    assert a.tree() == b.tree() == server_tree(live_server)
    assert b.path("big.bin").read_bytes() == data
    proxy.close()


def test_blocks_go_up_and_down_in_parallel(devices, live_server):
    """Blocks in flight at once, seen at the socket (``max_busy``: requests sent and not yet
    answered). Uploads: a throttled link makes each block's request last ~0.1 s, so all four
    ``PUT``s are seen at once; a client sending one block after the other would show one.
    Downloads: a ``GET`` is busy only until its answer starts (the server's read of the block,
    milliseconds), so the check is looser: more than one at once."""
    proxy = CountingProxy(live_server.port, rate=8 * MiB)
    a, b = devices("A", url=proxy.url), devices("B", url=proxy.url)
    data = random.Random(9).randbytes(16 * MiB)
    a.write("big.bin", data)
    proxy.reset()
    a.once()
    assert proxy.up >= len(data)
    assert PARALLEL > 1 and proxy.max_busy == PARALLEL, proxy.max_busy
    proxy.reset()
    b.once()
    assert proxy.down >= len(data)
    assert 2 <= proxy.max_busy <= PARALLEL, proxy.max_busy
    assert b.path("big.bin").read_bytes() == data
    proxy.close()
