#!/usr/bin/env python3
"""Side-by-side WebDAV benchmark: davdrive vs stock WsgiDAV (FilesystemProvider), one run.

Starts both servers on loopback ports with fresh data directories, drives them with the same
client code and prints, per scenario, wall-clock throughput, server CPU seconds (per GiB for
bulk transfers) and the davdrive / stock ratio. Not a test: numbers go to docs/PERFORMANCE.md.

    python scripts/bench_webdav.py [--size-mib 512] [--small 1000] [--entries 5000]
"""

from __future__ import annotations

import argparse
import base64
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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

MiB = 1 << 20
GiB = 1 << 30
PASSWORD = "bench-password-1"


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


def start_stock(root: Path) -> Server:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "wsgidav.server.server_cli",
            "--no-config",
            "-q",
            "-q",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--root",
            str(root),
            "--auth",
            "anonymous",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_ready(port, "/", None)
    return Server("stock WsgiDAV", proc, port, "/", None)


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
    return Server("davdrive", proc, port, "/dav/bench/", auth)


def put(server: Server, conn: http.client.HTTPConnection, path: str, data: bytes) -> None:
    conn.putrequest("PUT", server.base + path)
    for k, v in server.headers({"Content-Length": str(len(data))}).items():
        conn.putheader(k, v)
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


def measure(server: Server, fn) -> tuple[float, float]:
    c0, t0 = server.cpu(), time.perf_counter()
    fn()
    return time.perf_counter() - t0, server.cpu() - c0


def bench(server: Server, payloads: dict[str, bytes], small: int, entries: int) -> dict:
    out: dict[str, tuple[float, float]] = {}
    conn = server.conn()
    for kind, data in payloads.items():
        wall, cpu = measure(server, lambda d=data, k=kind: put(server, conn, f"big-{k}.bin", d))
        out[f"PUT {kind}"] = (len(data) / MiB / wall, cpu / (len(data) / GiB))
        want = hashlib.sha256(data).hexdigest()
        nbytes = len(data)

        def fetch(k=kind, w=want, size=nbytes) -> None:
            n, digest = get(server, conn, f"big-{k}.bin")
            if n != size or digest != w:
                raise RuntimeError(f"{server.name}: GET returned wrong bytes")

        wall, cpu = measure(server, fetch)
        out[f"GET {kind}"] = (len(data) / MiB / wall, cpu / (len(data) / GiB))
    # 1 MiB range from the middle of the random file
    size = len(payloads["random"])
    times = []
    for i in range(20):
        start = (size // 2 + i * 4096) // 4096 * 4096
        t0 = time.perf_counter()
        n, _ = get(server, conn, "big-random.bin", f"bytes={start}-{start + MiB - 1}")
        times.append(time.perf_counter() - t0)
        assert n == MiB, n
    out["Range GET 1 MiB (ms)"] = (statistics.median(times) * 1000, 0.0)
    # small PUTs from 4 parallel clients
    blob = os.urandom(4096)
    mk = server.conn()
    mk.request("MKCOL", server.base + "small/", headers=server.headers())
    mk.getresponse().read()
    local = threading.local()

    def one(i: int) -> None:
        if not hasattr(local, "c"):
            local.c = server.conn()
        put(server, local.c, f"small/f{i:05d}", blob)

    def many() -> None:
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(one, range(small)))

    wall, cpu = measure(server, many)
    out["small PUTs/s"] = (small / wall, cpu)
    # PROPFIND Depth 1 over a folder of `entries` members
    mk.request("MKCOL", server.base + "wide/", headers=server.headers())
    mk.getresponse().read()

    def fill(i: int) -> None:
        if not hasattr(local, "c"):
            local.c = server.conn()
        put(server, local.c, f"wide/e{i:05d}.txt", b"x")

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(fill, range(entries)))
    times = []
    pconn = server.conn()  # `conn` may have idled past the keep-alive timeout while filling
    for _ in range(5):
        t0 = time.perf_counter()
        pconn.request("PROPFIND", server.base + "wide/", headers=server.headers({"Depth": "1"}))
        resp = pconn.getresponse()
        body = resp.read()
        times.append(time.perf_counter() - t0)
        if resp.status != 207 or body.count(b"<D:response") + body.count(b"<d:response") < entries:
            raise RuntimeError(f"{server.name}: PROPFIND -> {resp.status}")
    out["PROPFIND Depth 1 (ms)"] = (statistics.median(times) * 1000, 0.0)
    out["peak RSS MiB"] = (rss_mib(server.proc.pid), 0.0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mib", type=int, default=512)
    ap.add_argument("--small", type=int, default=1000)
    ap.add_argument("--entries", type=int, default=5000)
    args = ap.parse_args()
    size = args.size_mib * MiB
    payloads = {"random": os.urandom(size), "text": text_like(size)}
    tmp = Path(tempfile.mkdtemp(prefix="bench-webdav-"))
    servers = []
    try:
        (tmp / "stock").mkdir()
        servers = [start_davdrive(tmp / "davdrive"), start_stock(tmp / "stock")]
        results = {s.name: bench(s, payloads, args.small, args.entries) for s in servers}
    finally:
        for s in servers:
            s.proc.terminate()
            s.proc.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)
    dd, st = results["davdrive"], results["stock WsgiDAV"]
    print(f"\nfile size {args.size_mib} MiB, {args.small} small PUTs, {args.entries} entries")
    print(f"{'scenario':24} {'davdrive':>12} {'stock':>12} {'ratio':>7}   CPU-s/GiB dd / stock")
    for key in dd:
        a, b = dd[key][0], st[key][0]
        lower_better = "(ms)" in key or "RSS" in key
        ratio = (b / a) if lower_better else (a / b)
        cpu = ""
        if key.startswith(("PUT", "GET")):
            cpu = f"{dd[key][1]:6.2f} / {st[key][1]:6.2f}"
        print(f"{key:24} {a:12.1f} {b:12.1f} {ratio:7.2f}   {cpu}")
    print(
        "ratio = davdrive ÷ stock for throughput, stock ÷ davdrive for latency/RSS (>1 is better)"
    )


if __name__ == "__main__":
    main()
