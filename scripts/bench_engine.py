#!/usr/bin/env python3
"""Storage-engine benchmark: the block store against the single-core cost of its own primitives.

Not a test: numbers go to docs/PERFORMANCE.md ("Storage engine"). For random and for text-like
data of ``--size`` bytes it measures, in one process and on the same bytes:

* **baseline write** - one thread, no engine: FastCDC cut (the published parameters), BLAKE3 per
  block, SHA-256 of the whole stream, zstd per block (kept raw unless it saves >= 3%),
  AES-256-GCM with the real block header, then write + fsync + rename + fsync folder into the
  same two-level shard layout as ``LocalBackend``;
* **engine write** - ``BlockStore.ingest`` over ``LocalBackend``, fed in 1 MiB pieces like an
  HTTP body, nothing known to the account;
* **engine dedup** - the same content again, ``known`` answering True for the first write's blocks
  (a set standing in for the database lookup);
* **baseline read** - one thread: read file, decrypt, decompress, BLAKE3 verify;
* **engine read** - ``BlockStore.open_reader`` read in 1 MiB pieces.

Each line reports wall-clock MB/s (10^6 bytes per second), process CPU seconds per GiB (all
threads), CPU/wall (cores this process kept busy), "others" (cores other processes kept busy
meanwhile, from /proc/stat: on a shared machine that is the noise) and the ratio to the baseline.
Goals (issue): engine write >= 1.3x baseline, engine read >= 1.0x, dedup write >= 3x the first
engine write.

    python scripts/bench_engine.py [--size 512MiB] [--level 1] [--threads 2] [--data both]
                                   [--dir DIR] [--repeat 1] [--cold]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import blake3
import zstandard
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from davdrive.blockstore import blockformat, chunker  # noqa: E402
from davdrive.blockstore import store as store_mod  # noqa: E402
from davdrive.blockstore.keys import AccountKeys, new_data_key  # noqa: E402
from davdrive.blockstore.memory import tune_allocator  # noqa: E402
from davdrive.blockstore.store import BlockStore  # noqa: E402
from davdrive.storage.local import LocalBackend  # noqa: E402

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB
PIECE = 1 * MiB  # what an HTTP body hands the engine at a time
SEED = 20240611
ZIPF_S = 1.4  # Zipf exponent of word frequencies


# -- data ------------------------------------------------------------------------------------------
def parse_size(text: str) -> int:
    units = {"": 1, "k": KiB, "kib": KiB, "m": MiB, "mib": MiB, "g": GiB, "gib": GiB}
    t = text.strip().lower()
    num = t.rstrip("abcdefghijklmnopqrstuvwxyz")
    return int(float(num) * units[t[len(num) :]])


def random_data(size: int, seed: int = SEED) -> bytearray:
    """Incompressible bytes, deterministic for a seed."""
    rng = random.Random(seed)
    out = bytearray()
    while len(out) < size:
        out += rng.randbytes(min(16 * MiB, size - len(out)))
    return out


def _vocabulary(rng: random.Random, n: int) -> list[str]:
    onsets = ["", "b", "c", "d", "f", "g", "h", "l", "m", "n", "p", "r", "s", "t", "v", "st", "tr"]
    onsets += ["ch", "sh", "pr", "cl", "gr", "w"]
    vowels = ["a", "e", "i", "o", "u", "ea", "ou", "io", "y"]
    codas = ["", "", "n", "r", "s", "t", "l", "nd", "ng", "ck", "st", "x"]
    words: set[str] = set()
    while len(words) < n:
        syll = rng.choice((1, 2, 2, 2, 3, 3, 4))
        words.add(
            "".join(
                rng.choice(onsets) + rng.choice(vowels) + rng.choice(codas) for _ in range(syll)
            )
        )
    return sorted(words, key=lambda w: (len(w), w))  # short words are the frequent ones


def _line_pool(rng: random.Random, lines: int) -> list[bytes]:
    """Log lines, code lines and prose drawn from a Zipf-distributed vocabulary."""
    vocab = _vocabulary(rng, 6000)
    cum, total = [], 0.0
    for rank in range(1, len(vocab) + 1):
        total += 1.0 / rank**ZIPF_S
        cum.append(total)

    def words(k: int) -> list[str]:
        return rng.choices(vocab, cum_weights=cum, k=k)

    levels = ["INFO"] * 12 + ["DEBUG"] * 6 + ["WARN"] * 2 + ["ERROR"]
    modules = [".".join(words(rng.randint(1, 3))) for _ in range(60)]
    keywords = ["def", "return", "if", "for", "while", "elif", "class", "yield", "raise", "with"]
    pool: list[bytes] = []
    for _ in range(lines):
        kind = rng.random()
        if kind < 0.45:
            ts = (
                f"2024-06-{rng.randint(10, 12):02d}T"
                f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}."
                f"{rng.randint(0, 999):03d}Z"
            )
            line = (
                f"{ts} {rng.choice(levels)} [{rng.choice(modules)}] "
                f"{' '.join(words(rng.randint(3, 12)))} user={words(1)[0]} "
                f"took={int(rng.expovariate(1 / 40))}ms"
            )
            if rng.random() < 0.35:
                line += f" request_id={rng.getrandbits(24):06x}"
        elif kind < 0.8:
            indent = "    " * rng.choice((1, 1, 2, 2, 2, 3, 4))
            a, b, c = words(3)
            line = f"{indent}{rng.choice(keywords)} {a}_{b}({c}, {'_'.join(words(2))}="
            line += f"{rng.randint(0, 4096)})"
            if rng.random() < 0.3:
                line += f"  # {' '.join(words(rng.randint(2, 8)))}"
        elif kind < 0.9:
            line = ""
        else:
            sentence = words(rng.randint(6, 20))
            line = " ".join(sentence).capitalize() + rng.choice((".", ".", ",", ";", "?"))
        pool.append(line.encode() + b"\n")
    return pool


def text_data(size: int, seed: int = SEED) -> bytearray:
    """Compressible text (~2.5-3x with zstd -1): a pool of ~16 MiB of lines drawn at random.

    Lines are picked independently, so no two blocks repeat (the first write must store it all)
    while the vocabulary keeps the text as compressible as source code and logs.
    """
    rng = random.Random(seed)
    pool = _line_pool(rng, 200_000)
    out = bytearray()
    while len(out) < size:
        out += b"".join(rng.choices(pool, k=8192))
    del out[size:]
    return out


# -- measurement -----------------------------------------------------------------------------------
@dataclass
class Result:
    label: str
    wall: float
    cpu: float
    size: int
    others: float = 0.0  # cores used by other processes during the measurement
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def mbps(self) -> float:
        return self.size / 1e6 / self.wall

    @property
    def cpu_per_gib(self) -> float:
        return self.cpu / (self.size / GiB)


def machine_busy() -> float:
    """CPU seconds the whole machine has spent busy (all processes), from /proc/stat."""
    try:
        with open("/proc/stat") as fh:
            f = [int(x) for x in fh.readline().split()[1:]]
    except OSError:
        return 0.0
    return (sum(f[:8]) - f[3] - f[4]) / os.sysconf("SC_CLK_TCK")  # minus idle and iowait


class Clock:
    """Wall time, this process's CPU time, and the cores other processes kept busy meanwhile."""

    def __enter__(self) -> Clock:
        self.b0 = machine_busy()
        self.w0, self.c0 = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.w0
        self.cpu = time.process_time() - self.c0
        self.others = max(0.0, machine_busy() - self.b0 - self.cpu) / self.wall


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def put_file(root: Path, key: str, header: bytes, sealed: bytes) -> None:
    """The same system calls as ``LocalBackend.put`` (shard folders, tmp, fsync, rename, fsync)."""
    folder = root / key[:2] / key[2:4]
    created = not folder.exists()
    if created:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = folder / f".{key}.{uuid.uuid4().hex}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        for part in (header, sealed):
            view = memoryview(part)
            while view:
                view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, folder / key)
    fsync_dir(folder)
    if created:  # LocalBackend makes the 256 top-level folders at start
        fsync_dir(folder.parent)


