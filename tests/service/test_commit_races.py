"""Concurrent commits to one new path (SQLite and PostgreSQL): the account row lock orders them,
and each sees what the one before it committed — no duplicate node, no 500.

On PostgreSQL the writers of one process are not serialised by the process (only SQLite's
are), so these threads meet in the database as two server processes would.
"""

from __future__ import annotations

import threading

from davdrive import errors


def run_together(n: int, fn) -> list[object]:
    barrier = threading.Barrier(n)
    results: list[object] = [None] * n

    def worker(i: int) -> None:
        barrier.wait()
        try:
            results[i] = fn(i)
        except Exception as exc:  # noqa: BLE001 - collected for the assertions
            results[i] = exc

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def test_create_only_of_one_new_path_admits_exactly_one(drive, alice):
    results = run_together(
        8, lambda i: drive.write_file(alice, "/new.txt", b"v%d" % i, create_only=True)
    )
    won = [r for r in results if not isinstance(r, Exception)]
    lost = [r for r in results if isinstance(r, Exception)]
    assert len(won) == 1, results
    assert all(isinstance(r, errors.PreconditionFailed) for r in lost), lost
    assert [n.name for n in drive.list_dir(alice, "/")] == ["new.txt"]


def test_plain_writes_of_one_new_path_become_revisions(drive, alice):
    results = run_together(8, lambda i: drive.write_file(alice, "/same.txt", b"x" * (i + 1)))
    assert not [r for r in results if isinstance(r, Exception)], results
    assert [n.name for n in drive.list_dir(alice, "/")] == ["same.txt"]
    assert len(drive.list_versions(alice, "/same.txt")) == 8
    sizes = {r.size for r in results}
    assert drive.stat(alice, "/same.txt").size in sizes
    assert drive.usage(alice).used == drive.stat(alice, "/same.txt").size
