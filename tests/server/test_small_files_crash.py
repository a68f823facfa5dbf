"""Inline small files survive a crash (issue 15): a real ``davdrive serve`` is killed with
SIGKILL in the middle of a burst of small PUTs from 8 keep-alive clients; after a restart on the
same data directory every PUT that was answered 2xx reads back byte-exact, every unanswered one
is absent or whole, and ``fsck`` finds the store clean. Also: the block counters of
``GET /metrics`` for small (inline) and large (object) uploads."""

from __future__ import annotations

import hashlib
import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from davdrive.blockstore.store import INLINE_MAX
from tests.live import LiveServer

CLIENTS = 8
ROUNDS = 2
KILL_AFTER = (1.0, 1.7)  # seconds of burst before SIGKILL, one per round
MIN_ACKED_PER_ROUND = 30  # and at least this many answered PUTs in the round
MIN_ACKED = 50  # over all rounds: the test must not pass on an empty burst
BURST_DEADLINE = 60.0  # a loaded machine gets this long to answer MIN_ACKED_PER_ROUND PUTs
TIMEOUT = (10, 60)  # (connect, read) seconds for every request
KiB = 1 << 10


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# A few contents every client uses now and then: identical small files share one inline block
# (deduplicated by the database insert), identical larger ones one object.
_SHARED = [random.Random(i).randbytes(n) for i, n in enumerate((0, 1, 100, 4 * KiB, INLINE_MAX))]
_SHARED += [b"shared-text " * 3000, random.Random(99).randbytes(INLINE_MAX + 1)]