def baseline_write(
    keys: AccountKeys, data: bytearray, root: Path, level: int
) -> tuple[Result, list[tuple[str, str, int, int]], int, dict[str, float]]:
    """Single thread, the primitives back to back; returns the manifest and stored bytes."""
    stages = dict.fromkeys(("chunk", "sha256", "blake3", "zstd", "aes-gcm", "write+fsync"), 0.0)
    pc = time.perf_counter
    cctx = zstandard.ZstdCompressor(level=level, write_content_size=True)
    aead = AESGCM(keys.enc_key)
    manifest: list[tuple[str, str, int, int]] = []
    stored = 0
    view = memoryview(data)
    with Clock() as clk:
        t = pc()
        cuts = [(c.offset, c.length) for c in chunker.make_chunker().cut_buf(view)]
        t1 = pc()
        stages["chunk"] += t1 - t
        sha = hashlib.sha256()
        for i in range(0, len(data), PIECE):
            sha.update(view[i : i + PIECE])
        sha.hexdigest()
        t = pc()
        stages["sha256"] += t - t1
        for offset, length in cuts:
            block = view[offset : offset + length]
            t0 = pc()
            h = blake3.blake3(block).hexdigest()
            t1 = pc()
            flags, payload = 0, block
            if level > 0:
                packed = cctx.compress(block)
                if len(packed) <= length * 0.97:
                    flags, payload = blockformat.FLAG_ZSTD, packed
            t2 = pc()
            nonce = os.urandom(12)
            header = blockformat._HEADER.pack(blockformat.MAGIC, flags, keys.key_id, nonce)
            sealed = aead.encrypt(nonce, payload, header + bytes.fromhex(h))
            t3 = pc()
            okey = keys.object_key(h)
            put_file(root, okey, header, sealed)
            t4 = pc()
            stages["blake3"] += t1 - t0
            stages["zstd"] += t2 - t1
            stages["aes-gcm"] += t3 - t2
            stages["write+fsync"] += t4 - t3
            manifest.append((h, okey, offset, length))
            stored += len(header) + len(sealed)
    res = Result("baseline write (1 core)", clk.wall, clk.cpu, len(data), clk.others)
    return res, manifest, stored, stages


