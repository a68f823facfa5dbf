"""Accounts on SQLite and PostgreSQL: argon2id, devices, tokens, rate limit, cache."""

from __future__ import annotations

import time

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from davdrive import errors
from davdrive.metadata.schema import Device, User
from davdrive.service import auth
from davdrive.service.auth import Accounts
from tests.service.conftest import make_drive


class CountingHasher(PasswordHasher):
    """A cheap argon2id hasher that counts verifications (the expensive step)."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=8 * 1024, parallelism=1)
        self.verifies = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:  # noqa: A002
        self.verifies += 1
        return super().verify(hash, password)


@pytest.fixture
def accounts(db_url, tmp_path):
    drive = make_drive(db_url, str(tmp_path / "master.key"))
    acc = Accounts(drive, hasher=CountingHasher())
    yield acc
    drive.store.close()
    drive.db.dispose()


def stored_hash(acc: Accounts, login: str) -> str:
    with acc.db.read() as s:
        return s.scalar(select(User.password_hash).where(User.login == login))


def test_default_hash_is_memory_hard_argon2id(db_url, tmp_path):
    drive = make_drive(db_url, str(tmp_path / "master.key"))
    try:
        acc = Accounts(drive)
        acc.add_user("alice", "s3cret pw")
        h = stored_hash(acc, "alice")
        assert h.startswith("$argon2id$")
        assert "s3cret" not in h
        params = dict(kv.split("=") for kv in h.split("$")[3].split(","))
        assert int(params["m"]) >= 64 * 1024  # KiB: at least 64 MiB
        assert acc.authenticate("alice", "s3cret pw").login == "alice"
    finally:
        drive.store.close()
        drive.db.dispose()


def test_account_password_and_wrong_credentials(accounts):
    p = accounts.add_user("alice", "alice-pw", quota=5_000, admin=True)
    assert p.is_admin
    got = accounts.authenticate("alice", "alice-pw", client="10.0.0.1")
    assert (got.user_id, got.login, got.device_id, got.is_admin) == (p.user_id, "alice", None, True)
    # logins are case-insensitive; the principal carries the canonical spelling
    assert accounts.authenticate("ALICE", "alice-pw").login == "alice"
    for login, pw in [("alice", "wrong"), ("alice", ""), ("nobody", "alice-pw"), ("", "x")]:
        with pytest.raises(errors.NotAuthenticated):
            accounts.authenticate(login, pw)


def test_add_user_validates_logins(accounts):
    for bad in ["", ".hidden", "a/b", "a b", "x" * 65, "ünï", "a:b"]:
        with pytest.raises(errors.BadRequest):
            accounts.add_user(bad, "pw")
    accounts.add_user("a.b_c-9", "pw")
    accounts.add_user("x" * 64, "pw")
    with pytest.raises(errors.AlreadyExists):
        accounts.add_user("A.B_C-9", "pw")
    with pytest.raises(errors.BadRequest):
        accounts.add_user("carol", "")
    assert [u.login for u in accounts.list_users()] == ["a.b_c-9", "x" * 64]


def test_quota_list_and_delete(accounts):
    accounts.add_user("alice", "pw", quota=1_000)
    accounts.set_quota("alice", 2_000_000)
    [info] = accounts.list_users()
    assert (info.login, info.quota, info.used, info.is_admin) == ("alice", 2_000_000, 0, False)
    assert accounts.drive.usage(accounts.drive.principal("alice")).quota == 2_000_000
    accounts.authenticate("alice", "pw")
    accounts.delete_user("alice")
    assert accounts.list_users() == []
    with pytest.raises(errors.NotAuthenticated):
        accounts.authenticate("alice", "pw")  # the cached verification went with the account
    with pytest.raises(errors.NotFound):
        accounts.set_quota("alice", 1)


def test_device_app_password_and_token(accounts):
    alice = accounts.add_user("alice", "alice-pw")
    bob = accounts.add_user("bob", "bob-pw")
    device_id, app_pw, token = accounts.add_device(alice, "phone")
    assert app_pw != token and len(app_pw) >= 24 and len(token) >= 32

    p = accounts.authenticate("alice", app_pw)
    assert (p.user_id, p.device_id) == (alice.user_id, device_id)
    t = accounts.authenticate_token(token)
    assert (t.user_id, t.login, t.device_id) == (alice.user_id, "alice", device_id)

    # an app password only opens its own account; tokens are not passwords and vice versa
    with pytest.raises(errors.NotAuthenticated):
        accounts.authenticate("bob", app_pw)
    with pytest.raises(errors.NotAuthenticated):
        accounts.authenticate("alice", token)
    with pytest.raises(errors.NotAuthenticated):
        accounts.authenticate_token(app_pw)
    with pytest.raises(errors.NotAuthenticated):
        accounts.authenticate_token("")
    assert accounts.authenticate("bob", "bob-pw").user_id == bob.user_id

    # only digests are stored, and use is recorded
    with accounts.db.read() as s:
        row = s.get(Device, device_id)
        assert row.name == "phone"
        assert app_pw not in (row.app_password_hash or "") and token != row.token_hash
        assert row.last_seen is not None and row.last_seen <= time.time()


def test_rate_limit_per_login_and_client(accounts, monkeypatch):
    accounts.add_user("alice", "alice-pw")
    for _ in range(auth.MAX_FAILURES):
        with pytest.raises(errors.NotAuthenticated):
            accounts.authenticate("alice", "guess", client="203.0.113.9")
    with pytest.raises(errors.TooManyRequests) as exc:
        accounts.authenticate("alice", "alice-pw", client="203.0.113.9")
    assert 1 <= exc.value.details["retry_after"] <= auth.FAILURE_WINDOW + 1
    # other clients and other logins are not locked out
    assert accounts.authenticate("alice", "alice-pw", client="198.51.100.1").login == "alice"
    with pytest.raises(errors.NotAuthenticated):
        accounts.authenticate("bob", "guess", client="203.0.113.9")

    # the window passes
    monkeypatch.setattr(auth, "FAILURE_WINDOW", 0.2)
    time.sleep(0.3)
    assert accounts.authenticate("alice", "alice-pw", client="203.0.113.9").login == "alice"


def test_verification_cache_and_invalidation_on_passwd(accounts):
    accounts.add_user("alice", "old-pw")
    hasher: CountingHasher = accounts.hasher  # type: ignore[assignment]
    hasher.verifies = 0
    for _ in range(5):
        accounts.authenticate("alice", "old-pw")
    assert hasher.verifies == 1  # argon2 ran once; the other four were cache hits

    accounts.set_password("alice", "new-pw")
    with pytest.raises(errors.NotAuthenticated):
        accounts.authenticate("alice", "old-pw")
    assert accounts.authenticate("alice", "new-pw").login == "alice"
    assert stored_hash(accounts, "alice").startswith("$argon2id$")


def test_cache_expires(accounts, monkeypatch):
    accounts.add_user("alice", "pw")
    hasher: CountingHasher = accounts.hasher  # type: ignore[assignment]
    monkeypatch.setattr(auth, "CACHE_TTL", 0.1)
    accounts.authenticate("alice", "pw")
    time.sleep(0.2)
    hasher.verifies = 0
    accounts.authenticate("alice", "pw")
    assert hasher.verifies == 1


def test_change_by_another_process_is_seen_after_the_ttl(accounts, monkeypatch):
    """A second Accounts (another server process) changes the password; this one keeps its
    cached verification for at most CACHE_TTL."""
    accounts.add_user("alice", "old-pw")
    monkeypatch.setattr(auth, "CACHE_TTL", 0.2)
    accounts.authenticate("alice", "old-pw")
    other = Accounts(accounts.drive, hasher=CountingHasher())
    other.set_password("alice", "new-pw")
    time.sleep(0.3)
    with pytest.raises(errors.NotAuthenticated):
        accounts.authenticate("alice", "old-pw")
    assert accounts.authenticate("alice", "new-pw").login == "alice"


class SlowHasher(CountingHasher):
    def verify(self, hash: str | bytes, password: str | bytes) -> bool:  # noqa: A002
        time.sleep(0.2)  # long enough for every thread to arrive while the first verifies
        return super().verify(hash, password)


def test_identical_concurrent_logins_verify_once(db_url, tmp_path):
    """Ten connections opened at once with the same credentials cost one argon2 verification
    (each one holds ~64 MiB with the default parameters); wrong ones still fail everywhere."""
    import threading

    drive = make_drive(db_url, str(tmp_path / "master.key"))
    try:
        hasher = SlowHasher()
        acc = Accounts(drive, hasher=hasher)
        acc.add_user("alice", "pw")
        results: list[object] = []

        def login(password: str) -> None:
            try:
                results.append(acc.authenticate("alice", password, client="10.0.0.1").login)
            except errors.NotAuthenticated as exc:
                results.append(type(exc))

        threads = [threading.Thread(target=login, args=("pw",)) for _ in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert results == ["alice"] * 10 and hasher.verifies == 1
        results.clear()
        threads = [threading.Thread(target=login, args=("wrong",)) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert results == [errors.NotAuthenticated] * 3
    finally:
        drive.store.close()
        drive.db.dispose()
