"""A recipient hears of shares at once, against the real server: its long-poll wakes within a
second when a share is created and when the owner writes inside the shared folder, and its
changes feed shows the recipient's paths; a revoked share is gone on the next request."""

from __future__ import annotations

import threading
import time

import requests

API = "/api/v1"


def _session(srv, login: str) -> requests.Session:
    s = requests.Session()
    s.auth = srv.auth(login)
    return s


def _poll_in_background(srv, s: requests.Session, cursor: str) -> tuple[threading.Thread, dict]:
    result: dict = {}

    def poll() -> None:
        t0 = time.monotonic()
        result["r"] = s.get(f"{srv.url}{API}/longpoll", params={"cursor": cursor, "timeout": 20})
        result["woke"] = time.monotonic()
        result["t0"] = t0

    thread = threading.Thread(target=poll)
    thread.start()
    time.sleep(0.5)  # parked
    assert thread.is_alive()
    return thread, result


def test_recipient_long_poll_wakes_on_share_and_on_owner_writes(live_server) -> None:
    alice, bob = _session(live_server, "alice"), _session(live_server, "bob")
    url = live_server.url + API
    assert alice.post(f"{url}/files/create_folder", json={"path": "/Team"}).ok
    cursor = bob.get(f"{url}/changes/latest").json()["cursor"]

    thread, result = _poll_in_background(live_server, bob, cursor)
    sent = time.monotonic()
    r = alice.post(f"{url}/shares", json={"path": "/Team", "user": "bob", "permissions": 15})
    assert r.status_code == 201, r.text
    thread.join(5)
    assert result["r"].json() == {"changes": True}
    assert result["woke"] - sent < 1.0
    feed = bob.get(f"{url}/changes", params={"cursor": cursor}).json()
    assert [(c["kind"], c["path"]) for c in feed["changes"]] == [("shared", "/Team")]

    cursor = feed["cursor"]
    thread, result = _poll_in_background(live_server, bob, cursor)
    sent = time.monotonic()
    up = alice.post(f"{url}/files/upload", params={"path": "/Team/report.txt"}, data=b"r")
    assert up.status_code in (200, 201), up.text
    thread.join(5)
    assert result["r"].json() == {"changes": True}
    assert result["woke"] - sent < 1.0
    feed = bob.get(f"{url}/changes", params={"cursor": cursor}).json()
    assert [(c["kind"], c["path"]) for c in feed["changes"]] == [("created", "/Team/report.txt")]
    got = bob.get(f"{url}/files/download", params={"path": "/Team/report.txt"})
    assert got.content == b"r"

    # bob writes back; alice's feed shows it at her path
    alice_cursor = alice.get(f"{url}/changes/latest").json()["cursor"]
    assert bob.post(f"{url}/files/upload", params={"path": "/Team/reply.txt"}, data=b"ok").ok
    feed = alice.get(f"{url}/changes", params={"cursor": alice_cursor}).json()
    assert [(c["kind"], c["path"]) for c in feed["changes"]] == [("created", "/Team/reply.txt")]

    share_id = alice.get(f"{url}/shares").json()["shares"][0]["id"]
    assert alice.delete(f"{url}/shares/{share_id}").status_code == 204
    gone = bob.get(f"{url}/files/download", params={"path": "/Team/report.txt"})
    assert gone.status_code == 404
    names = [
        e["name"] for e in bob.get(f"{url}/files/list", params={"path": "/"}).json()["entries"]
    ]
    assert "Team" not in names
