#!/usr/bin/env python3
"""Long-poll benchmark: hold N long-polls open, make writes, measure wake-up latency and what
the waiting does to WebDAV latency. Not a test: numbers go to docs/PERFORMANCE.md.

Runs against the embedded server (long-polls on the server's own port) and, with
``--notify``, against the separate ``davdrive notify`` process (same database):

    python scripts/bench_notify.py [--waiters 1000] [--rounds 5] [--notify] [--pg URL]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

PASSWORD = "bench-password-1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


CONFIG: list[str] = []  # ["--config", FILE] with --pg


def cli(data: Path, *args: str, **kw) -> subprocess.Popen | subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "davdrive.cli", "--data", str(data), *CONFIG, *args]
    if kw.pop("background", False):
        return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, **kw)


SCHEMA = f"bench_notify_{os.getpid()}"


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def pg_config(url: str, tmp: Path) -> Path:
    """A config file: metadata in a fresh schema of ``url``, the PostgreSQL bus."""
    import psycopg

    with psycopg.connect(_libpq(url), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{SCHEMA}"')
    sep = "&" if "?" in url else "?"
    cfg = tmp / "bench.yaml"
    cfg.write_text(
        f'database_url: "{url}{sep}options=-csearch_path%3D{SCHEMA}"\nbus_url: "postgresql://"\n'
    )
    return cfg


def drop_schema(url: str) -> None:
    import psycopg

    with psycopg.connect(_libpq(url), autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE')


async def wait_up(url: str) -> None:
    async with aiohttp.ClientSession() as s:
        for _ in range(300):
            try:
                async with s.get(url + "/healthz") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


async def get_latency(s: aiohttp.ClientSession, dav: str, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        async with s.get(dav + "probe.txt") as r:
            await r.read()
            assert r.status == 200, r.status
        out.append(time.perf_counter() - t0)
        await asyncio.sleep(0.01)
    return out


async def bench(
    args: argparse.Namespace,
    data: Path,
    main_url: str,
    poll_url: str,
    server_pid: int,
    poll_pid: int,
) -> None:
    auth = "Basic " + base64.b64encode(f"bench:{PASSWORD}".encode()).decode()
    headers = {"Authorization": auth}
    dav = f"{main_url}/dav/bench/"
    conn = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=None)
    async with aiohttp.ClientSession(headers=headers, connector=conn, timeout=timeout) as s:
        async with s.put(dav + "probe.txt", data=b"x" * 4096) as r:
            assert r.status in (201, 204), r.status
        idle = await get_latency(s, dav, args.gets)
        rss_before = rss_mib(poll_pid)
        wake: list[float] = []
        backoffs = 0
        for rnd in range(args.rounds):
            async with s.get(f"{main_url}/api/v1/changes/latest") as r:
                cursor = (await r.json())["cursor"]
            fired: dict[str, float] = {}

            async def one(cursor: str = cursor, fired: dict[str, float] = fired) -> None:
                nonlocal backoffs
                async with s.get(
                    f"{poll_url}/api/v1/longpoll", params={"cursor": cursor, "timeout": "60"}
                ) as r:
                    body = await r.json()
                if body.get("backoff") is not None:
                    backoffs += 1
                elif body.get("changes"):
                    wake.append(time.perf_counter() - fired["t"])

            tasks = [asyncio.create_task(one()) for _ in range(args.waiters)]
            await asyncio.sleep(args.settle)  # all polls parked
            busy = await get_latency(s, dav, args.gets) if rnd == 0 else []
            rss_held = rss_mib(poll_pid)
            fired["t"] = time.perf_counter()
            async with s.put(dav + f"w{rnd}.txt", data=b"y" * 100) as r:
                assert r.status in (201, 204)
            await asyncio.gather(*tasks)
            if rnd == 0:
                busy_get = busy
                held_rss = rss_held
        print(
            f"waiters per round: {args.waiters}, rounds: {args.rounds}, "
            f"answered with backoff: {backoffs}"
        )
        print(
            f"wake-up latency: n={len(wake)} p50={pct(wake, 0.5) * 1000:.1f} ms "
            f"p99={pct(wake, 0.99) * 1000:.1f} ms max={max(wake, default=0) * 1000:.1f} ms"
        )
        print(
            f"WebDAV GET idle: p50={statistics.median(idle) * 1000:.2f} ms "
            f"p99={pct(idle, 0.99) * 1000:.2f} ms"
        )
        print(
            f"WebDAV GET with {args.waiters} polls held: "
            f"p50={statistics.median(busy_get) * 1000:.2f} ms "
            f"p99={pct(busy_get, 0.99) * 1000:.2f} ms "
            f"(ratio p50 {statistics.median(busy_get) / statistics.median(idle):.2f}x)"
        )
        print(
            f"RSS of the process holding the polls: idle {rss_before:.0f} MiB, "
            f"with {args.waiters} held {held_rss:.0f} MiB "
            f"({(held_rss - rss_before) * 1024 / max(1, args.waiters):.0f} KiB per waiter)"
        )


async def bench_spread(args: argparse.Namespace, main_url: str, poll_url: str) -> None:
    """``--waiters`` polls spread over ``--accounts`` accounts; each round writes to one
    account, so only its waiters wake (the common case: a user's few devices), while the rest
    stay parked. Woken waiters poll again at once, as clients do."""
    n_acc = args.accounts
    auth = {
        a: {"Authorization": "Basic " + base64.b64encode(f"bench{a}:{PASSWORD}".encode()).decode()}
        for a in range(n_acc)
    }
    conn = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(
        connector=conn, timeout=aiohttp.ClientTimeout(total=None)
    ) as s:
        cursors: dict[int, str] = {}
        for a in range(n_acc):
            async with s.get(f"{main_url}/api/v1/changes/latest", headers=auth[a]) as r:
                cursors[a] = (await r.json())["cursor"]
        fired: dict[int, float] = {}
        fired_round: dict[int, int] = {}
        wake: list[float] = []
        slowest: list[tuple[float, int, int]] = []
        stop = asyncio.Event()

        async def waiter(a: int) -> None:
            while not stop.is_set():
                async with s.get(
                    f"{poll_url}/api/v1/longpoll",
                    params={"cursor": cursors[a], "timeout": "120"},
                    headers=auth[a],
                ) as r:
                    body = await r.json()
                if body.get("changes") and a in fired:
                    wake.append(time.perf_counter() - fired[a])
                    slowest.append((wake[-1], a, fired_round[a]))
                    async with s.get(f"{main_url}/api/v1/changes/latest", headers=auth[a]) as r:
                        cursors[a] = (await r.json())["cursor"]

        t0 = time.perf_counter()
        tasks = [asyncio.create_task(waiter(i % n_acc)) for i in range(args.waiters)]
        await asyncio.sleep(args.settle)
        if args.notify:  # its /healthz counts parked polls: wait until every one is parked
            while (parked := await parked_count(s, poll_url)) < args.waiters:
                await asyncio.sleep(0.1)
            print(f"spread: {parked} polls parked {time.perf_counter() - t0:.1f} s after sending")
        per = args.waiters // n_acc
        for rnd in range(args.rounds):
            a = rnd % n_acc
            before = len(wake)
            fired[a], fired_round[a] = time.perf_counter(), rnd
            async with s.put(
                f"{main_url}/dav/bench{a}/w{rnd}.txt", data=b"y" * 100, headers=auth[a]
            ) as r:
                assert r.status in (201, 204), r.status
            while len(wake) < before + per:
                await asyncio.sleep(0.005)
            del fired[a]
            await asyncio.sleep(0.2)  # let the woken ones park again
        stop.set()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        print(
            f"spread: {args.waiters} polls over {n_acc} accounts, {args.rounds} writes "
            f"(each wakes {per}); wake-up latency n={len(wake)} "
            f"p50={pct(wake, 0.5) * 1000:.1f} ms p99={pct(wake, 0.99) * 1000:.1f} ms "
            f"max={max(wake, default=0) * 1000:.1f} ms"
        )
        worst = sorted(slowest, reverse=True)[:3]
        print("  slowest: " + ", ".join(f"{t * 1000:.0f} ms (round {r})" for t, _a, r in worst))


async def parked_count(s: aiohttp.ClientSession, url: str) -> int:
    """``davdrive notify``'s /healthz says "ok N waiting"."""
    async with s.get(url + "/healthz") as r:
        return int((await r.text()).split()[1])


def add_accounts(data: Path, n: int) -> None:
    """bench0 .. bench{n-1} through the library (one CLI process per user is slow)."""
    from davdrive.app import build_app
    from davdrive.config import load_config

    app = build_app(load_config(CONFIG[1] if CONFIG else None, data_dir=data))
    try:
        for i in range(n):
            app.accounts.add_user(f"bench{i}", PASSWORD)
    finally:
        app.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--waiters", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--gets", type=int, default=100)
    ap.add_argument("--settle", type=float, default=3.0)
    ap.add_argument("--notify", action="store_true", help="long-polls go to `davdrive notify`")
    ap.add_argument("--threads", type=int, default=None, help="serve --threads")
    ap.add_argument(
        "--pg",
        metavar="URL",
        help="metadata in PostgreSQL (a fresh schema) with the LISTEN/NOTIFY bus, e.g. "
        "postgresql+psycopg://postgres@127.0.0.1:5432/test",
    )
    ap.add_argument(
        "--accounts",
        type=int,
        default=0,
        help="also run the spread scenario: the waiters over this many accounts",
    )
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as tmp:
        data = Path(tmp) / "data"
        if args.pg:
            CONFIG.extend(["--config", str(pg_config(args.pg, Path(tmp)))])
        cli(data, "init")
        cli(data, "user", "add", "bench", "--password-stdin", input=PASSWORD.encode())
        if args.accounts:
            add_accounts(data, args.accounts)
        port = free_port()
        extra = ["--threads", str(args.threads)] if args.threads else []
        server = cli(
            data, "serve", "--host", "127.0.0.1", "--port", str(port), *extra, background=True
        )
        procs = [server]
        try:
            main_url = f"http://127.0.0.1:{port}"
            asyncio.run(wait_up(main_url))
            poll_url, poll_pid = main_url, server.pid
            if args.notify:
                nport = free_port()
                notifier = cli(
                    data, "notify", "--host", "127.0.0.1", "--port", str(nport), background=True
                )
                procs.append(notifier)
                poll_url, poll_pid = f"http://127.0.0.1:{nport}", notifier.pid
                asyncio.run(wait_up(poll_url))
            print(f"long-polls served by: {'davdrive notify' if args.notify else 'davdrive serve'}")
            asyncio.run(bench(args, data, main_url, poll_url, server.pid, poll_pid))
            if args.accounts:
                asyncio.run(bench_spread(args, main_url, poll_url))
        finally:
            for p in procs:
                p.terminate()
                p.wait(10)
            if args.pg:
                drop_schema(args.pg)


if __name__ == "__main__":
    main()
