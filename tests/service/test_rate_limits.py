"""The login rate limits on SQLite and PostgreSQL: per (login, client address) and per account
across addresses, with a growing backoff that leaves device app passwords, bearer tokens and
addresses the account knows working (issue 16, item 12)."""

from __future__ import annotations

import base64
import threading
import time

import pytest

from davdrive import errors
from davdrive.service import auth
from davdrive.service.auth import Accounts, principal_from_header
from tests.service.conftest import make_drive
from tests.service.test_auth import CountingHasher

FREE = auth.ACCOUNT_FREE_FAILURES


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def accounts(db_url, tmp_path, clock):
    drive = make_drive(db_url, str(tmp_path / "master.key"))
    acc = Accounts(drive, hasher=CountingHasher(), clock=clock)
    acc.add_user("alice", "alice-pw")
    yield acc
    drive.store.close()
    drive.db.dispose()


def attempt(acc: Accounts, password: str, client: str, login: str = "alice") -> object:
    """``"ok"``, ``401`` or ``(429, retry_after)``."""
    try:
        acc.authenticate(login, password, client=client)
    except errors.TooManyRequests as exc:
        return 429, exc.details["retry_after"]
    except errors.NotAuthenticated:
        return 401
    return "ok"


def spend_free_failures(acc: Accounts, login: str = "alice") -> None:
    """``FREE`` failures spread over five addresses, each far below its own limit."""
    for i in range(FREE):
        assert attempt(acc, f"guess-{i}", f"203.0.113.{i % 5}", login) == 401


def test_five_addresses_no_longer_get_fifty_guesses_a_minute(accounts):
    hasher: CountingHasher = accounts.hasher  # type: ignore[assignment]
    hasher.verifies = 0
    results = [
        attempt(accounts, f"guess-{n}-{i}", f"203.0.113.{n}") for i in range(10) for n in range(5)
    ]
    assert results[: FREE + 1] == [401] * (FREE + 1)  # one guess past the free ones, then wait
    assert all(r == (429, auth.ACCOUNT_BACKOFF) for r in results[FREE + 1 :]), results
    assert hasher.verifies == FREE + 1  # the refused attempts cost no argon2
    # the right account password from an address the account does not know waits too: a
    # different answer would tell the attacker which guess was right
    assert attempt(accounts, "alice-pw", "198.51.100.7")[0] == 429  # type: ignore[index]


def test_the_per_address_limit_stays(accounts):
    for i in range(auth.MAX_FAILURES):
        assert attempt(accounts, f"guess-{i}", "203.0.113.9") == 401
    assert attempt(accounts, "guess", "203.0.113.9") == (429, auth.FAILURE_WINDOW + 1)


def test_backoff_doubles_up_to_the_cap_and_is_forgotten(accounts, clock):
    spend_free_failures(accounts)
    waits = []
    for i in range(12):
        assert attempt(accounts, f"late-{i}", f"192.0.2.{i}") == 401
        status, retry = attempt(accounts, "alice-pw", "192.0.2.200")  # type: ignore[misc]
        assert status == 429
        waits.append(retry)
        clock.advance(retry)
    expected = [min(auth.ACCOUNT_BACKOFF * 2**i, auth.ACCOUNT_BACKOFF_MAX) for i in range(12)]
    assert waits == expected
    assert attempt(accounts, "alice-pw", "192.0.2.200") == "ok"  # the pause is over
    # an hour without a failure forgets the count: the free failures are available again
    clock.advance(auth.ACCOUNT_FORGET + 1)
    spend_free_failures(accounts)
    assert attempt(accounts, "guess", "192.0.2.201") == 401
    assert attempt(accounts, "guess", "192.0.2.202") == (429, auth.ACCOUNT_BACKOFF)


def test_devices_keep_working_during_the_backoff(accounts):
    alice = accounts.drive.principal("alice")
    device_id, app_pw, token = accounts.add_device(alice, "phone")
    spend_free_failures(accounts)
    assert attempt(accounts, "one-more", "203.0.113.9") == 401
    hasher: CountingHasher = accounts.hasher  # type: ignore[assignment]
    hasher.verifies = 0
    # from an address the account has never seen: the app password (found by digest) passes
    p = accounts.authenticate("alice", app_pw, client="198.51.100.50")
    assert (p.login, p.device_id) == ("alice", device_id)
    assert accounts.authenticate_token(token).device_id == device_id
    header = "Bearer " + token
    assert principal_from_header(accounts, header, "198.51.100.51").device_id == device_id
    # a wrong app password is just another refused guess, and no argon2 ran for any of this
    assert attempt(accounts, "x" * len(app_pw), "198.51.100.52")[0] == 429  # type: ignore[index]
    assert hasher.verifies == 0


