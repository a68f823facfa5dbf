#!/usr/bin/env python3
"""Side-by-side WebDAV benchmark: davdrive vs stock WsgiDAV (FilesystemProvider).

Starts both servers on loopback ports with fresh data directories, drives them with the same
client code and prints, per scenario, wall-clock throughput or latency, the server's CPU (read
from /proc of its pid: seconds per GiB for bulk transfers, milliseconds per request otherwise)
and the davdrive / stock ratio. Not a test: numbers go to docs/PERFORMANCE.md.

    python scripts/bench_webdav.py [--size-mib 512] [--small 1000] [--entries 5000]
    python scripts/bench_webdav.py --only small --repeat 3     # small-file rows only, 3 runs

Scenarios: ``big`` = PUT and GET of one --size-mib file, random and text-like; ``small`` =
--small PUTs of 4 KiB from 4 and from 16 clients, --small GETs of those 4 KiB files from 16
clients, and PROPFIND Depth 1 of a folder of --entries members. Range GET 1 MiB (from the
middle of the random file; with ``--only small`` a 64 MiB one uploaded untimed) and the peak
RSS of the server process (VmHWM over its whole life) are in every run.

Each client is a thread with its own keep-alive ``http.client`` connection (opened and used
once before the clock starts). Every 4 KiB file has its own random content (no deduplication),
every GET is checked against what was PUT. Both servers have more workers and keep-alive slots
than the 16 clients: ``davdrive serve`` runs its defaults (``threads: 64``, keep-alive limit
and listen backlog raised to match, loopback exempt from the per-client connection cap);
stock WsgiDAV's cheroot gets ``numthreads: 50`` from ``server_cli`` and, from this script,
``keep_alive_conn_limit`` 256 and ``request_queue_size`` 128 instead of cheroot's 10 and 5,
which with 16 clients close a fifth of the connections after each response and stall some
reconnects for 1 s (see STOCK_TUNED; ``--stock-defaults`` runs it untouched). davdrive runs
with its default settings (fsync of every write, access log to stdout, here /dev/null); stock
WsgiDAV never fsyncs and logs nothing (-q -q).
With ``--repeat N`` each run starts fresh servers on fresh directories; every run's table is
printed, then the per-scenario medians (ratio = ratio of the medians).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import http.client
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

MiB = 1 << 20
GiB = 1 << 30
PASSWORD = "bench-password-1"
STOCK = "stock WsgiDAV"
DAVDRIVE = "davdrive"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (and its reaped children) from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def text_like(size: int, seed: int = 7) -> bytes:
    """Log-like lines that compress about 2.5-3x with zstd level 1."""
    rng = random.Random(seed)
    words = [
        "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9)))
        for _ in range(4000)
    ]
    parts: list[bytes] = []
    total = 0
    n = 0
    while total < size:
        line = (
            f"2026-11-{1 + n % 28:02d}T{n % 24:02d}:{n % 60:02d}:{(n * 7) % 60:02d}Z "
            f"host{rng.randint(1, 40)} svc[{rng.randint(100, 99999)}]: "
            + " ".join(rng.choice(words) for _ in range(rng.randint(5, 14)))
            + f" id={rng.getrandbits(48):x}\n"
        ).encode()
        parts.append(line)
        total += len(line)
        n += 1
    return b"".join(parts)[:size]


@dataclass
class Server:
    name: str
    proc: subprocess.Popen
    port: int
    base: str  # URL path prefix of the writable collection, e.g. "/dav/bench/"
    auth: str | None

    def conn(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        h = dict(extra or {})
        if self.auth:
            h["Authorization"] = self.auth
        return h

    def cpu(self) -> float:
        return cpu_seconds(self.proc.pid)


def wait_ready(port: int, path: str, auth: str | None) -> None:
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("OPTIONS", path, headers={"Authorization": auth} if auth else {})
            c.getresponse().read()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"server on {port} did not start")


# Stock WsgiDAV's cheroot as `server_cli` starts it without a config file has 50 worker threads
# but cheroot's class defaults for the rest: at most 10 connections are kept alive
# (`keep_alive_conn_limit`; the 11th client gets "Connection: close" after every response) and
# a listen backlog of 5 (`request_queue_size`), so with 16 clients about a fifth of the
# requests reconnect and some of those connects overflow the backlog and wait for the 1 s SYN
# retransmit. davdrive raises both (serve.py). For a fair comparison stock gets the same by
# default: keep_alive_conn_limit 256 (a class attribute, set before server_cli runs) and
# request_queue_size 128 (server_args in a YAML config). `--stock-defaults` turns this off.
STOCK_TUNED = (
    "import sys, cheroot.server; cheroot.server.HTTPServer.keep_alive_conn_limit = 256; "
    "from wsgidav.server.server_cli import run; run()"
)
STOCK_DEFAULTS_HELP = "run stock WsgiDAV with cheroot's keep-alive limit 10 and backlog 5"
STOCK_YAML = "server_args:\n  numthreads: 50\n  request_queue_size: 128\n"


def start_stock(root: Path, tuned: bool = True) -> Server:
    port = free_port()
    args = ["-q", "-q", "--host", "127.0.0.1", "--port", str(port)]
    args += ["--root", str(root), "--auth", "anonymous"]
    if tuned:
        cfg = root.parent / "stock-wsgidav.yaml"
        cfg.write_text(STOCK_YAML)
        cmd = [sys.executable, "-c", STOCK_TUNED, "--config", str(cfg), *args]
    else:
        cmd = [sys.executable, "-m", "wsgidav.server.server_cli", "--no-config", *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_ready(port, "/", None)
    return Server(STOCK, proc, port, "/", None)


def start_davdrive(data: Path) -> Server:
    port = free_port()
    env = dict(os.environ)
    subprocess.run(
        [sys.executable, "-m", "davdrive.cli", "--data", str(data), "init"],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "davdrive.cli",
            "--data",
            str(data),
            "user",
            "add",
            "bench",
            "--password-stdin",
        ],
        input=PASSWORD.encode(),
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "davdrive.cli",
            "--data",
            str(data),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    auth = "Basic " + base64.b64encode(f"bench:{PASSWORD}".encode()).decode()
    wait_ready(port, "/dav/bench/", auth)
    return Server(DAVDRIVE, proc, port, "/dav/bench/", auth)


def put(server: Server, conn: http.client.HTTPConnection, path: str, data: bytes) -> None:
    conn.putrequest("PUT", server.base + path)
    for k, v in server.headers({"Content-Length": str(len(data))}).items():
        conn.putheader(k, v)
    if len(data) <= 64 * 1024:
        conn.endheaders(data)  # head and body in one send()
    else:
        conn.endheaders()
        view = memoryview(data)
        for i in range(0, len(view), MiB):
            conn.send(view[i : i + MiB])
    resp = conn.getresponse()
    resp.read()
    if resp.status not in (200, 201, 204):
        raise RuntimeError(f"{server.name}: PUT {path} -> {resp.status}")


def get(server: Server, conn: http.client.HTTPConnection, path: str, rng: str | None = None):
    headers = server.headers({"Range": rng} if rng else None)
    conn.request("GET", server.base + path, headers=headers)
    resp = conn.getresponse()
    digest = hashlib.sha256()
    n = 0
    while chunk := resp.read(MiB):
        digest.update(chunk)
        n += len(chunk)
    if resp.status not in (200, 206):
        raise RuntimeError(f"{server.name}: GET {path} -> {resp.status}")
    return n, digest.hexdigest()


def get_bytes(server: Server, conn: http.client.HTTPConnection, path: str) -> bytes:
    conn.request("GET", server.base + path, headers=server.headers())
    resp = conn.getresponse()
    body = resp.read()
    if resp.status != 200:
        raise RuntimeError(f"{server.name}: GET {path} -> {resp.status}")
    return body


def mkcol(server: Server, conn: http.client.HTTPConnection, path: str) -> None:
    conn.request("MKCOL", server.base + path, headers=server.headers())
    resp = conn.getresponse()
    resp.read()
    if resp.status not in (201, 405):  # 405: exists already
        raise RuntimeError(f"{server.name}: MKCOL {path} -> {resp.status}")


def measure(server: Server, fn) -> tuple[float, float]:
    c0, t0 = server.cpu(), time.perf_counter()
    fn()
    return time.perf_counter() - t0, server.cpu() - c0


@dataclass
class Drive:
    """Outcome of `drive`: operations done, wall seconds, server CPU seconds, latencies (s)."""

    done: int
    wall: float
    cpu: float
    latencies: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.done / self.wall

    @property
    def cpu_ms_per_op(self) -> float:
        return self.cpu * 1000 / max(self.done, 1)

    def latency_ms(self, q: float) -> float:
        """Latency quantile q (0..1) in ms, nearest rank."""
        lat = sorted(self.latencies)
        return lat[min(len(lat) - 1, int(q * len(lat)))] * 1000


def drive(
    server: Server,
    clients: int,
    op: Callable[[http.client.HTTPConnection, int], None],
    count: int | None = None,
    seconds: float | None = None,
) -> Drive:
    """Run ``op(conn, i)`` for i = 0, 1, 2, ... on `clients` threads, each with its own
    keep-alive connection, until `count` operations were started or `seconds` have passed
    (whichever comes first). The clock and the server CPU count start once every client's
    connection has served a first request. The first error stops every client and is raised."""
    lock = threading.Lock()
    state = {"next": 0}
    latencies: list[float] = []
    errors: list[BaseException] = []
    stop = threading.Event()
    clock = {"t0": 0.0, "c0": 0.0, "deadline": float("inf")}

    def start_clock() -> None:  # run by the barrier once every client has connected
        clock["c0"], clock["t0"] = server.cpu(), time.perf_counter()
        if seconds is not None:
            clock["deadline"] = clock["t0"] + seconds

    ready = threading.Barrier(clients + 1, action=start_clock)

    def worker() -> None:
        conn = server.conn()
        mine: list[float] = []
        try:
            try:
                # One OPTIONS before the clock starts, so that every connection has been
                # accepted and served once: 16 connects at once overflow cheroot's listen
                # backlog (request_queue_size 5), which costs a 1 s SYN-ACK retransmit.
                conn.request("OPTIONS", server.base, headers=server.headers())
                conn.getresponse().read()
            finally:
                ready.wait()
            while not stop.is_set():
                with lock:
                    i = state["next"]
                    if (count is not None and i >= count) or time.perf_counter() >= clock[
                        "deadline"
                    ]:
                        break
                    state["next"] = i + 1
                t0 = time.perf_counter()
                op(conn, i)
                mine.append(time.perf_counter() - t0)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
            errors.append(exc)
            stop.set()
        finally:
            conn.close()
            with lock:
                latencies.extend(mine)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    ready.wait()
    for t in threads:
        t.join()
    wall, cpu = time.perf_counter() - clock["t0"], server.cpu() - clock["c0"]
    if errors:
        raise errors[0]
    return Drive(len(latencies), wall, cpu, latencies)


def start_servers(tmp: Path, stock_tuned: bool = True) -> list[Server]:
    (tmp / "stock").mkdir()
    servers = [start_davdrive(tmp / "davdrive")]
    try:
        servers.append(start_stock(tmp / "stock", stock_tuned))
    except BaseException:
        stop_servers(servers)
        raise
    return servers


def stop_servers(servers: list[Server]) -> None:
    for s in servers:
        s.proc.terminate()
    for s in servers:
        try:
            s.proc.wait(10)
        except subprocess.TimeoutExpired:
            s.proc.kill()
            s.proc.wait()


@contextlib.contextmanager
def running_servers(
    prefix: str = "bench-webdav-", stock_tuned: bool = True
) -> Iterator[list[Server]]:
    """Both servers on fresh data directories in a temporary folder, davdrive first."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    servers: list[Server] = []
    try:
        servers = start_servers(tmp, stock_tuned)
        yield servers
    finally:
        stop_servers(servers)
        shutil.rmtree(tmp, ignore_errors=True)