def baseline_read(
    keys: AccountKeys, manifest: list[tuple[str, str, int, int]], root: Path
) -> tuple[Result, dict[str, float]]:
    stages = dict.fromkeys(("read file", "aes-gcm", "zstd", "blake3"), 0.0)
    pc = time.perf_counter
    dctx = zstandard.ZstdDecompressor()
    aead = AESGCM(keys.enc_key)
    hs = blockformat.HEADER_SIZE
    total = 0
    with Clock() as clk:
        for h, okey, _offset, size in manifest:
            t0 = pc()
            with open(root / okey[:2] / okey[2:4] / okey, "rb") as fh:
                blob = fh.read()
            t1 = pc()
            _magic, flags, _kid, nonce = blockformat._HEADER.unpack_from(blob)
            payload = aead.decrypt(nonce, memoryview(blob)[hs:], blob[:hs] + bytes.fromhex(h))
            t2 = pc()
            if flags & blockformat.FLAG_ZSTD:
                payload = dctx.decompress(payload, max_output_size=chunker.MAX_SIZE)
            t3 = pc()
            if blake3.blake3(payload).hexdigest() != h or len(payload) != size:
                raise RuntimeError(f"baseline read: block {h[:16]} does not verify")
            t4 = pc()
            stages["read file"] += t1 - t0
            stages["aes-gcm"] += t2 - t1
            stages["zstd"] += t3 - t2
            stages["blake3"] += t4 - t3
            total += size
    return Result("baseline read (1 core)", clk.wall, clk.cpu, total, clk.others), stages


def engine_write(
    store: BlockStore, keys: AccountKeys, data: bytearray, known: Callable[[str], bool], label: str
):
    view = memoryview(data)
    with Clock() as clk:
        ingest = store.ingest(keys, known)
        for i in range(0, len(data), PIECE):
            ingest.write(view[i : i + PIECE])
        result = ingest.finish()
    return Result(label, clk.wall, clk.cpu, len(data), clk.others), result


def engine_read(store: BlockStore, keys: AccountKeys, manifest, size: int) -> Result:
    total = 0
    with Clock() as clk:
        reader = store.open_reader(keys, manifest, size)
        while piece := reader.read(PIECE):
            total += len(piece)
        reader.close()
    if total != size:
        raise RuntimeError(f"engine read returned {total} bytes, expected {size}")
    return Result("engine read", clk.wall, clk.cpu, total, clk.others)