def test_an_address_that_logged_in_is_not_held_back(accounts, clock):
    assert attempt(accounts, "alice-pw", "198.51.100.1") == "ok"  # home, before the attack
    spend_free_failures(accounts)
    assert attempt(accounts, "one-more", "203.0.113.9") == 401
    assert attempt(accounts, "alice-pw", "203.0.113.10")[0] == 429  # type: ignore[index]
    assert attempt(accounts, "alice-pw", "198.51.100.1") == "ok"
    assert attempt(accounts, "typo", "198.51.100.1") == 401  # a typo is answered, not held
    # a device or a token used from an address makes it known too
    alice = accounts.drive.principal("alice")
    _, app_pw, token = accounts.add_device(alice, "laptop")
    accounts.authenticate("alice", app_pw, client="198.51.100.2")
    assert attempt(accounts, "alice-pw", "198.51.100.2") == "ok"
    basic = "Basic " + base64.b64encode(b"alice:alice-pw").decode()
    assert principal_from_header(accounts, basic, "198.51.100.1").device_id is None
    with pytest.raises(errors.TooManyRequests):
        principal_from_header(accounts, basic, "198.51.100.3")
    accounts.authenticate_token(token, client="198.51.100.4")
    assert attempt(accounts, "alice-pw", "198.51.100.4") == "ok"
    # an address stays known for KNOWN_CLIENT_TTL after its last success
    clock.advance(auth.KNOWN_CLIENT_TTL + 1)
    spend_free_failures(accounts)
    assert attempt(accounts, "one-more", "203.0.113.9") == 401
    assert attempt(accounts, "alice-pw", "198.51.100.1")[0] == 429  # type: ignore[index]


def test_a_known_address_that_keeps_failing_loses_its_exemption(accounts, clock):
    """Behind a reverse proxy every client has the proxy's address: once that address has
    failed ACCOUNT_FREE_FAILURES times since its last success, the backoff applies to it too."""
    proxy = "10.0.0.1"
    assert attempt(accounts, "alice-pw", proxy) == "ok"
    for i in range(FREE):
        assert attempt(accounts, f"guess-{i}", proxy) == 401
    clock.advance(auth.FAILURE_WINDOW + 1)  # past the per-address window
    assert attempt(accounts, "guess", proxy) == 401  # the one guess past the free ones
    assert attempt(accounts, "guess-2", proxy)[0] == 429  # type: ignore[index]


def test_unknown_logins_are_limited_like_real_ones(accounts):
    """The same answers for a login that does not exist: no enumeration through 429s."""
    for login in ("alice", "nobody"):
        spend_free_failures(accounts, login)
        assert attempt(accounts, "x", "192.0.2.1", login) == 401
        assert attempt(accounts, "x", "192.0.2.2", login) == (429, auth.ACCOUNT_BACKOFF)


class SlowHasher(CountingHasher):
    def verify(self, hash: str | bytes, password: str | bytes) -> bool:  # noqa: A002
        time.sleep(0.5)  # every thread arrives while the first ones verify
        return super().verify(hash, password)


def test_parallel_guesses_past_the_free_ones_verify_one_at_a_time(db_url, tmp_path, clock):
    drive = make_drive(db_url, str(tmp_path / "master.key"))
    try:
        hasher = SlowHasher()
        acc = Accounts(drive, hasher=hasher, clock=clock)
        acc.add_user("alice", "alice-pw")
        for i in range(FREE - 2):
            assert attempt(acc, f"guess-{i}", f"203.0.113.{i}") == 401
        hasher.verifies = 0
        results: list[object] = []

        def guess(n: int) -> None:
            results.append(attempt(acc, f"parallel-{n}", f"198.51.100.{n}"))

        threads = [threading.Thread(target=guess, args=(n,)) for n in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
        # two free failures were left: two verifications run at once, the others wait
        assert results.count(401) == 2 and hasher.verifies == 2, results
        assert results.count((429, auth.ACCOUNT_BACKOFF)) == 10
        # with none left, one verification at a time
        results.clear()
        hasher.verifies = 0
        threads = [threading.Thread(target=guess, args=(n,)) for n in range(20, 28)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
        assert results.count(401) == 1 and hasher.verifies == 1, results
    finally:
        drive.store.close()
        drive.db.dispose()
