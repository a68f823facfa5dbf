"""A GET racing a PUT answers one version, headers and body alike (issue 16, item 1): 400
GET/PUT pairs of two sizes; every GET body matches its own ETag and length."""

from __future__ import annotations

import hashlib
import threading

import requests

A = b"a" * 150_000
B = b"b" * 450_000  # another size, so a mixed answer shows as a wrong length too


def test_get_racing_put_serves_one_version(live_server):
    url = live_server.dav("alice") + "race.bin"
    auth = live_server.auth("alice")
    assert requests.put(url, data=A, auth=auth).status_code == 201
    seen: dict[str, str] = {}
    problems: list[str] = []
    stop = threading.Event()

    def writer() -> None:
        with requests.Session() as s:
            s.auth = auth
            for i in range(400):
                s.put(url, data=B if i % 2 == 0 else A, timeout=30).raise_for_status()
        stop.set()

    def reader() -> None:
        with requests.Session() as s:
            s.auth = auth
            count = 0
            while not stop.is_set() or count < 400:
                count += 1
                try:
                    r = s.get(url, timeout=10)
                except requests.RequestException as exc:  # a hang or a cut-off body
                    problems.append(f"GET failed: {exc!r}")
                    continue
                body, etag = r.content, r.headers.get("ETag", "")
                if r.status_code != 200 or len(body) != int(r.headers["Content-Length"]):
                    problems.append(f"{r.status_code} {len(body)} vs {r.headers}")
                    continue
                if body not in (A, B):
                    problems.append(f"mixed body of {len(body)} bytes under {etag}")
                    continue
                digest = hashlib.sha256(body).hexdigest()
                if seen.setdefault(etag, digest) != digest:
                    problems.append(f"{etag} carried two different bodies")
                if count >= 2000:
                    break

    threads = [threading.Thread(target=writer)] + [
        threading.Thread(target=reader) for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert stop.is_set(), "the writer did not finish"
    assert problems == []
    assert len(seen) > 1  # the reads really did see several versions
