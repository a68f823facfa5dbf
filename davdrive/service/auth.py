"""Accounts: users, passwords, devices, and authentication with a verification cache.

Passwords are hashed with argon2id (argon2-cffi, memory-hard). Device app passwords and tokens
are random secrets of >= 190 bits generated here, so they are stored as SHA-256 digests: a
preimage search is infeasible for such secrets, and a digest lets ``authenticate`` find the
device with one indexed comparison instead of one argon2 run per device.

Logins have one canonical form, lowercase: ``validate_login`` returns it, accounts are stored
under it, and every lookup lowercases what it is given.

Two per-process structures sit in front of the database (a second server process keeps its
own):

- a cache of successful verifications keyed by ``sha256(login NUL password)``, TTL
  ``CACHE_TTL`` seconds. A hit costs one indexed read instead of one argon2 run: the account row
  must still exist with the same id and credentials generation (``users.cred_gen``, bumped by
  ``set_password``) and, for a device app password, the device row must still exist. So a
  password change, an account deletion or a device revocation made by any process (the CLI is
  one) stops the old secret on the very next request everywhere; ids are never reused, so a
  re-created account never matches an entry of the deleted one;
- a failure counter per ``(login, client)``: more than ``MAX_FAILURES`` failures within
  ``FAILURE_WINDOW`` seconds raise ``TooManyRequests`` until the window has passed;
- a failure counter per account, across all client addresses, so that many addresses cannot
  share out guesses at one password. After ``ACCOUNT_FREE_FAILURES`` failures the account
  password is verified for addresses it does not know only once per backoff, which starts at
  ``ACCOUNT_BACKOFF`` seconds and doubles with each further failure up to
  ``ACCOUNT_BACKOFF_MAX`` (meanwhile ``TooManyRequests`` with the time left; one verification
  at a time once the free failures are used up, so parallel requests cannot guess in bulk).
  ``ACCOUNT_FORGET`` seconds without a failure forget the count. The backoff cannot lock the
  real user out: a device app password still works (it is a random 190-bit secret found by
  digest, not guessable, so it is looked up without argon2 and without the backoff), bearer
  tokens are not rate limited, and an address that logged in to the account within
  ``KNOWN_CLIENT_TTL`` (and has not failed ``ACCOUNT_FREE_FAILURES`` times for it since) is
  not held back by other addresses' failures; it keeps the per-address limit.

Both counters live in the process: N server processes behind a load balancer allow up to N
times the guesses (sharing them through the database would need a table, hence a schema change).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
import re
import secrets
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.exc import IntegrityError as SQLIntegrityError

from davdrive import errors
from davdrive.metadata.fast_reads import prepared
from davdrive.metadata.schema import Device, User
from davdrive.service.drive import Drive
from davdrive.service.types import Principal

LOGIN_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")
DEVICE_NAME_MAX = 128
MAX_NAME_SUFFIX = 1000  # "laptop (2)" ... "laptop (1000)"
T = TypeVar("T")
CACHE_TTL = 60.0
INFLIGHT_WAIT = 10.0  # seconds a login waits for an identical one being verified
MAX_FAILURES = 10  # per (login, client address) within FAILURE_WINDOW
FAILURE_WINDOW = 60.0
ACCOUNT_FREE_FAILURES = 10  # per account, all addresses, before the backoff starts
ACCOUNT_BACKOFF = 2.0  # seconds; doubles with every further failure
ACCOUNT_BACKOFF_MAX = 900.0  # at most four guesses an hour from unknown addresses
ACCOUNT_FORGET = 3600.0  # an hour without a failure forgets an account's count
KNOWN_CLIENT_TTL = 7 * 86400.0  # an address that logged in this recently is not held back
KNOWN_CLIENTS_MAX = 16  # remembered addresses per account (least recently used dropped)
TRACKED_ACCOUNTS_MAX = 100_000  # failure records kept before the weakest are dropped
LAST_SEEN_EVERY = 60.0  # write device.last_seen at most once a minute per device
SECRET_PREFIX = "sha256$"
BROWSER = "browser"  # ``device.kind`` of a web app session (``service.sessions``)


@dataclass(frozen=True)
class UserInfo:
    """One row of ``list_users``."""

    id: int
    login: str
    is_admin: bool
    quota: int
    used: int
    created: float


@dataclass(frozen=True)
class DeviceInfo:
    """One device of an account (``list_devices``, ``revoke_device``)."""

    id: int
    login: str
    name: str
    created: float
    last_seen: float | None
    last_cursor: int
    kind: str = "app"  # "app" (app password and token) or "browser" (a web app session)


@dataclass
class _AccountFailures:
    """Failed logins of one account across all client addresses (``Accounts._accounts``)."""

    count: int = 0  # failures since the count was last forgotten
    last: float = 0.0  # monotonic time of the last failure
    until: float = 0.0  # unknown addresses' next verification not before this
    pending: int = 0  # verifications in progress from unknown addresses


def validate_login(login: str) -> str:
    """The canonical (lowercase) form of ``login``; ``BadRequest`` unless it is 1-64 chars of
    ``[A-Za-z0-9._-]`` not starting with '.'."""
    if not isinstance(login, str) or not LOGIN_RE.fullmatch(login) or login.startswith("."):
        raise errors.BadRequest(
            f"invalid login {login!r}: use 1-64 letters, digits, '.', '_' or '-', "
            "not starting with '.'"
        )
    return login.lower()


def validate_device_name(name: str) -> str:
    """``name`` stripped; ``BadRequest`` unless 1-128 characters without control characters."""
    if not isinstance(name, str):
        raise errors.BadRequest("a device name is a string")
    name = name.strip()
    if not name or len(name) > DEVICE_NAME_MAX:
        raise errors.BadRequest(f"a device name is 1-{DEVICE_NAME_MAX} characters")
    if any(ord(c) < 32 or 127 <= ord(c) < 160 for c in name):
        raise errors.BadRequest("a device name must not contain control characters")
    return name


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


_CRED_GEN = prepared(select(User.cred_gen, User.shares_in).where(User.id == bindparam("uid")))
_DEVICE_CRED_GEN = prepared(
    _CRED_GEN.join(Device, (Device.user_id == User.id) & (Device.id == bindparam("did")))
)
_TOKEN_LOGIN = (
    select(Device.id, User.id, User.login, User.is_admin, User.shares_in)
    .join(User, User.id == Device.user_id)
    .where(Device.token_hash == bindparam("digest"), Device.kind != BROWSER)
)


class Accounts:
    """User and device management plus authentication over a ``Drive``."""

    def __init__(
        self,
        drive: Drive,
        *,
        hasher: PasswordHasher | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.drive = drive
        self.clock = clock  # seconds, for the cache and the rate limits (tests pass a fake)
        self.db = drive.db
        # argon2-cffi's defaults are RFC 9106's low-memory profile: argon2id, 64 MiB, t=3, p=4.
        self.hasher = hasher or PasswordHasher()
        self._lock = threading.Lock()
        # sha256(login NUL secret) -> (expiry, principal, the account's cred_gen when verified)
        self._cache: dict[str, tuple[float, Principal, int]] = {}
        # Credentials being verified right now: identical concurrent logins wait for the first
        # (argon2 costs ~64 MiB and tens of ms each; a client opening ten connections, or a
        # thousand long-polls arriving together, would otherwise verify ten or a thousand times).
        self._inflight: dict[str, threading.Event] = {}
        self._failures: dict[tuple[str, str], deque[float]] = {}
        self._accounts: dict[str, _AccountFailures] = {}
        # login -> client address -> [last successful login, failures since] (LRU order)
        self._known: dict[str, OrderedDict[str, list[float]]] = {}
        self._seen: dict[int, float] = {}

    # -- passwords --------------------------------------------------------------------------------
    def hash_password(self, password: str) -> str:
        """An argon2id hash (PHC string) of ``password``."""
        if not password:
            raise errors.BadRequest("the password must not be empty")
        return self.hasher.hash(password)

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self.hasher.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    # -- users ------------------------------------------------------------------------------------
    def add_user(
        self, login: str, password: str, *, quota: int | None = None, admin: bool = False
    ) -> Principal:
        """Create an account under the canonical (lowercase) login (``BadRequest`` for a bad
        login, ``AlreadyExists`` if taken in any spelling)."""
        login = validate_login(login)
        if quota is not None and quota < 0:
            raise errors.BadRequest("the quota must not be negative")
        password_hash = self.hash_password(password)
        with self.db.read() as s:
            taken = s.scalar(select(User.login).where(User.login == login))
        if taken is not None:
            raise errors.AlreadyExists(f"user {taken!r} exists")
        return self.drive.create_account(login, password_hash, quota=quota, is_admin=admin)

    def list_users(self) -> list[UserInfo]:
        """Every account, by login."""
        with self.db.read() as s:
            rows = s.execute(
                select(
                    User.id,
                    User.login,
                    User.is_admin,
                    User.quota_bytes,
                    User.used_bytes,
                    User.created_at,
                ).order_by(User.login)
            ).all()
        return [UserInfo(r[0], r[1], bool(r[2]), r[3], r[4], r[5]) for r in rows]

    def _user_id(self, login: str) -> int:
        return self.drive.principal(login).user_id

    def set_password(self, login: str, password: str) -> None:
        """Replace the account password and bump its credentials generation, so the old one
        stops working on the next request in every process; every browser session ends."""
        password_hash = self.hash_password(password)
        user_id = self._user_id(login)
        with self.db.write() as s:
            s.execute(
                update(User)
                .where(User.id == user_id)
                .values(password_hash=password_hash, cred_gen=User.cred_gen + 1)
            )
            s.execute(delete(Device).where(Device.user_id == user_id, Device.kind == BROWSER))
        self._forget(user_id)

    def set_quota(self, login: str, quota: int) -> None:
        """Set the account quota in bytes."""
        if quota < 0:
            raise errors.BadRequest("the quota must not be negative")
        user_id = self._user_id(login)
        with self.db.write() as s:
            s.execute(update(User).where(User.id == user_id).values(quota_bytes=quota))

    def delete_user(self, login: str) -> None:
        """Delete the account, its devices and metadata (blocks become GC orphans)."""
        user_id = self._user_id(login)
        self.drive.delete_account(user_id)
        self._forget(user_id)

    def forget_device(self, user_id: int, device_id: int) -> None:
        """Drop what this process remembers of a device deleted elsewhere in this process."""
        self._forget(user_id, device_id)
        with self._lock:
            self._seen.pop(device_id, None)

    def _forget(self, user_id: int, device_id: int | None = None) -> None:
        """Drop this process's cached verifications of a user (or of one of its devices)."""
        with self._lock:
            for key in [
                k
                for k, (_, p, _) in self._cache.items()
                if p.user_id == user_id and (device_id is None or p.device_id == device_id)
            ]:
                del self._cache[key]

    # -- devices ----------------------------------------------------------------------------------
    def add_device(self, p: Principal, name: str) -> tuple[int, str, str]:
        """Register a device; return ``(device id, app password, token)``, shown only once.

        ``AlreadyExists`` if the account has a device of that name (compared case-insensitively).
        """
        app_password = secrets.token_urlsafe(24)
        token = secrets.token_urlsafe(32)
        return (
            self.insert_device(p, name, token=token, app_password=app_password),
            app_password,
            token,
        )

    def with_free_name(self, p: Principal, base: str, create: Callable[[str], T]) -> T:
        """``create(name)`` with the first free device name of ``base``, ``base (2)``, ...
        (``create`` raises ``AlreadyExists`` when a name was taken meanwhile)."""
        base = base[: DEVICE_NAME_MAX - 8]
        taken = {d.name.lower() for d in self.list_devices(p.login)}
        for n in range(1, MAX_NAME_SUFFIX + 1):
            name = base if n == 1 else f"{base} ({n})"
            if name.lower() in taken:
                continue
            try:
                return create(name)
            except errors.AlreadyExists:  # added meanwhile by another request
                taken.add(name.lower())
        raise errors.Conflict(f"{p.login} has too many devices named {base!r}")

    def insert_device(
        self,
        p: Principal,
        name: str,
        *,
        token: str,
        app_password: str | None = None,
        kind: str = "app",
        last_seen: float | None = None,
    ) -> int:
        """Store a device with these secrets (their digests); its id. ``AlreadyExists`` if the
        account has a device of that name (compared case-insensitively)."""
        name = validate_device_name(name)
        taken = errors.AlreadyExists(f"{p.login} already has a device named {name!r}")
        try:
            with self.db.write() as s:
                if s.scalar(self._device_by_name(p.user_id, name)) is not None:
                    raise taken
                device = Device(
                    user_id=p.user_id,
                    name=name,
                    app_password_hash=(
                        None if app_password is None else SECRET_PREFIX + _digest(app_password)
                    ),
                    token_hash=_digest(token),
                    last_cursor=0,
                    created_at=time.time(),
                    last_seen=last_seen,
                    kind=kind,
                )
                s.add(device)
                s.flush()
                return device.id
        except SQLIntegrityError:  # a concurrent add of the same name (uq_device_user_name)
            raise taken from None

    @staticmethod
    def _device_by_name(user_id: int, name: str):  # type: ignore[no-untyped-def]
        return select(Device.id).where(
            Device.user_id == user_id, func.lower(Device.name) == name.lower()
        )

    def list_devices(self, login: str | None = None) -> list[DeviceInfo]:
        """The devices of one account (``NotFound`` for an unknown login) or of every account,
        by login then name."""
        query = (
            select(
                Device.id,
                User.login,
                Device.name,
                Device.created_at,
                Device.last_seen,
                Device.last_cursor,
                Device.kind,
            )
            .join(User, User.id == Device.user_id)
            .order_by(User.login, func.lower(Device.name), Device.id)
        )
        if login is not None:
            query = query.where(Device.user_id == self._user_id(login))
        with self.db.read() as s:
            rows = s.execute(query).all()
        return [DeviceInfo(*row) for row in rows]

    def revoke_device(self, login: str, device: str | int) -> DeviceInfo:
        """Delete a device of ``login``, named by its name (case-insensitively) or its numeric
        id (tried first; an ``int`` is an id only); its app password and token stop working at
        once, in every process. ``NotFound`` if the account has no such device."""
        user_id = self._user_id(login)
        by_id_only = isinstance(device, int)
        device = str(device).strip()
        columns = (
            Device.id,
            User.login,
            Device.name,
            Device.created_at,
            Device.last_seen,
            Device.last_cursor,
            Device.kind,
        )
        with self.db.write() as s:
            row = None
            base = select(*columns).join(User, User.id == Device.user_id)
            if device.isascii() and device.isdigit() and len(device) <= 18:
                row = s.execute(
                    base.where(Device.user_id == user_id, Device.id == int(device))
                ).first()
            if row is None and not by_id_only and device and "\x00" not in device:
                row = s.execute(
                    base.where(Device.user_id == user_id, func.lower(Device.name) == device.lower())
                ).first()
            if row is None:
                raise errors.NotFound(f"{login.lower()} has no device {device!r}")
            s.execute(delete(Device).where(Device.id == row.id))
        self._forget(user_id, row.id)
        with self._lock:
            self._seen.pop(row.id, None)
        return DeviceInfo(*row)

    # -- authentication ---------------------------------------------------------------------------
    def authenticate(self, login: str, password: str, client: str | None = None) -> Principal:
        """The principal for Basic credentials: the account password or a device app password.

        ``NotAuthenticated`` on failure; ``TooManyRequests`` (``retry_after`` in details) after
        more than ``MAX_FAILURES`` failures for this login and client within the window, or
        while the account's backoff holds back an address it does not know (see the module
        docstring; a device app password passes then).
        """
        now = self.clock()
        login = login.lower() if isinstance(login, str) else ""
        limit_key = (login, client or "")
        self._check_rate(limit_key, now)
        cache_key = _digest(f"{login}\0{password}")
        hit = self._cached(cache_key, now)
        if hit is not None and hit.device_id is None and self._held_back(limit_key, now):
            hit = None  # no answer that tells a right account password from a wrong one
        if hit is None:
            with self._lock:
                leader = self._inflight.get(cache_key)
                if leader is None:
                    self._inflight[cache_key] = threading.Event()
            if leader is not None:  # the same credentials are being verified: wait for it
                leader.wait(INFLIGHT_WAIT)
                hit = self._cached(cache_key, self.clock())
                if hit is not None and hit.device_id is None and self._held_back(limit_key, now):
                    hit = None
            else:
                try:
                    hit = self._verify_and_cache(cache_key, login, password, limit_key, now)
                finally:
                    with self._lock:
                        self._inflight.pop(cache_key).set()
        if hit is None:  # the verification we waited for failed (or took too long): our own
            hit = self._verify_and_cache(cache_key, login, password, limit_key, now)
        self._succeeded(limit_key, now)
        if hit.device_id is not None:
            self._touch(hit.device_id)
        return hit

    def _cached(self, cache_key: str, now: float) -> Principal | None:
        """A cached verification that is still valid: not expired, and the account (same id,
        same credentials generation) and the device still exist (one indexed read)."""
        with self._lock:
            hit = self._cache.get(cache_key)
        if hit is None or hit[0] <= now:
            return None
        _expiry, principal, cred_gen = hit
        params = {"uid": principal.user_id, "did": principal.device_id}
        query = _CRED_GEN if principal.device_id is None else _DEVICE_CRED_GEN
        with self.db.read_conn(snapshot=False) as conn:
            current = conn.execute(query, params).first()
        if current is not None and current.cred_gen == cred_gen:
            mounts = current.shares_in > 0  # read here, so the access rule need not look
            return (
                principal
                if principal.has_mounts == mounts
                else replace(principal, has_mounts=mounts)
            )
        with self._lock:
            if self._cache.get(cache_key) is hit:
                del self._cache[cache_key]
        return None

    def _verify_and_cache(
        self, cache_key: str, login: str, password: str, limit_key: tuple[str, str], now: float
    ) -> Principal:
        wait, entered = self._enter(limit_key, now)
        if wait is not None:  # held back: only a device app password (no argon2) may pass
            device = self._device_login(login, password)
            if device is None:
                raise errors.TooManyRequests(
                    "too many failed logins for this account; try again later or use a "
                    "device app password",
                    retry_after=wait,
                )
            return device
        verified = None
        try:
            verified = self._verify_credentials(login, password)
            if verified is None:
                self._fail(limit_key, now)  # counted before another verification may enter
        finally:
            if entered:
                self._leave(limit_key)
        if verified is None:
            raise errors.NotAuthenticated("wrong login or password")
        principal, cred_gen = verified
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
            self._cache[cache_key] = (now + CACHE_TTL, principal, cred_gen)
            self._failures.pop(limit_key, None)
        return principal

    def _verify_credentials(self, login: str, password: str) -> tuple[Principal, int] | None:
        """The principal and the account's credentials generation read with the hash."""
        if not password or not LOGIN_RE.fullmatch(login or ""):
            return None
        with self.db.read() as s:
            user = s.execute(
                select(
                    User.id,
                    User.login,
                    User.password_hash,
                    User.is_admin,
                    User.cred_gen,
                    User.shares_in,
                ).where(User.login == login.lower())
            ).first()
            if user is None:
                # Spend the same time as a real check so logins cannot be enumerated by timing.
                self._verify(_DUMMY_HASH.get(self.hasher), password)
                return None
            device_id = s.scalar(
                select(Device.id).where(
                    Device.user_id == user.id,
                    Device.app_password_hash == SECRET_PREFIX + _digest(password),
                )
            )
        mounts = user.shares_in > 0
        if device_id is not None:
            p = Principal(user.id, user.login, device_id, bool(user.is_admin), has_mounts=mounts)
            return p, user.cred_gen
        if not self._verify(user.password_hash, password):
            return None
        self._maybe_rehash(user.id, user.password_hash, password)
        return Principal(user.id, user.login, None, bool(user.is_admin), has_mounts=mounts), (
            user.cred_gen
        )

    def _maybe_rehash(self, user_id: int, password_hash: str, password: str) -> None:
        try:
            stale = self.hasher.check_needs_rehash(password_hash)
        except InvalidHashError:
            stale = True
        if stale:
            new_hash = self.hasher.hash(password)
            with self.db.write() as s:
                s.execute(update(User).where(User.id == user_id).values(password_hash=new_hash))

    def _device_login(self, login: str, password: str) -> Principal | None:
        """The device whose app password ``password`` is, if it belongs to ``login`` (one
        indexed read by digest)."""
        if not password or not LOGIN_RE.fullmatch(login or ""):
            return None
        with self.db.read() as s:
            row = s.execute(
                select(Device.id, User.id, User.login, User.is_admin)
                .join(User, User.id == Device.user_id)
                .where(
                    User.login == login,
                    Device.app_password_hash == SECRET_PREFIX + _digest(password),
                )
            ).first()
        return None if row is None else Principal(row[1], row[2], row[0], bool(row[3]))

    def authenticate_token(self, token: str, client: str | None = None) -> Principal:
        """The principal of a device token (``Authorization: Bearer``); ``NotAuthenticated``.
        Tokens are not rate limited; ``client`` becomes an address the account knows. A browser
        session's token is no bearer token (``service.sessions`` reads it, with its expiry)."""
        if not token:
            raise errors.NotAuthenticated("missing token")
        with self.db.read_conn(snapshot=False) as conn:  # one statement: no ORM, no BEGIN
            row = conn.execute(_TOKEN_LOGIN, {"digest": _digest(token)}).first()
        if row is None:
            raise errors.NotAuthenticated("unknown token")
        self._touch(row[0])
        if client:
            self._succeeded((row[2], client), self.clock())
        return Principal(row[1], row[2], row[0], bool(row[3]), has_mounts=row[4] > 0)

    def _check_rate(self, key: tuple[str, str], now: float) -> None:
        with self._lock:
            times = self._failures.get(key)
            if not times:
                return
            while times and times[0] <= now - FAILURE_WINDOW:
                times.popleft()
            if not times:
                del self._failures[key]
                return
            if len(times) >= MAX_FAILURES:
                retry = max(1, int(times[0] + FAILURE_WINDOW - now) + 1)
                raise errors.TooManyRequests(
                    "too many failed logins; try again later", retry_after=retry
                )

    def _fail(self, key: tuple[str, str], now: float) -> None:
        """Count a failed login against the (login, client) pair and the account."""
        login, client = key
        with self._lock:
            if len(self._failures) > 10_000:
                cutoff = now - FAILURE_WINDOW
                self._failures = {k: v for k, v in self._failures.items() if v and v[-1] > cutoff}
            self._failures.setdefault(key, deque(maxlen=MAX_FAILURES)).append(now)
            if not LOGIN_RE.fullmatch(login):
                return  # cannot be an account
            known = self._known.get(login, {}).get(client)
            if known is not None:
                known[1] += 1
            if len(self._accounts) > TRACKED_ACCOUNTS_MAX:
                self._prune_accounts(now)
            state = self._accounts.setdefault(login, _AccountFailures())
            if now - state.last > ACCOUNT_FORGET:
                state.count, state.until = 0, 0.0
            state.count += 1
            state.last = now
            excess = state.count - ACCOUNT_FREE_FAILURES
            if excess > 0:
                pause = ACCOUNT_BACKOFF * 2 ** min(excess - 1, 32)
                state.until = now + min(pause, ACCOUNT_BACKOFF_MAX)

    # -- the per-account limit (under self._lock) -------------------------------------------------
    def _is_known(self, key: tuple[str, str], now: float) -> bool:
        """Whether the address logged in to the account recently and has not failed
        ``ACCOUNT_FREE_FAILURES`` times for it since."""
        login, client = key
        known = self._known.get(login, {}).get(client)
        return (
            known is not None
            and now - known[0] < KNOWN_CLIENT_TTL
            and known[1] < ACCOUNT_FREE_FAILURES
        )

    def _held_back(self, key: tuple[str, str], now: float) -> bool:
        """Whether the account's backoff currently holds back this address."""
        with self._lock:
            state = self._accounts.get(key[0])
            return state is not None and state.until > now and not self._is_known(key, now)

    def _enter(self, key: tuple[str, str], now: float) -> tuple[int | None, bool]:
        """Before verifying a password: ``(None, entered)`` to go ahead, else ``(seconds to
        wait, False)``. ``entered``: an unknown address's verification is in progress until
        ``_leave``."""
        with self._lock:
            if not LOGIN_RE.fullmatch(key[0]) or self._is_known(key, now):
                return None, False
            state = self._accounts.get(key[0])
            if state is None:
                state = self._accounts[key[0]] = _AccountFailures()
            elif now - state.last > ACCOUNT_FORGET and not state.pending:
                state.count, state.until = 0, 0.0
            if state.until > now:
                return max(1, math.ceil(state.until - now)), False
            if state.pending and state.count + state.pending >= ACCOUNT_FREE_FAILURES:
                return max(1, math.ceil(ACCOUNT_BACKOFF)), False  # one at a time now
            state.pending += 1
            return None, True

    def _leave(self, key: tuple[str, str]) -> None:
        """A verification ``_enter`` let through has finished (its failure already counted)."""
        with self._lock:
            state = self._accounts.get(key[0])
            if state is None:
                return
            state.pending -= 1
            if not state.pending and not state.count:
                del self._accounts[key[0]]

    def _succeeded(self, key: tuple[str, str], now: float) -> None:
        """Remember the address as one the account knows (its failures since: none)."""
        login, client = key
        with self._lock:
            known = self._known.setdefault(login, OrderedDict())
            known[client] = [now, 0]
            known.move_to_end(client)
            while len(known) > KNOWN_CLIENTS_MAX:
                known.popitem(last=False)

    def _prune_accounts(self, now: float) -> None:
        """Drop forgotten records; if still too many, those that never reached the backoff."""
        self._accounts = {
            k: v for k, v in self._accounts.items() if v.pending or now - v.last <= ACCOUNT_FORGET
        }
        if len(self._accounts) > TRACKED_ACCOUNTS_MAX:
            self._accounts = {
                k: v
                for k, v in self._accounts.items()
                if v.pending or v.count >= ACCOUNT_FREE_FAILURES
            }

    def _touch(self, device_id: int) -> None:
        """Record device activity, writing at most once per ``LAST_SEEN_EVERY`` per device."""
        now = time.time()
        with self._lock:
            if now - self._seen.get(device_id, 0.0) < LAST_SEEN_EVERY:
                return
            self._seen[device_id] = now
        with self.db.write() as s:
            s.execute(update(Device).where(Device.id == device_id).values(last_seen=now))


