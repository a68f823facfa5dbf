"""A seeded random sequence of edits, creates, renames, deletes and offline periods on two
devices; both converge to the server's tree and no edit is ever lost (it is in place, or in a
conflicted copy)."""

from __future__ import annotations

import os
import random
import shutil

import pytest

from tests.sync.conftest import Device, server_tree

STEPS = int(os.environ.get("SYNC_FUZZ_STEPS", 15))
SEEDS = int(os.environ.get("SYNC_FUZZ_SEEDS", 3))  # more for a longer local hunt


def _files(d: Device) -> list[str]:
    return [k for k, v in d.tree().items() if v is not None]


def _dirs(d: Device) -> list[str]:
    return [k for k, v in d.tree().items() if v is None]


@pytest.mark.parametrize("seed", range(1, SEEDS + 1))
def test_random_operations_converge_without_losing_edits(devices, live_server, seed):
    rng = random.Random(seed)
    devs = [devices("A"), devices("B")]
    dirty: dict[str, set[bytes]] = {d.name: set() for d in devs}  # edits not yet synced
    counter = iter(range(10**6))

    def content(d: Device) -> bytes:
        n = next(counter)
        body = f"{d.name} write {n} seed {seed}\n".encode()
        return body * rng.choice([1, 3, 50])

    def synced(d: Device) -> None:
        d.once("--force")
        remote = set(v for v in server_tree(live_server).values() if v is not None)
        here = set(v for v in d.tree().values() if v is not None)
        lost = {c for c in dirty[d.name] if c not in remote or c not in here}
        assert not lost, f"edits lost by {d.name}: {lost}"
        dirty[d.name].clear()

    for step in range(STEPS):
        d = rng.choice(devs)
        files, dirs = _files(d), _dirs(d)
        op = rng.choice(
            [
                "new",
                "new",
                "edit",
                "edit",
                "rename",
                "delete",
                "mkdir",
                "mvdir",
                "rmdir",
                "sync",
                "sync",
                "sync",
            ]
        )
        if op == "new" or (op in ("edit", "rename", "delete") and not files):
            parent = rng.choice(["", *dirs])
            rel = f"{parent}/f{step}.txt" if parent else f"f{step}.txt"
            c = content(d)
            d.write(rel, c)
            dirty[d.name].add(c)
        elif op == "edit":
            rel = rng.choice(files)
            dirty[d.name].discard(d.path(rel).read_bytes())  # superseded by the user
            c = content(d)
            d.write(rel, c)
            dirty[d.name].add(c)
        elif op == "rename":
            rel = rng.choice(files)
            parent = rng.choice(["", *dirs])
            new = f"{parent}/r{step}.txt" if parent else f"r{step}.txt"
            d.path(rel).rename(d.path(new))
        elif op == "delete":
            rel = rng.choice(files)
            dirty[d.name].discard(d.path(rel).read_bytes())
            d.path(rel).unlink()
        elif op == "mkdir":
            parent = rng.choice(["", *dirs])
            d.path(f"{parent}/d{step}" if parent else f"d{step}").mkdir(parents=True)
        elif op == "mvdir" and dirs:
            src = rng.choice(dirs)
            d.path(src).rename(d.path(f"m{step}"))
        elif op == "rmdir" and dirs:
            src = rng.choice(dirs)
            for p in d.path(src).rglob("*"):
                if p.is_file():
                    dirty[d.name].discard(p.read_bytes())
            shutil.rmtree(d.path(src))
        else:
            synced(d)

    for _ in range(2):
        for d in devs:
            synced(d)
    a, b = devs
    assert a.tree() == b.tree() == server_tree(live_server)
