"""Bad JSON is a 400 on every route that reads a body, never a 500 (issue 16, item 7)."""

from __future__ import annotations

import pytest
import requests

ROUTES = [
    "/files/restore",
    "/files/pin",
    "/trash/restore",
    "/files/create_folder",
    "/files/delete",
    "/files/move",
    "/files/copy",
    "/devices",
]
BODIES = [
    b"[" * 100_000 + b"]" * 100_000,  # nested past the recursion limit
    b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    b'{"path": "/f", "rev": 1e400, "id": 1e400, "pinned": 1e400}',
    b'{"path": "/f", "rev": NaN, "id": Infinity}',
    b'{"path": "/f", "id": 1e400}',
    b"\xff\xfe not json",
    b"[]",
]


@pytest.mark.parametrize("route", ROUTES)
def test_hostile_json_is_a_400(live_server, route):
    url = f"{live_server.url}/api/v1{route}"
    for body in BODIES:
        r = requests.post(
            url,
            data=body,
            headers={"Content-Type": "application/json"},
            auth=live_server.auth("alice"),
        )
        assert r.status_code == 400, (route, body[:40], r.status_code, r.text[:200])
        assert r.json()["error"]["code"] == "bad_request"
