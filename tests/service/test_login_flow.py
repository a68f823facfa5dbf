"""Login Flow v2 state on SQLite and PostgreSQL: grant once and only after approval, expiry,
several processes over one database, concurrent polls, device names, and migration 0007."""

from __future__ import annotations

import hashlib
import threading
import warnings

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config as AlembicConfig
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select, text

from davdrive import errors
from davdrive.metadata.db import MIGRATIONS, Database
from davdrive.metadata.schema import Base, LoginFlow
from davdrive.service.auth import DEVICE_NAME_MAX, Accounts
from davdrive.service.login_flow import DEFAULT_CLIENT, FLOW_TTL, LoginFlows, device_name
from tests.service.conftest import make_drive
from tests.service.test_auth import CountingHasher
from tests.service.test_identities import USER_SQL, upgrade_to

CLIENT = "Mozilla/5.0 (Linux) mirall/3.13.0 (Nextcloud, debian-6.1 ClientArchitecture: x86_64)"


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def procs(db_url, tmp_path):
    """``make(**kw) -> LoginFlows`` of a new "process" (own Database) on the test's database."""
    drives = []

    def make(**kw: object) -> LoginFlows:
        drives.append(make_drive(db_url, str(tmp_path / "master.key")))
        return LoginFlows(Accounts(drives[-1], hasher=CountingHasher()), **kw)  # type: ignore[arg-type]

    yield make
    for d in drives:
        d.store.close()
        d.db.dispose()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def flows(procs, clock) -> LoginFlows:
    f = procs(clock=clock)
    f.accounts.add_user("alice", "alice-pw")
    return f


def rows(f: LoginFlows) -> list[tuple]:
    with f.db.read() as s:
        return [tuple(r) for r in s.execute(select(LoginFlow.__table__)).all()]


def test_granted_once_and_only_after_approval(flows):
    flow = flows.start(CLIENT)
    assert len(flow.poll_token) >= 64 and len(flow.login_token) >= 64
    assert flow.poll_token != flow.login_token
    with pytest.raises(errors.NotFound):
        flows.poll(flow.poll_token)  # pending
    assert flows.client_of(flow.login_token) == CLIENT
    with pytest.raises(errors.NotFound):
        flows.client_of(flow.poll_token)  # the poll token does not open the page
    p = flows.accounts.authenticate("alice", "alice-pw")
    flows.approve(flow.login_token, p)
    with pytest.raises(errors.NotFound):
        flows.client_of(flow.login_token)  # approved: the page is gone
    with pytest.raises(errors.NotFound):
        flows.approve(flow.login_token, p)  # at most once
    with pytest.raises(errors.NotFound):
        flows.poll(flow.login_token)  # the login token does not poll
    grant = flows.poll(flow.poll_token)
    assert grant.login == "alice"
    device = flows.accounts.authenticate("alice", grant.app_password)
    assert device.device_id is not None
    names = [d.name for d in flows.accounts.list_devices("alice")]
    assert names == [CLIENT]
    with pytest.raises(errors.NotFound):
        flows.poll(flow.poll_token)  # exactly once
    assert rows(flows) == []


def test_only_digests_of_the_tokens_are_stored(flows):
    flow = flows.start(CLIENT)
    flows.approve(flow.login_token, flows.accounts.authenticate("alice", "alice-pw"))
    (row,) = rows(flows)
    stored = " ".join(str(v) for v in row)
    assert flow.poll_token not in stored and flow.login_token not in stored
    assert hashlib.sha256(flow.poll_token.encode()).hexdigest() in stored
    assert hashlib.sha256(flow.login_token.encode()).hexdigest() in stored
    assert flows.accounts.list_devices("alice") == []  # no app password exists before the poll


def test_flows_expire_after_the_ttl(procs, clock):
    flows = procs(clock=clock, ttl=60)
    flows.accounts.add_user("alice", "alice-pw")
    p = flows.accounts.authenticate("alice", "alice-pw")
    pending, approved = flows.start("a"), flows.start("b")
    flows.approve(approved.login_token, p)
    clock.now += 59
    assert flows.client_of(pending.login_token) == "a"
    clock.now += 1
    with pytest.raises(errors.NotFound):
        flows.client_of(pending.login_token)
    with pytest.raises(errors.NotFound):
        flows.approve(pending.login_token, p)
    with pytest.raises(errors.NotFound):
        flows.poll(approved.poll_token)
    assert flows.accounts.list_devices("alice") == []
    assert len(rows(flows)) == 2  # expired rows go lazily ...
    fresh = flows.start("c")
    assert len(rows(flows)) == 1  # ... when a flow starts
    assert flows.client_of(fresh.login_token) == "c"