def verify_engine(store: BlockStore, keys: AccountKeys, manifest, data: bytearray) -> None:
    """Untimed: the engine gives back exactly the bytes written (read in odd-sized pieces)."""
    reader = store.open_reader(keys, manifest, len(data))
    pos, view = 0, memoryview(data)
    while piece := reader.read(PIECE + 12345):
        if view[pos : pos + len(piece)] != piece:
            raise RuntimeError(f"engine read differs from the data near offset {pos}")
        pos += len(piece)
    reader.close()
    if pos != len(data):
        raise RuntimeError("engine read is short")


def evict(root: Path) -> None:
    """Drop the stored objects from the page cache (clean after fsync), for --cold reads."""
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


# -- the run ---------------------------------------------------------------------------------------
def fs_type(path: Path) -> str:
    best, kind = "", "?"
    target = str(path.resolve())
    for line in Path("/proc/mounts").read_text().splitlines():
        parts = line.split()
        mnt = parts[1]
        if (target == mnt or target.startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best):
            best, kind = mnt, f"{parts[2]} ({parts[0]} on {mnt})"
    return kind


def run_dataset(kind: str, data: bytearray, args, root: Path) -> list[Result]:
    keys = AccountKeys.from_data_key(new_data_key(), 1)
    base_dir, eng_dir = root / f"{kind}-baseline", root / f"{kind}-engine"
    base_dir.mkdir()
    store = BlockStore(LocalBackend(eng_dir), zstd_level=args.level, threads=args.threads)
    try:
        bw, manifest, base_stored, wstages = baseline_write(keys, data, base_dir, args.level)
        ew, first = engine_write(store, keys, data, set().__contains__, "engine write")
        new_plain = sum(b.size for b in first.blocks if b.new)
        if new_plain < 0.99 * len(data):
            raise RuntimeError(f"first write deduplicated {len(data) - new_plain} bytes: bad data")
        if [b.hash for b in first.blocks] != [m[0] for m in manifest]:
            raise RuntimeError("engine and baseline cut different blocks")
        if first.sha256 != hashlib.sha256(data).hexdigest():
            raise RuntimeError("engine SHA-256 is wrong")
        ew.extra.update(
            stored=sum(b.stored_size for b in first.blocks),
            blocks=len(first.blocks),
            new=sum(b.new for b in first.blocks),
        )
        known = {b.hash for b in first.blocks}
        ed, again = engine_write(store, keys, data, known.__contains__, "engine write, dedup")
        if any(b.new for b in again.blocks):
            raise RuntimeError("dedup write stored blocks again")
        emanifest = [(b.hash, b.object_key, b.offset, b.size) for b in first.blocks]
        if args.cold:
            evict(base_dir)
        br, rstages = baseline_read(keys, manifest, base_dir)
        if args.cold:
            evict(eng_dir)
        er = engine_read(store, keys, emanifest, len(data))
        if not args.no_verify:
            verify_engine(store, keys, emanifest, data)
        bw.extra.update(stored=base_stored, blocks=len(manifest), stages=wstages)
        br.extra.update(stages=rstages)
        return [bw, ew, ed, br, er]
    finally:
        store.close()
        shutil.rmtree(base_dir, ignore_errors=True)
        shutil.rmtree(eng_dir, ignore_errors=True)


