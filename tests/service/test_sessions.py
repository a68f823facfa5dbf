"""Browser sessions on SQLite and PostgreSQL: sign in, idle expiry (a fake clock), sign out and
revocation seen by another process, CSRF derivation, device names, and migration 0009."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from davdrive import errors
from davdrive.metadata.db import Database
from davdrive.service.auth import Accounts
from davdrive.service.sessions import Sessions, browser_name, check_csrf, csrf_token
from tests.service.conftest import make_drive
from tests.service.test_auth import CountingHasher
from tests.service.test_identities import USER_SQL, upgrade_to

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
IDLE = 600.0


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def procs(db_url, tmp_path, clock):
    """``make() -> Sessions`` of a new "process" (own Database, Accounts) on one database."""
    drives = []

    def make() -> Sessions:
        drives.append(make_drive(db_url, str(tmp_path / "master.key")))
        accounts = Accounts(drives[-1], hasher=CountingHasher())
        return Sessions(accounts, idle=IDLE, clock=clock)

    yield make
    for d in drives:
        d.store.close()
        d.db.dispose()


@pytest.fixture
def sessions(procs) -> Sessions:
    s = procs()
    s.accounts.add_user("alice", "alice-pw")
    return s


def test_sign_in_makes_a_browser_device_whose_token_resolves(sessions):
    new = sessions.login("Alice", "alice-pw", client="10.0.0.1", user_agent=FIREFOX)
    assert len(new.token) >= 43
    got = sessions.resolve(new.token)
    assert got.login == "alice" and got.device_id == new.session.device_id
    assert got.principal.device_id == got.device_id
    assert got.csrf == new.session.csrf == csrf_token(new.token)
    assert got.idle_timeout == IDLE
    devices = sessions.accounts.list_devices("alice")
    assert [(d.name, d.kind) for d in devices] == [("Browser – Firefox on Linux", "browser")]
    # a second browser of the same kind gets a name of its own
    sessions.login("alice", "alice-pw", user_agent=FIREFOX)
    names = sorted(d.name for d in sessions.accounts.list_devices("alice"))
    assert names == ["Browser – Firefox on Linux", "Browser – Firefox on Linux (2)"]


def test_wrong_password_and_app_passwords_are_refused(sessions):
    with pytest.raises(errors.NotAuthenticated):
        sessions.login("alice", "nope")
    p = sessions.accounts.authenticate("alice", "alice-pw")
    _id, app_password, _token = sessions.accounts.add_device(p, "laptop")
    with pytest.raises(errors.NotAuthenticated):
        sessions.login("alice", app_password)
    assert [d.name for d in sessions.accounts.list_devices("alice")] == ["laptop"]


def test_failed_sign_ins_are_rate_limited(sessions):
    for _ in range(10):
        with pytest.raises(errors.NotAuthenticated):
            sessions.login("alice", "wrong", client="10.0.0.9")
    with pytest.raises(errors.TooManyRequests):
        sessions.login("alice", "alice-pw", client="10.0.0.9")


def test_the_token_is_no_bearer_token_and_has_no_app_password(sessions):
    new = sessions.login("alice", "alice-pw")
    with pytest.raises(errors.NotAuthenticated):
        sessions.accounts.authenticate_token(new.token)
    with pytest.raises(errors.NotAuthenticated):
        sessions.accounts.authenticate("alice", new.token)
    p = sessions.accounts.authenticate("alice", "alice-pw")
    _id, _pw, token = sessions.accounts.add_device(p, "phone")
    with pytest.raises(errors.NotAuthenticated):  # and a device token is no session
        sessions.resolve(token)


def test_idle_expiry_is_kept_alive_by_use_across_processes(sessions, procs, clock):
    other = procs()
    new = sessions.login("alice", "alice-pw")
    for _ in range(5):  # used every 0.9 * IDLE, alternately by two processes: never expires
        clock.now += IDLE * 0.9
        assert other.resolve(new.token).login == "alice"
        clock.now += IDLE * 0.05
        assert sessions.resolve(new.token).login == "alice"
    clock.now += IDLE + 1
    with pytest.raises(errors.NotAuthenticated):
        other.resolve(new.token)
    assert sessions.accounts.list_devices("alice") == []  # an expired session is deleted
    with pytest.raises(errors.NotAuthenticated):
        sessions.resolve(new.token)


def test_expired_sessions_are_purged_at_the_next_sign_in(sessions, clock):
    sessions.login("alice", "alice-pw", user_agent=FIREFOX)
    clock.now += IDLE + 1
    fresh = sessions.login("alice", "alice-pw", user_agent=FIREFOX)
    devices = sessions.accounts.list_devices("alice")
    assert [(d.id, d.name) for d in devices] == [
        (fresh.session.device_id, "Browser – Firefox on Linux")
    ]


def test_sign_out_and_revocation_end_the_session_in_every_process(sessions, procs):
    other = procs()
    one = sessions.login("alice", "alice-pw")
    two = sessions.login("alice", "alice-pw")
    assert other.resolve(one.token) and other.resolve(two.token)
    assert sessions.logout(one.token) is True
    assert sessions.logout(one.token) is False
    with pytest.raises(errors.NotAuthenticated):
        other.resolve(one.token)
    sessions.accounts.revoke_device("alice", two.session.device_id)
    with pytest.raises(errors.NotAuthenticated):
        other.resolve(two.token)


def test_a_password_change_ends_every_browser_session(sessions, procs):
    other = procs()
    new = sessions.login("alice", "alice-pw")
    p = sessions.accounts.authenticate("alice", "alice-pw")
    sessions.accounts.add_device(p, "laptop")
    other.accounts.set_password("alice", "new-pw")
    with pytest.raises(errors.NotAuthenticated):
        sessions.resolve(new.token)
    assert [d.name for d in sessions.accounts.list_devices("alice")] == ["laptop"]


def test_csrf_token_is_bound_to_the_session():
    a, b = csrf_token("token-a"), csrf_token("token-b")
    assert a != b and a == csrf_token("token-a") and len(a) >= 43
    assert check_csrf("token-a", a)
    assert not check_csrf("token-a", b)
    assert not check_csrf("token-a", "")
    assert not check_csrf("token-a", None)


@pytest.mark.parametrize(
    ("ua", "name"),
    [
        (FIREFOX, "Browser – Firefox on Linux"),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0",
            "Browser – Edge on Windows",
        ),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like "
            "Gecko) Version/17.5 Safari/605.1.15",
            "Browser – Safari on macOS",
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) CriOS/126.0 Mobile/15E148 Safari/604.1",
            "Browser – Chrome on iOS",
        ),
        (
            "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/126.0 Mobile Safari/537.36",
            "Browser – Chrome on Android",
        ),
        ("curl/8.5.0", "Browser"),
        (None, "Browser"),
    ],
)
def test_browser_names(ua, name):
    assert browser_name(ua) == name


def test_migration_0009_marks_existing_devices_as_apps(db_url):
    db = Database(db_url)
    try:
        upgrade_to(db, "0008")
        with db.write() as s:
            s.execute(text(USER_SQL), {"login": "alice", "key": b"k"})
            s.execute(
                text(
                    "INSERT INTO device (user_id, name, token_hash, last_cursor, created_at) "
                    "SELECT id, 'laptop', 'abc', 0, 0 FROM users WHERE login = 'alice'"
                )
            )
        db.upgrade()
        db.upgrade()  # at head: nothing to do
        with db.read() as s:
            assert s.execute(text("SELECT name, kind FROM device")).all() == [("laptop", "app")]
    finally:
        db.dispose()


@pytest.mark.parametrize("bad", [0, -5, "soon", True])
def test_the_idle_setting_must_be_a_positive_number(bad):
    from davdrive.config import load_config

    with pytest.raises(ValueError, match="session_idle_minutes"):
        load_config(session_idle_minutes=bad)
    assert load_config(session_idle_minutes=0.5).session_idle_minutes == 0.5
    assert load_config().session_idle_minutes == 480
