#!/usr/bin/env python3
"""Bytes on the wire of delta sync (``davdrive-sync``) beside a whole-file WebDAV client.

Issue 11 goals, for a --size-mib (100) MiB random file synced between two devices: (a) a 1-byte
insert in the middle costs <= 2.5 MiB up, (b) appending 1 MiB costs <= 2.5 MiB up, (c) the
second device downloading each edit fetches <= 2.5 MiB.

    python scripts/bench_sync.py [--size-mib 100] [--seed 11] [--runs 5]

Each run has its own random content (seed --seed, --seed + 1, ...) and fresh servers; every
run's table is printed, then the median of each figure over the runs. What an edit costs
depends on the content: a 1-byte insert re-sends the block it falls in (content-defined,
256 KiB to 4 MiB, 1 MiB on average; a random byte is more likely to fall in a big one) and
sometimes its neighbour, so single runs spread from about 0.5 to 3.5 MiB.

Starts a real ``davdrive serve`` and a stock WsgiDAV (FilesystemProvider) on fresh data
directories as ``scripts/bench_webdav.py`` does, puts a counting TCP proxy
(``scripts/counting_proxy.py``) in front of each, and drives two devices A and B with the real
``davdrive-sync`` command (``init`` with a device app password, then ``once`` per step),
both syncing the ``/sync`` folder of account ``syncer`` through davdrive's proxy (the
whole-file client writes as ``bench``: blocks are deduplicated per account, so neither spares
the other anything). Every byte of every
request and answer (headers, JSON, blocks) is counted at the proxy's sockets; each figure is
the proxy's count over one ``davdrive-sync once`` process. After each download the two local
files are compared by SHA-256.

Beside each figure: what a whole-file client moves for the same edit, measured through the
same kind of proxy: a WebDAV PUT of the whole edited file (over a copy of the previous
version, so it is an overwrite) and a GET of it, against davdrive (``/dav/bench/``) and
against stock WsgiDAV. The ratio is whole-file bytes / delta-sync bytes. The script exits 1
when the median (or the one run) misses a goal.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_webdav as bw  # noqa: E402 - the sibling script: server start-up helpers
from counting_proxy import CountingProxy  # noqa: E402 - shared with tests/sync

from davdrive_sync.engine import sha256_file as sha256  # noqa: E402

MiB = 1 << 20
GOAL = 2.5 * MiB
REMOTE = "/sync"
NAME = "big.bin"
# The devices sync an account of their own: blocks are deduplicated per account, so the
# whole-file client's uploads (account "bench") cannot spare the sync client anything.
SYNC_USER = "syncer"


def sync_command() -> list[str]:
    """The installed ``davdrive-sync`` console script (or the same entry point via -m)."""
    script = Path(sys.executable).with_name("davdrive-sync")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "davdrive_sync.cli"]


def davdrive_cli(data: Path, *args: str, stdin: str | None = None) -> str:
    return subprocess.run(
        [sys.executable, "-m", "davdrive.cli", "--data", str(data), *args],
        input=stdin,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def app_password(data: Path, device: str) -> str:
    """A new device of the sync account; its app password."""
    out = davdrive_cli(data, "device", "add", SYNC_USER, device)
    return next(line.split(": ", 1)[1] for line in out.splitlines() if "app password" in line)


@dataclasses.dataclass
class Device:
    name: str
    root: Path

    def cli(self, *args: str, stdin: str | None = None) -> str:
        proc = subprocess.run(
            [*sync_command(), *args], input=stdin, capture_output=True, text=True, timeout=900
        )
        if proc.returncode != 0:
            raise RuntimeError(f"davdrive-sync {args[0]} on {self.name}: {proc.stderr.strip()}")
        return proc.stdout

    def once(self) -> tuple[str, float]:
        t0 = time.perf_counter()
        out = self.cli("once", str(self.root), "--no-progress")
        return out, time.perf_counter() - t0


@dataclasses.dataclass
class Row:
    scenario: str
    way: str  # "up" or "down"
    wire: int  # bytes the sync client moved that way (proxy count)
    payload: int  # block bytes the client reports for the pass
    seconds: float
    whole: dict[str, int]  # server name -> bytes a whole-file client moved that way
    goal: bool  # whether the 2.5 MiB goal applies


def counted(proxy: CountingProxy, fn: Callable[[], object]) -> tuple[int, int]:
    proxy.reset()
    fn()
    return proxy.counts()


def block_bytes(summary: str, way: str) -> int:
    m = re.search(r"\((\d+) B sent, (\d+) B received", summary)
    if not m:
        return 0
    return int(m.group(1) if way == "up" else m.group(2))


def write_random(path: Path, size: int, seed: int) -> None:
    rng = random.Random(seed)
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, 4 * MiB)
            f.write(rng.randbytes(n))
            left -= n


def copy_range(src, dst, n: int) -> None:  # noqa: ANN001 - binary files
    while n:
        data = src.read(min(n, MiB))
        if not data:
            raise EOFError("source shorter than expected")
        dst.write(data)
        n -= len(data)


def edit(path: Path, work: Path, at: int, insert: bytes) -> None:
    """Write ``path`` again with ``insert`` at offset ``at``, then rename it into place (as an
    editor saves: a new file, one rename)."""
    tmp = work / "edit.tmp"
    size = path.stat().st_size
    with open(path, "rb") as src, open(tmp, "wb") as dst:
        copy_range(src, dst, at)
        dst.write(insert)
        copy_range(src, dst, size - at)
    os.replace(tmp, path)


# -- the whole-file client: one PUT / one GET of the whole file, streamed -------------------------
def put_file(server: bw.Server, path: str, src: Path) -> None:
    conn = server.conn()
    try:
        conn.putrequest("PUT", server.base + path)
        for k, v in server.headers({"Content-Length": str(src.stat().st_size)}).items():
            conn.putheader(k, v)
        conn.endheaders()
        with open(src, "rb") as f:
            while data := f.read(MiB):
                conn.send(data)
        resp = conn.getresponse()
        resp.read()
        if resp.status not in (200, 201, 204):
            raise RuntimeError(f"{server.name}: PUT {path} -> {resp.status}")
    finally:
        conn.close()


def get_file(server: bw.Server, path: str) -> str:
    conn = server.conn()
    try:
        return bw.get(server, conn, path)[1]
    finally:
        conn.close()


class WholeFile:
    """A whole-file client against both servers, each through its own counting proxy."""

    def __init__(self, servers: list[bw.Server]) -> None:
        self.proxies = {s.name: CountingProxy(s.port) for s in servers}
        self.via = {s.name: dataclasses.replace(s, port=self.proxies[s.name].port) for s in servers}

    def put(self, src: Path) -> dict[str, int]:
        """Bytes up for a PUT of ``src`` over the previous version, per server."""
        return {
            name: counted(self.proxies[name], lambda s=s: put_file(s, "whole.bin", src))[0]
            for name, s in self.via.items()
        }

    def get(self, expect: str) -> dict[str, int]:
        """Bytes down for a GET of the file, per server (content checked)."""
        out = {}
        for name, s in self.via.items():
            proxy = self.proxies[name]
            proxy.reset()
            if get_file(s, "whole.bin") != expect:
                raise RuntimeError(f"{name}: GET returned other content")
            out[name] = proxy.counts()[1]
        return out

    def close(self) -> None:
        for p in self.proxies.values():
            p.close()


# -- the run ------------------------------------------------------------------------------------
def run(size: int, seed: int, tmp: Path) -> list[Row]:
    work = tmp / "work"
    work.mkdir()
    servers = bw.start_servers(tmp)
    davdrive = servers[0]
    proxy = CountingProxy(davdrive.port)
    whole = WholeFile(servers)
    rows: list[Row] = []
    try:
        davdrive_cli(tmp / "davdrive", "user", "add", SYNC_USER, "--password-stdin", stdin="pw\n")
        a, b = Device("A", tmp / "A"), Device("B", tmp / "B")
        for d in (a, b):
            pw = app_password(tmp / "davdrive", d.name)
            d.cli(
                "init", str(d.root), proxy.url, "--user", SYNC_USER, "--device", d.name,
                "--remote-path", REMOTE, "--password-stdin", stdin=pw + "\n",
            )  # fmt: skip
        fa, fb = a.root / NAME, b.root / NAME

        def step(label: str, dev: Device, way: str, goal: bool, whole_bytes: dict) -> None:
            proxy.reset()
            out, secs = dev.once()
            up, down = proxy.counts()
            wire = up if way == "up" else down
            rows.append(Row(label, way, wire, block_bytes(out, way), secs, whole_bytes, goal))

        def after_edit(label: str) -> None:
            step(f"{label}: A uploads", a, "up", True, whole.put(fa))
            step(f"{label}: B downloads", b, "down", True, whole.get(sha256(fa)))
            if sha256(fb) != sha256(fa):
                raise RuntimeError(f"{label}: device B's copy differs from A's")

        write_random(fa, size, seed)
        after_edit(f"new {size / MiB:.0f} MiB file")
        rows[-2].goal = rows[-1].goal = False
        edit(fa, work, size // 2, b"!")
        after_edit("(a) 1-byte insert mid-file")
        tail = random.Random(seed + 1).randbytes(MiB)
        edit(fa, work, fa.stat().st_size, tail)
        after_edit("(b) 1 MiB appended")
    finally:
        whole.close()
        proxy.close()
        bw.stop_servers(servers)
    return rows


def mib(n: int) -> str:
    return f"{n / MiB:8.2f}"


def print_table(rows: list[Row], names: list[str]) -> bool:
    head = (
        f"{'scenario':<40} {'way':<4} {'sync MiB':>8} {'blocks':>8} {'s':>5}  "
        + "  ".join(f"{'whole-file ' + n:>24} {'ratio':>6}" for n in names)
        + "  goal <= 2.5 MiB"
    )
    print(head)
    print("-" * len(head))
    ok = True
    for r in rows:
        cells = "  ".join(
            f"{mib(r.whole[n]):>24} {r.whole[n] / max(r.wire, 1):5.1f}x" for n in names
        )
        verdict = "-"
        if r.goal:
            met = r.wire <= GOAL
            ok &= met
            verdict = "met" if met else "MISSED"
        print(
            f"{r.scenario:<40} {r.way:<4} {mib(r.wire)} {mib(r.payload)} {r.seconds:5.1f}  "
            f"{cells}  {verdict}"
        )
    return ok


def summarize(runs: list[list[Row]]) -> list[Row]:
    """Per scenario: the median over runs of every figure (``payload`` too)."""
    out = []
    for rows in zip(*runs, strict=True):
        med = statistics.median_low
        out.append(
            dataclasses.replace(
                rows[0],
                wire=med([r.wire for r in rows]),
                payload=med([r.payload for r in rows]),
                seconds=statistics.median([r.seconds for r in rows]),
                whole={n: med([r.whole[n] for r in rows]) for n in rows[0].whole},
            )
        )
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mib", type=int, default=100, help="file size (default 100)")
    ap.add_argument("--seed", type=int, default=11, help="seed of the first run's content")
    ap.add_argument("--runs", type=int, default=5, help="runs, seeds --seed, --seed+1, ... (5)")
    args = ap.parse_args()
    names = [bw.DAVDRIVE, bw.STOCK]
    print(
        f"davdrive-sync (2 devices, `once` per step) vs a whole-file WebDAV client; bytes at "
        f"the socket (counting proxy), MiB; 'blocks' = block payload the client reports; "
        f"ratio = whole-file / sync; machine: {os.cpu_count()} CPUs\n"
    )
    runs = []
    for seed in range(args.seed, args.seed + args.runs):
        tmp = Path(tempfile.mkdtemp(prefix="bench-sync-"))
        try:
            runs.append(run(args.size_mib * MiB, seed, tmp))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        print(f"seed {seed}:")
        print_table(runs[-1], names)
        print(flush=True)
    if len(runs) == 1:
        return 0 if all(r.wire <= GOAL for r in runs[0] if r.goal) else 1
    print(f"median of {len(runs)} runs (seeds {args.seed}-{args.seed + args.runs - 1}):")
    return 0 if print_table(summarize(runs), names) else 1


if __name__ == "__main__":
    sys.exit(main())