def median_result(runs: list[Result]) -> Result:
    """The run with the median wall time (all figures from one run)."""
    ordered = sorted(runs, key=lambda r: r.wall)
    return ordered[(len(ordered) - 1) // 2]


def report(kind: str, res: list[Result], all_runs: list[list[Result]], args) -> list[str]:
    bw, ew, ed, br, er = res
    io_s = bw.extra["stages"]["write+fsync"]
    compute = Result("baseline write, compute only (1 core)", bw.wall - io_s, bw.cpu, bw.size)
    rows = [
        (bw, "1.00x", ""),
        (compute, f"{compute.mbps / bw.mbps:.2f}x", "(write+fsync time left out)"),
        (
            ew,
            f"{ew.mbps / bw.mbps:.2f}x ({ew.mbps / compute.mbps:.2f}x compute only)",
            f">= 1.3x: {'met' if ew.mbps >= 1.3 * bw.mbps else 'MISSED'}",
        ),
        (
            ed,
            f"{ed.mbps / ew.mbps:.2f}x first",
            f">= 3x first: {'met' if ed.mbps >= 3 * ew.mbps else 'MISSED'}",
        ),
        (br, "1.00x", ""),
        (er, f"{er.mbps / br.mbps:.2f}x", f">= 1.0x: {'met' if er.mbps >= br.mbps else 'MISSED'}"),
    ]
    lines = [
        f"| {kind} | {r.label} | {r.mbps:,.0f} | "
        + (f"{r.cpu_per_gib:.2f} | {r.cpu / r.wall:.2f} " if r is not compute else "- | - ")
        + f"| {r.others:.2f} | {ratio} | {goal} |"
        for r, ratio, goal in rows
    ]
    if len(all_runs) > 1:
        spread = []
        for i, name in enumerate(("bw", "ew", "ed", "br", "er")):
            vals = [run[i].mbps for run in all_runs]
            spread.append(f"{name} {min(vals):,.0f}-{max(vals):,.0f}")
        lines.append(f"|  | MB/s range over {len(all_runs)} runs: {', '.join(spread)} ||||||")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=parse_size, default=512 * MiB, help="bytes per data set")
    ap.add_argument("--level", type=int, default=1, help="zstd level (engine and baseline)")
    ap.add_argument("--threads", type=int, default=2, help="BlockStore threads")
    ap.add_argument("--data", choices=("random", "text", "both"), default="both")
    ap.add_argument("--dir", type=Path, default=None, help="scratch folder (default: $TMPDIR)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per data set; median reported")
    ap.add_argument("--cold", action="store_true", help="evict objects from page cache to read")
    ap.add_argument("--no-verify", action="store_true", help="skip the untimed read-back check")
    ap.add_argument(
        "--no-tune-allocator",
        action="store_true",
        help="leave glibc's mmap threshold alone (davdrive.blockstore.memory) for both sides",
    )
    args = ap.parse_args()

    if args.no_tune_allocator:
        store_mod.tune_allocator = lambda *a, **k: False  # type: ignore[assignment]
    else:
        tune_allocator()  # before the baseline too: both sides run with the same allocator
    root = Path(tempfile.mkdtemp(prefix="bench_engine-", dir=args.dir))
    print(f"# scratch: {root} on {fs_type(root)}; {os.cpu_count()} CPUs; python {sys.version[:7]}")
    print(
        f"# size {args.size / MiB:.0f} MiB per data set, fed in {PIECE // MiB} MiB pieces; zstd "
        f"level {args.level}; engine threads {args.threads}; reads "
        f"{'cold (fadvise DONTNEED)' if args.cold else 'from page cache'}; allocator "
        f"{'untuned' if args.no_tune_allocator else 'tuned'}"
    )
    kinds = ["random", "text"] if args.data == "both" else [args.data]
    table = [
        "| data | operation | MB/s | CPU-s/GiB | CPU/wall | others | ratio | goal |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    notes: list[str] = []
    try:
        for kind in kinds:
            t = time.perf_counter()
            data = random_data(args.size) if kind == "random" else text_data(args.size)
            sample = bytes(data[: 64 * MiB])
            z = len(zstandard.ZstdCompressor(level=1).compress(sample))
            print(
                f"# {kind}: generated in {time.perf_counter() - t:.1f} s; zstd -1 of first 64 MiB "
                f"as one frame: {len(sample) / z:.2f}x",
                flush=True,
            )
            runs = []
            for i in range(args.repeat):
                runs.append(run_dataset(kind, data, args, root))
                print(f"#   {kind} run {i + 1}/{args.repeat} done", flush=True)
            res = [median_result([run[i] for run in runs]) for i in range(5)]
            table += report(kind, res, runs, args)
            bw, ew, ed, br, er = res
            notes.append(
                f"{kind}: {ew.extra['blocks']} blocks "
                f"(avg {args.size / ew.extra['blocks'] / MiB:.2f} MiB), "
                f"{ew.extra['new']} new on the first write; stored "
                f"{ew.extra['stored'] / MiB:.1f} MiB by the engine "
                f"({args.size / ew.extra['stored']:.2f}x), {bw.extra['stored'] / MiB:.1f} MiB "
                "by the baseline"
            )
            for r in (bw, br):
                st = r.extra["stages"]
                notes.append(
                    f"{kind} {r.label} stages (s): "
                    + ", ".join(f"{k} {v:.2f}" for k, v in st.items())
                    + f"; sum {sum(st.values()):.2f} of {r.wall:.2f} wall"
                )
            del data
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print()
    print("\n".join(table))
    print()
    for n in notes:
        print(f"- {n}")


if __name__ == "__main__":
    main()