# -- scenarios ------------------------------------------------------------------------------
# Each result row: name -> (value, server CPU or None). The unit of the value is in the name;
# the CPU is s/GiB for bulk transfers ("PUT/GET <size>") and ms per request otherwise.


def bench_big(server: Server, payloads: dict[str, bytes], size_mib: int) -> dict:
    out: dict[str, tuple[float, float | None]] = {}
    conn = server.conn()
    for kind, data in payloads.items():
        wall, cpu = measure(server, lambda d=data, k=kind: put(server, conn, f"big-{k}.bin", d))
        out[f"PUT {size_mib} MiB {kind} (MB/s)"] = (len(data) / MiB / wall, cpu / (len(data) / GiB))
        want = hashlib.sha256(data).hexdigest()
        nbytes = len(data)

        def fetch(k=kind, w=want, size=nbytes) -> None:
            n, digest = get(server, conn, f"big-{k}.bin")
            if n != size or digest != w:
                raise RuntimeError(f"{server.name}: GET returned wrong bytes")

        wall, cpu = measure(server, fetch)
        out[f"GET {size_mib} MiB {kind} (MB/s)"] = (len(data) / MiB / wall, cpu / (len(data) / GiB))
    conn.close()
    return out


def bench_range(server: Server, path: str, data: bytes) -> dict:
    """Median of 20 sequential 1 MiB range GETs from the middle of `path` (holding `data`)."""
    size = len(data)
    conn = server.conn()
    times = []
    c0 = server.cpu()
    for i in range(20):
        start = (size // 2 + i * 4096) // 4096 * 4096
        t0 = time.perf_counter()
        n, digest = get(server, conn, path, f"bytes={start}-{start + MiB - 1}")
        times.append(time.perf_counter() - t0)
        if n != MiB or digest != hashlib.sha256(data[start : start + MiB]).hexdigest():
            raise RuntimeError(f"{server.name}: range GET returned wrong bytes")
    cpu_ms = (server.cpu() - c0) * 1000 / 20
    conn.close()
    return {"Range GET 1 MiB (ms)": (statistics.median(times) * 1000, cpu_ms)}


def bench_small(server: Server, small: int, entries: int, seed: int = 4) -> dict:
    out: dict[str, tuple[float, float | None]] = {}
    rng = random.Random(seed)
    blobs = [rng.randbytes(4096) for _ in range(small)]  # one content per file: no dedup
    conn = server.conn()
    for clients in (4, 16):
        folder = f"small{clients}/"
        mkcol(server, conn, folder)

        def put_one(c: http.client.HTTPConnection, i: int, folder=folder) -> None:
            put(server, c, f"{folder}f{i:05d}", blobs[i])

        d = drive(server, clients, put_one, count=small)
        out[f"PUT 4 KiB, {clients} clients (PUT/s)"] = (d.rate, d.cpu_ms_per_op)
    order = list(range(small))
    rng.shuffle(order)

    def get_one(c: http.client.HTTPConnection, i: int) -> None:
        k = order[i]
        if get_bytes(server, c, f"small16/f{k:05d}") != blobs[k]:
            raise RuntimeError(f"{server.name}: GET small16/f{k:05d} returned wrong bytes")

    d = drive(server, 16, get_one, count=small)
    out["GET 4 KiB, 16 clients (GET/s)"] = (d.rate, d.cpu_ms_per_op)
    # PROPFIND Depth 1 over a folder of `entries` members (filled untimed, 16 clients)
    mkcol(server, conn, "wide/")
    conn.close()
    drive(server, 16, lambda c, i: put(server, c, f"wide/e{i:05d}.txt", b"x"), count=entries)
    times = []
    pconn = server.conn()
    c0 = server.cpu()
    for _ in range(5):
        t0 = time.perf_counter()
        pconn.request("PROPFIND", server.base + "wide/", headers=server.headers({"Depth": "1"}))
        resp = pconn.getresponse()
        body = resp.read()
        times.append(time.perf_counter() - t0)
        if resp.status != 207 or body.count(b"<D:response") + body.count(b"<d:response") < entries:
            raise RuntimeError(f"{server.name}: PROPFIND -> {resp.status}")
    cpu_ms = (server.cpu() - c0) * 1000 / 5
    pconn.close()
    out[f"PROPFIND Depth 1, {entries} entries (ms)"] = (statistics.median(times) * 1000, cpu_ms)
    return out


def bench(server: Server, payloads: dict[str, bytes], args: argparse.Namespace) -> dict:
    out: dict[str, tuple[float, float | None]] = {}
    if args.only in ("all", "big"):
        out.update(bench_big(server, payloads, args.size_mib))
        range_path = "big-random.bin"
    else:
        range_path = "range-random.bin"
        conn = server.conn()
        put(server, conn, range_path, payloads["random"])
        conn.close()
    out.update(bench_range(server, range_path, payloads["random"]))
    if args.only in ("all", "small"):
        out.update(bench_small(server, args.small, args.entries))
    out["peak RSS (MiB)"] = (rss_mib(server.proc.pid), None)
    return out


# -- output ---------------------------------------------------------------------------------


def lower_is_better(key: str) -> bool:
    return "(ms)" in key or "RSS" in key


def print_table(title: str, results: dict[str, dict]) -> None:
    dd, st = results[DAVDRIVE], results[STOCK]
    print(f"\n{title}")
    print(
        f"{'scenario':38} {'davdrive':>10} {'stock':>10} {'ratio':>6}   server CPU davdrive / stock"
    )
    for key in dd:
        a, b = dd[key][0], st[key][0]
        ratio = (b / a) if lower_is_better(key) else (a / b)
        cpu = ""
        if dd[key][1] is not None:
            unit = "s/GiB" if key.startswith(("PUT ", "GET ")) and "MiB" in key else "ms/req"
            cpu = f"{dd[key][1]:7.2f} / {st[key][1]:7.2f} {unit}"
        print(f"{key:38} {a:10.1f} {b:10.1f} {ratio:6.2f}   {cpu}".rstrip())
    print("ratio = davdrive ÷ stock for throughput, stock ÷ davdrive for latency/RSS (>1: better)")


def median_results(runs: list[dict[str, dict]]) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for name in runs[0]:
        rows = {}
        for key in runs[0][name]:
            vals = [r[name][key][0] for r in runs]
            cpus = [r[name][key][1] for r in runs]
            cpu = None if cpus[0] is None else statistics.median(cpus)
            rows[key] = (statistics.median(vals), cpu)
        out[name] = rows
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--size-mib", type=int, default=512, help="bulk file size (default 512)")
    ap.add_argument("--small", type=int, default=1000, help="4 KiB PUTs/GETs per row (1000)")
    ap.add_argument("--entries", type=int, default=5000, help="PROPFIND folder size (5000)")
    ap.add_argument(
        "--only",
        choices=("all", "small", "big"),
        default="all",
        help="small: skip the bulk PUT/GET rows; big: skip the small-file rows",
    )
    ap.add_argument("--repeat", type=int, default=1, help="runs (fresh servers each); medians")
    ap.add_argument("--stock-defaults", action="store_true", help=STOCK_DEFAULTS_HELP)
    args = ap.parse_args()
    if args.only == "small":
        payloads = {"random": os.urandom(64 * MiB)}
    else:
        size = args.size_mib * MiB
        payloads = {"random": os.urandom(size), "text-like": text_like(size)}
    runs: list[dict[str, dict]] = []
    what = {
        "all": f"file size {args.size_mib} MiB, {args.small} small PUTs/GETs, "
        f"{args.entries} entries",
        "small": f"{args.small} small PUTs/GETs, {args.entries} entries",
        "big": f"file size {args.size_mib} MiB",
    }[args.only]
    for n in range(args.repeat):
        with running_servers(stock_tuned=not args.stock_defaults) as servers:
            results = {s.name: bench(s, payloads, args) for s in servers}
        runs.append(results)
        print_table(f"run {n + 1}/{args.repeat}: {what}", results)
        sys.stdout.flush()
    if args.repeat > 1:
        print_table(f"median of {args.repeat} runs: {what}", median_results(runs))


if __name__ == "__main__":
    main()