class _DummyHash:
    """A lazily computed hash of a random password, per hasher (for constant-time misses)."""

    def __init__(self) -> None:
        self._hashes: dict[int, str] = {}
        self._lock = threading.Lock()

    def get(self, hasher: PasswordHasher) -> str:
        with self._lock:
            h = self._hashes.get(id(hasher))
            if h is None:
                h = self._hashes[id(hasher)] = hasher.hash(secrets.token_hex(16))
            return h


_DUMMY_HASH = _DummyHash()


__all__ = [
    "Accounts",
    "DeviceInfo",
    "UserInfo",
    "principal_from_header",
    "validate_device_name",
    "validate_login",
]


def principal_from_header(accounts: Accounts, header: str, client: str | None = None) -> Principal:
    """The principal of an ``Authorization`` header: ``Basic`` (account or device app password)
    or ``Bearer`` (device token). ``NotAuthenticated`` when missing or malformed; what
    ``authenticate`` raises otherwise (``TooManyRequests`` after repeated failures)."""
    scheme, _, value = (header or "").partition(" ")
    if scheme.lower() == "basic" and value:
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, ValueError, UnicodeDecodeError):
            raise errors.NotAuthenticated("malformed Basic credentials") from None
        login, _, password = decoded.partition(":")
        return accounts.authenticate(login, password, client=client)
    if scheme.lower() == "bearer" and value:
        return accounts.authenticate_token(value.strip(), client=client)
    raise errors.NotAuthenticated("authentication required")
