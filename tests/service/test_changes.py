"""Change feed and notification buses: replay from a cursor, long-poll wake-ups."""

from __future__ import annotations

import threading
import time

import pytest

from davdrive import errors
from davdrive.notify.memory import MemoryBus
from davdrive.service.changes import Changes


def test_replay_from_cursor(drive, alice):
    feed = Changes(drive)
    start = feed.latest(alice)
    drive.mkdir(alice, "/x")
    drive.write_file(alice, "/x/f", b"1")
    drive.move(alice, "/x/f", "/x/g")
    changes, cursor, more = feed.since(alice, start)
    assert [(c.kind, c.path, c.from_path) for c in changes] == [
        ("created", "/x", None),
        ("created", "/x/f", None),
        ("moved", "/x/g", "/x/f"),
    ]
    assert not more and cursor == feed.latest(alice)
    page, cursor2, more = feed.since(alice, start, limit=2)
    assert len(page) == 2 and more
    rest, _, more = feed.since(alice, cursor2)
    assert [c.kind for c in rest] == ["moved"] and not more
    assert feed.since(alice, cursor)[0] == []
    with pytest.raises(errors.BadRequest):
        feed.since(alice, "not-a-cursor")


def test_wait_wakes_on_own_write_only(drive, alice, bob):
    feed = Changes(drive)
    cursor = feed.latest(alice)
    assert feed.wait(alice, cursor, 0.05) is False
    woke: list[tuple[bool, float]] = []

    def poll() -> None:
        t0 = time.monotonic()
        woke.append((feed.wait(alice, cursor, 10), time.monotonic() - t0))

    t = threading.Thread(target=poll)
    t.start()
    time.sleep(0.2)
    drive.write_file(bob, "/other", b"b")  # another account: must not wake alice
    time.sleep(0.2)
    assert not woke
    drive.write_file(alice, "/mine", b"a")
    t.join(5)
    assert woke and woke[0][0] is True and woke[0][1] < 2


def test_memory_bus_close_releases_waiters():
    bus = MemoryBus()
    result: list[bool] = []
    t = threading.Thread(target=lambda: result.append(bus.wait(1, 0, 30)))
    t.start()
    time.sleep(0.1)
    bus.close()
    t.join(2)
    assert result == [False]


def test_postgres_bus_crosses_processes(pg_url):
    """Two buses on one database stand for two server processes."""
    from davdrive.notify.postgres import PostgresBus

    a, b = PostgresBus(pg_url), PostgresBus(pg_url)
    try:
        woke: list[float] = []
        account = int(time.time() * 1000) % 1_000_000_000

        def poll() -> None:
            t0 = time.monotonic()
            if b.wait(account, 0, 10):
                woke.append(time.monotonic() - t0)

        t = threading.Thread(target=poll)
        t.start()
        time.sleep(0.3)
        a.publish(account + 1, 5)  # another account
        time.sleep(0.3)
        assert not woke
        a.publish(account, 1)
        t.join(5)
        assert woke and woke[0] < 2
    finally:
        a.close()
        b.close()


def test_pruned_cursor_is_expired_and_latest_still_works(drive, alice):
    feed = Changes(drive)
    start = feed.latest(alice)
    for i in range(5):
        drive.write_file(alice, f"/f{i}", b"x")
    mid = feed.since(alice, start, limit=2)[1]
    assert feed.prune(older_than=0, now=time.time() + 1) == 4  # the newest row stays
    with pytest.raises(errors.CursorExpired):
        feed.since(alice, start)
    with pytest.raises(errors.CursorExpired):
        feed.since(alice, mid)
    latest = feed.latest(alice)
    assert feed.since(alice, latest)[0] == []
    with pytest.raises(errors.CursorExpired):
        feed.since(alice, int(latest) + 10)  # a cursor from another database
    drive.write_file(alice, "/after", b"y")
    assert [c.path for c in feed.since(alice, latest)[0]] == ["/after"]


def test_prune_keeps_recent_changes(drive, alice):
    feed = Changes(drive)
    drive.write_file(alice, "/a", b"1")
    drive.write_file(alice, "/b", b"2")
    assert feed.prune(older_than=3600) == 0
    assert len(feed.since(alice, 0)[0]) == 2


def test_pins_and_dead_properties_are_journalled(drive, alice):
    feed = Changes(drive)
    drive.write_file(alice, "/doc", b"v1")
    start = feed.latest(alice)
    rev = drive.list_versions(alice, "/doc")[0].id
    drive.pin_version(alice, "/doc", rev, True)
    drive.pin_version(alice, "/doc", rev, True)  # no change, no row
    drive.set_dead_prop(alice, drive.stat(alice, "/doc").id, "{urn:x}color", b"<c>red</c>")
    drive.pin_version(alice, "/doc", rev, False)
    changes, _, _ = feed.since(alice, start)
    assert [(c.kind, c.path) for c in changes] == [
        ("pinned", "/doc"),
        ("props_changed", "/doc"),
        ("unpinned", "/doc"),
    ]


def test_a_stray_notify_is_not_a_change(pg_url, tmp_path):
    """With the PostgreSQL bus the journal, not the wake-up, answers: a NOTIFY for a seq that
    never committed (anyone with database access can send one) does not make the long-poll
    say true."""
    from davdrive.notify.postgres import PostgresBus
    from tests.service.conftest import make_drive

    drive = make_drive(pg_url, str(tmp_path / "master.key"), bus=PostgresBus(pg_url))
    outsider = PostgresBus(pg_url)
    try:
        alice = drive.create_account("alice", "x")
        feed = Changes(drive)
        cursor = feed.latest(alice)
        outsider.publish(alice.user_id, int(cursor) + 100)
        assert feed.wait(alice, cursor, 1.0) is False
        drive.write_file(alice, "/real", b"x")
        assert feed.wait(alice, cursor, 1.0) is True
    finally:
        outsider.close()
        drive.bus.close()
        drive.store.close()
        drive.db.dispose()


def test_memory_bus_wakes_only_the_accounts_waiters():
    bus = MemoryBus()
    results: dict[str, bool] = {}

    def wait(name: str, account: int, timeout: float) -> None:
        results[name] = bus.wait(account, 0, timeout)

    threads = [
        threading.Thread(target=wait, args=("a1", 1, 5)),
        threading.Thread(target=wait, args=("a2", 1, 5)),
        threading.Thread(target=wait, args=("b", 2, 0.5)),
    ]
    for t in threads:
        t.start()
    time.sleep(0.1)
    bus.publish(1, 1)
    for t in threads:
        t.join(5)
    assert results == {"a1": True, "a2": True, "b": False}
    assert bus._waiting == {}  # no per-account state left behind
