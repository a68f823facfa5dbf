#!/usr/bin/env python3
"""Seed-design upload load (issue 15): davdrive vs stock WsgiDAV, same run, same client code.

~500 KB files (sizes uniform in --size-kb ± 20 %, half text-like, half random, all determined
by --seed) are PUT by --clients concurrent clients, each a thread with its own keep-alive
``http.client`` connection, until --count uploads are done or --seconds have passed, whichever
comes first. Then --verify randomly chosen uploaded files are fetched back and byte-compared.
Printed per server: uploads, uploads/s, MB/s (10^6 bytes of payload per wall second), p50/p99
latency of one upload, server CPU ms per upload (/proc of the server pid, during the uploads
only), peak RSS of the server (VmHWM over its life); then the ratios davdrive ÷ stock.

    python scripts/bench_seed_load.py [--clients 16] [--count 4000] [--seconds 20]
                                      [--size-kb 500] [--verify 50] [--repeat 1] [--seed 15]

The servers are started by ``bench_webdav`` (same helpers): ``davdrive serve`` with its
defaults (64 worker threads, loopback exempt from the per-client connection cap, every write
fsynced) and ``wsgidav.server.server_cli`` with FilesystemProvider (50 cheroot threads, no
fsync), whose cheroot keep-alive limit (10) and listen backlog (5) are raised to 256 and 128
so that 16 clients keep their connections, as on davdrive (``--stock-defaults``: untouched;
see bench_webdav.STOCK_TUNED). Each client's connection serves one OPTIONS before the clock.
Every file has its own content: text-like files are lines drawn at random from a pool of log
lines (zstd -1 ratio ~2.2), so neither server can deduplicate. All payloads are generated
before the first upload and held in memory (~--count × --size-kb). With --repeat N each run
starts fresh servers on fresh directories; every run is printed, then the medians.
"""

from __future__ import annotations

import argparse
import http.client
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_webdav import (  # noqa: E402
    DAVDRIVE,
    STOCK,
    STOCK_DEFAULTS_HELP,
    Server,
    drive,
    get_bytes,
    mkcol,
    put,
    rss_mib,
    running_servers,
    text_like,
)

FOLDERS = 16
METRICS = (  # key, label, format
    ("uploads", "uploads", "{:10.0f}"),
    ("rate", "uploads/s", "{:10.1f}"),
    ("mbps", "MB/s", "{:10.1f}"),
    ("p50", "p50 latency per upload (ms)", "{:10.1f}"),
    ("p99", "p99 latency per upload (ms)", "{:10.1f}"),
    ("cpu", "server CPU per upload (ms)", "{:10.2f}"),
    ("rss", "peak RSS (MiB)", "{:10.1f}"),
)


def make_payloads(count: int, size_kb: int, seed: int) -> list[tuple[str, bytes]]:
    """(path, content) of upload i: even i text-like, odd i random, 0.8-1.2 × size_kb KB."""
    lines = text_like(4 << 20, seed).splitlines(keepends=True)
    lo, hi = int(size_kb * 800), int(size_kb * 1200)
    out = []
    for i in range(count):
        rng = random.Random(seed * 1_000_003 + i)
        size = rng.randint(lo, hi)
        if i % 2:
            data, ext = rng.randbytes(size), "bin"
        else:
            parts: list[bytes] = []
            n = 0
            while n < size:
                chunk = rng.choices(lines, k=1000)
                parts.extend(chunk)
                n += sum(map(len, chunk))
            data, ext = b"".join(parts)[:size], "txt"
        out.append((f"seed/d{i % FOLDERS:02d}/f{i:06d}.{ext}", data))
    return out


def run_one(server: Server, payloads: list[tuple[str, bytes]], args: argparse.Namespace) -> dict:
    conn = server.conn()
    mkcol(server, conn, "seed/")
    for d in range(FOLDERS):
        mkcol(server, conn, f"seed/d{d:02d}/")
    conn.close()

    def upload(c: http.client.HTTPConnection, i: int) -> None:
        path, data = payloads[i]
        put(server, c, path, data)

    d = drive(server, args.clients, upload, count=len(payloads), seconds=args.seconds)
    # every started upload finished (or drive raised), so uploads 0 .. d.done-1 are stored
    sent = sum(len(payloads[i][1]) for i in range(d.done))
    sample = random.Random(args.seed).sample(range(d.done), min(args.verify, d.done))
    conn = server.conn()
    for i in sample:
        path, data = payloads[i]
        if get_bytes(server, conn, path) != data:
            raise RuntimeError(f"{server.name}: GET {path} returned other bytes than were PUT")
    conn.close()
    return {
        "uploads": d.done,
        "rate": d.rate,
        "mbps": sent / d.wall / 1e6,
        "p50": d.latency_ms(0.50),
        "p99": d.latency_ms(0.99),
        "cpu": d.cpu_ms_per_op,
        "rss": rss_mib(server.proc.pid),
        "verified": len(sample),
    }


def print_table(title: str, results: dict[str, dict]) -> None:
    dd, st = results[DAVDRIVE], results[STOCK]
    print(f"\n{title}")
    print(f"{'metric':30} {'davdrive':>10} {'stock':>10} {'dd ÷ stock':>11}")
    for key, label, fmt in METRICS:
        ratio = dd[key] / st[key] if st[key] else float("nan")
        print(f"{label:30} {fmt.format(dd[key])} {fmt.format(st[key])} {ratio:11.2f}")
    if "verified" in dd:
        print(
            f"verified: {dd['verified']} (davdrive) / {st['verified']} (stock) random uploads "
            "fetched back and byte-compared"
        )
    print("ratio = davdrive ÷ stock (uploads/s, MB/s: higher is better; latency, CPU, RSS: lower)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=16, help="concurrent clients (16)")
    ap.add_argument("--count", type=int, default=4000, help="stop after this many uploads")
    ap.add_argument("--seconds", type=float, default=20.0, help="... or after this many s")
    ap.add_argument("--size-kb", type=int, default=500, help="mean file size, KB (10^3)")
    ap.add_argument("--verify", type=int, default=50, help="uploads fetched back and compared")
    ap.add_argument("--repeat", type=int, default=1, help="runs (fresh servers each); medians")
    ap.add_argument("--seed", type=int, default=15)
    ap.add_argument("--stock-defaults", action="store_true", help=STOCK_DEFAULTS_HELP)
    args = ap.parse_args()
    t0 = time.perf_counter()
    payloads = make_payloads(args.count, args.size_kb, args.seed)
    total = sum(len(d) for _, d in payloads)
    print(
        f"{len(payloads)} payloads, {total / 1e6:.0f} MB, generated in "
        f"{time.perf_counter() - t0:.1f} s",
        flush=True,
    )
    what = (
        f"{args.clients} clients, up to {args.count} uploads or {args.seconds:g} s, "
        f"{args.size_kb * 0.8:.0f}-{args.size_kb * 1.2:.0f} KB (half text-like, half random)"
    )
    runs: list[dict[str, dict]] = []
    for n in range(args.repeat):
        with running_servers("bench-seed-", not args.stock_defaults) as servers:
            results = {s.name: run_one(s, payloads, args) for s in servers}
        runs.append(results)
        print_table(f"run {n + 1}/{args.repeat}: {what}", results)
        sys.stdout.flush()
    if args.repeat > 1:
        med = {
            name: {k: statistics.median(r[name][k] for r in runs) for k, _, _ in METRICS}
            for name in runs[0]
        }
        print_table(f"median of {args.repeat} runs: {what}", med)


if __name__ == "__main__":
    main()