def test_default_ttl_is_nextclouds_twenty_minutes(procs, clock):
    flows = procs(clock=clock)
    flow = flows.start("a")
    clock.now += FLOW_TTL - 1
    assert flows.client_of(flow.login_token) == "a"
    clock.now += 1
    with pytest.raises(errors.NotFound):
        flows.client_of(flow.login_token)


def test_start_page_and_poll_may_reach_different_processes(procs):
    one, two, three = procs(), procs(), procs()
    one.accounts.add_user("alice", "alice-pw")
    flow = one.start(CLIENT)
    assert two.client_of(flow.login_token) == CLIENT
    two.approve(flow.login_token, two.accounts.authenticate("alice", "alice-pw"))
    grant = three.poll(flow.poll_token)
    assert one.accounts.authenticate("alice", grant.app_password).device_id is not None
    with pytest.raises(errors.NotFound):
        one.poll(flow.poll_token)


def test_concurrent_polls_grant_once(procs):
    workers = [procs() for _ in range(4)]
    workers[0].accounts.add_user("alice", "alice-pw")
    flow = workers[0].start(CLIENT)
    workers[0].approve(flow.login_token, workers[0].accounts.authenticate("alice", "alice-pw"))
    barrier = threading.Barrier(len(workers))
    outcomes: list[object] = []

    def poll(f: LoginFlows) -> None:
        barrier.wait()
        try:
            outcomes.append(f.poll(flow.poll_token))
        except errors.NotFound as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=poll, args=(f,)) for f in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    grants = [o for o in outcomes if not isinstance(o, errors.NotFound)]
    assert len(outcomes) == len(workers) and len(grants) == 1
    assert len(workers[0].accounts.list_devices("alice")) == 1


def test_a_deleted_account_gets_nothing(flows):
    flow = flows.start(CLIENT)
    flows.approve(flow.login_token, flows.accounts.authenticate("alice", "alice-pw"))
    flows.accounts.delete_user("alice")
    with pytest.raises(errors.NotFound):
        flows.poll(flow.poll_token)


def test_app_password_device_names_are_unique(flows):
    p = flows.accounts.authenticate("alice", "alice-pw")
    flows.accounts.add_device(p, "nextcloud-ios (2)")  # taken, in another case too
    passwords = [flows.app_password(p, "Nextcloud-iOS") for _ in range(3)]
    assert len(set(passwords)) == 3
    names = {d.name for d in flows.accounts.list_devices("alice")}
    assert names == {"nextcloud-ios (2)", "Nextcloud-iOS", "Nextcloud-iOS (3)", "Nextcloud-iOS (4)"}
    for password in passwords:
        assert flows.accounts.authenticate("alice", password).device_id is not None


def test_device_names_from_user_agents():
    assert device_name("  a\tb\x00c\x85d  ") == "a b c d"
    assert device_name("") == device_name(None) == device_name("\x01 \n") == DEFAULT_CLIENT
    long = device_name("x" * 500)
    assert len(long + " (1000)") <= DEVICE_NAME_MAX


# -- migration 0007 --------------------------------------------------------------------------------
def test_migration_0007_adds_the_table_idempotently(db_url, tmp_path):
    db = Database(db_url)
    try:
        upgrade_to(db, "0006")
        with db.write() as s:
            s.execute(text(USER_SQL), {"login": "alice", "key": b"k"})
        with db.engine.connect() as c:
            assert not inspect(c).has_table("login_flow")
        db.upgrade()
        with db.engine.connect() as c:
            assert inspect(c).has_table("login_flow")
            indexes = {i["name"] for i in inspect(c).get_indexes("login_flow")}
            assert "ix_login_flow_expires_at" in indexes
            ctx = MigrationContext.configure(
                c, opts={"compare_type": True, "compare_server_default": True}
            )
            with warnings.catch_warnings():  # SQLite cannot reflect the expression index
                warnings.simplefilter("ignore")
                assert compare_metadata(ctx, Base.metadata) == []
        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.attributes["connection_engine"] = db.engine
        command.stamp(cfg, "0006")
        db.upgrade()  # the table is there already: 0007 is a no-op, not an error
        command.downgrade(cfg, "0006")
        with db.engine.connect() as c:
            assert not inspect(c).has_table("login_flow")
            assert c.execute(text("SELECT login FROM users")).scalars().all() == ["alice"]
        db.upgrade()
    finally:
        db.dispose()
