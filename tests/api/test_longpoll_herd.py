"""Many long-polls of one account parked at once, each with its own cursor: one write wakes
those it passes (answered by the answering thread), and every other poll still gets its own
answer (behind the journal: true at once; ahead of the write: false at its timeout)."""

from __future__ import annotations

import threading
import time

import requests

from tests.api.test_api import api, upload, url  # noqa: F401, F811 - the api fixture


def test_one_write_answers_each_poll_for_its_own_cursor(api, live_server):  # noqa: F811
    upload(api, "/first.txt", b"1")
    head = int(api.get(url(api, "/changes/latest")).json()["cursor"])
    cursors = [head] * 12 + [head - 1] * 4 + [head + 1] * 4
    results: dict[int, tuple[int, dict, float]] = {}

    def poll(i: int, cursor: int) -> None:
        s = requests.Session()
        s.auth = api.auth
        t0 = time.monotonic()
        r = s.get(url(api, "/longpoll"), params={"cursor": cursor, "timeout": 3})
        results[i] = (r.status_code, r.json(), time.monotonic() - t0)

    threads = [threading.Thread(target=poll, args=(i, c)) for i, c in enumerate(cursors)]
    for t in threads:
        t.start()
    time.sleep(0.8)  # parked
    upload(api, "/second.txt", b"2")  # the journal moves to head + 1
    for t in threads:
        t.join(15)
    assert len(results) == len(cursors)
    for i, cursor in enumerate(cursors):
        status, body, took = results[i]
        assert status == 200
        if cursor <= head:
            assert body == {"changes": True}, (cursor, body)
            assert took < 2.5, (cursor, took)  # woken (or answered at once), not timed out
        else:
            assert body == {"changes": False}, (cursor, body)
            assert took > 2.5, (cursor, took)
    # The answered connections are still usable (keep-alive after the answering thread wrote).
    again = api.get(url(api, "/longpoll"), params={"cursor": head + 1, "timeout": 1})
    assert again.json() == {"changes": False}