def _body(rng: random.Random) -> bytes:
    """Mostly 0 B .. 64 KiB (inline), some just above 64 KiB (an object), some shared ones."""
    pick = rng.random()
    if pick < 0.15:
        return rng.choice(_SHARED)
    if pick < 0.22:
        return rng.randbytes(INLINE_MAX + rng.randint(1, 8 * KiB))
    size = (
        rng.choice((0, 1, INLINE_MAX, INLINE_MAX - 1)) if pick < 0.27 else rng.randint(0, 64 * KiB)
    )
    if rng.random() < 0.3:  # compressible
        return (b"davdrive small file %d " % size * (size // 20 + 1))[:size]
    return rng.randbytes(size)


@dataclass
class Burst:
    """What the clients of one round sent: answered 2xx, or sent without an answer."""

    acked: dict[str, tuple[str, int]] = field(default_factory=dict)  # path -> (sha256, size)
    unanswered: dict[str, tuple[str, int]] = field(default_factory=dict)
    other: list[tuple[str, int]] = field(default_factory=list)  # (path, status) of non-2xx
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)

    def count(self) -> int:
        with self.lock:
            return len(self.acked)


def _client(srv: LiveServer, burst: Burst, rnd: int, n: int) -> None:
    rng = random.Random(rnd * 1000 + n)
    base = srv.dav("alice") + "burst/"
    with requests.Session() as session:
        session.auth = srv.auth("alice")
        i = 0
        while not burst.stop.is_set():
            name = f"r{rnd}-c{n}-{i:05d}.bin"
            i += 1
            data = _body(rng)
            try:
                r = session.put(base + name, data=data, timeout=TIMEOUT)
            except requests.RequestException:
                # the server died under this request (or before it): the file may or may not
                # have been committed; a new connection for the next attempt
                with burst.lock:
                    burst.unanswered[name] = (_sha(data), len(data))
                session.close()
                time.sleep(0.05)
                continue
            with burst.lock:
                if r.status_code in (201, 204):
                    burst.acked[name] = (_sha(data), len(data))
                else:
                    burst.other.append((name, r.status_code))


def _run_burst(srv: LiveServer, rnd: int, kill_after: float) -> Burst:
    """Start the clients, SIGKILL the server after ``kill_after`` seconds (and enough answered
    PUTs), stop the clients and return what they saw."""
    burst = Burst()
    threads = [
        threading.Thread(target=_client, args=(srv, burst, rnd, n), daemon=True)
        for n in range(CLIENTS)
    ]
    started = time.monotonic()
    for t in threads:
        t.start()
    try:
        while (
            time.monotonic() - started < kill_after or burst.count() < MIN_ACKED_PER_ROUND
        ) and time.monotonic() - started < BURST_DEADLINE:
            assert srv.proc is not None and srv.proc.poll() is None, "the server died on its own"
            time.sleep(0.02)
        assert srv.proc is not None
        srv.proc.kill()  # SIGKILL: no shutdown code runs
        srv.proc.wait(30)
    finally:
        burst.stop.set()
        for t in threads:
            t.join(90)
    assert not any(t.is_alive() for t in threads), "a client hung after the kill"
    assert srv.stop() == -9  # reaps nothing more; clears srv.proc for the restart
    return burst


def _check(
    srv: LiveServer, expected: dict[str, tuple[str, int]], maybe: dict[str, tuple[str, int]]
) -> None:
    """Every ``expected`` file reads back with its sha256; every ``maybe`` one (sent, never
    answered) is absent or whole."""
    base = srv.dav("alice") + "burst/"
    bad = []
    with requests.Session() as session:
        session.auth = srv.auth("alice")
        for name, (digest, _size) in sorted(expected.items()):
            r = session.get(base + name, timeout=TIMEOUT)
            if r.status_code != 200 or _sha(r.content) != digest:
                bad.append((name, r.status_code, len(r.content)))
        assert not bad, f"{len(bad)} of {len(expected)} acknowledged files lost: {bad[:10]}"
        for name, (digest, _size) in sorted(maybe.items()):
            r = session.get(base + name, timeout=TIMEOUT)
            assert r.status_code in (200, 404), (name, r.status_code)
            if r.status_code == 200:
                assert _sha(r.content) == digest, f"{name}: an unanswered PUT left a mixed file"


@pytest.mark.slow  # ~15 s, like the other SIGKILL test (tests/service/test_crash.py)
def test_acknowledged_small_files_survive_sigkill(live_server_factory):
    srv = live_server_factory()
    r = requests.request("MKCOL", srv.dav("alice") + "burst/", auth=srv.auth("alice"), timeout=30)
    assert r.status_code == 201, r.text
    expected: dict[str, tuple[str, int]] = {}
    maybe: dict[str, tuple[str, int]] = {}
    for rnd in range(ROUNDS):
        burst = _run_burst(srv, rnd, KILL_AFTER[rnd])
        assert not burst.other, f"PUTs answered with an error: {burst.other[:10]}"
        assert len(burst.acked) >= MIN_ACKED_PER_ROUND, (
            f"round {rnd}: only {len(burst.acked)} PUTs answered in {BURST_DEADLINE}s"
        )
        expected.update(burst.acked)
        maybe.update(burst.unanswered)
        srv.start()  # same port, same data directory
        _check(srv, expected, maybe)
    assert len(expected) >= MIN_ACKED
    # both kinds of block were exercised: inline (<= 64 KiB) and object (> 64 KiB)
    sizes = [size for _, size in expected.values()]
    assert min(sizes) <= INLINE_MAX < max(sizes)
    assert srv.stop() == 0
    fsck = srv.cli("fsck")  # raises on a non-zero exit (missing or damaged blocks)
    assert "missing: 0" in fsck.stdout and "damaged: 0" in fsck.stdout, fsck.stdout


def _scrape(srv: LiveServer) -> dict[str, float]:
    r = requests.get(f"{srv.url}/metrics", timeout=30)
    assert r.status_code == 200, r.text
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            if not s.labels:
                out[s.name] = s.value
    return out


def test_block_counters_for_small_and_large_uploads(live_server_factory, tmp_path: Path):
    cfg = tmp_path / "metrics.yaml"
    cfg.write_text("metrics: public\n")
    srv = live_server_factory(extra_args=("--config", str(cfg)))
    alice = srv.auth("alice")
    written, deduped = "davdrive_blocks_written_total", "davdrive_blocks_deduped_total"

    def put(name: str, data: bytes) -> None:
        r = requests.put(srv.dav("alice") + name, data=data, auth=alice, timeout=TIMEOUT)
        assert r.status_code == 201, r.text

    before = _scrape(srv)
    rng = random.Random(15)
    for i in range(3):  # three different small files: three new inline blocks
        put(f"small-{i}.bin", rng.randbytes(1000 + i))
    after_small = _scrape(srv)
    assert after_small[written] - before[written] == 3
    assert after_small[deduped] == before[deduped]

    # the same small content twice: one inline block row (the database insert deduplicates),
    # which the counters may show as written twice; either way two blocks are counted
    put("same-a.bin", b"same small content")
    put("same-b.bin", b"same small content")
    after_same = _scrape(srv)
    counted = (after_same[written] + after_same[deduped]) - (
        after_small[written] + after_small[deduped]
    )
    assert counted == 2

    big = rng.randbytes(300 * KiB)  # above INLINE_MAX: stored as objects
    put("big-1.bin", big)
    after_first = _scrape(srv)
    new_blocks = after_first[written] - after_same[written]
    assert new_blocks >= 1
    assert after_first[deduped] == after_same[deduped]
    put("big-2.bin", big)  # every block of the second copy is already stored
    after_second = _scrape(srv)
    assert after_second[deduped] - after_first[deduped] == new_blocks
    assert after_second[written] == after_first[written]
    for name in ("big-1.bin", "big-2.bin"):
        assert requests.get(srv.dav("alice") + name, auth=alice, timeout=TIMEOUT).content == big
