"""The per-account login limit against a real ``davdrive serve`` (issue 16, item 12): guesses
from five client addresses (127.0.0.2-6 on the loopback) share one budget, and during the
backoff the real user's device app password, bearer token and known address still work."""

from __future__ import annotations

import base64
import http.client

from davdrive.service import auth
from tests.live import LiveServer
from tests.server.test_identities_live import add_device


def request(
    srv: LiveServer, source: str, method: str, path: str, authorization: str
) -> tuple[int, str | None]:
    """``(status, Retry-After)`` of one request sent from the loopback address ``source``."""
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30, source_address=(source, 0))
    try:
        headers = {"Authorization": authorization, "Depth": "0"}
        conn.request(method, path, headers=headers)
        resp = conn.getresponse()
        resp.read()
        return resp.status, resp.getheader("Retry-After")
    finally:
        conn.close()


def basic(login: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{login}:{password}".encode()).decode()


def test_guesses_from_many_addresses_share_one_budget(live_server):
    srv = live_server
    phone = add_device(srv, "alice", "phone")
    home, right = "127.0.0.1", basic("alice", "alice-pw")
    assert request(srv, home, "PROPFIND", "/dav/alice/", right)[0] == 207

    answers = [
        request(srv, f"127.0.0.{2 + n}", "PROPFIND", "/dav/alice/", basic("alice", f"g{i}-{n}"))
        for i in range(10)
        for n in range(5)
    ]
    statuses = [status for status, _ in answers]
    # ten free failures and one more, then the backoff: no longer 50 guesses a minute
    assert statuses[: auth.ACCOUNT_FREE_FAILURES + 1] == [401] * (auth.ACCOUNT_FREE_FAILURES + 1)
    assert set(statuses[auth.ACCOUNT_FREE_FAILURES + 1 :]) == {429}, statuses
    assert all(int(retry) >= 1 for status, retry in answers if status == 429)

    stranger = "127.0.0.9"
    status, retry = request(srv, stranger, "PROPFIND", "/dav/alice/", right)
    assert status == 429 and retry is not None and int(retry) >= 1
    assert request(srv, stranger, "GET", "/api/v1/account", right)[0] == 429
    # the real user is not locked out: devices, tokens and the address that logged in before
    by_app_password = basic("alice", phone["app password"])
    assert request(srv, stranger, "PROPFIND", "/dav/alice/", by_app_password)[0] == 207
    assert request(srv, stranger, "GET", "/api/v1/account", by_app_password)[0] == 200
    token = "Bearer " + phone["token"]
    assert request(srv, "127.0.0.10", "PROPFIND", "/dav/alice/", token)[0] == 207
    assert request(srv, home, "PROPFIND", "/dav/alice/", right)[0] == 207
    assert request(srv, home, "GET", "/api/v1/account", right)[0] == 200
    # other accounts are untouched
    assert request(srv, stranger, "PROPFIND", "/dav/bob/", basic("bob", "bob-pw"))[0] == 207
