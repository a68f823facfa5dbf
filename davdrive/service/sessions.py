"""Browser sessions of the web app: a session is a device of kind ``browser``.

Signing in with the account password (through ``Accounts.authenticate``, so its rate limits
apply) adds a device named after the browser ("Browser – Firefox on Linux", made unique with
" (2)", ...) whose device token becomes the session cookie; only the token's SHA-256 digest is
stored, and the device has no app password. The user sees the session in the device list and
can revoke it there; signing out deletes it. Either way it stops working on the very next
request in every process, as everything is read from the database.

A session unused for ``idle`` seconds stops working: each request compares the device's
``last_seen`` with the clock and rewrites it at most every ``touch_every`` seconds (a tenth of
``idle``, at most a minute), so the expiry is exact to that and holds across processes. An
expired session is deleted when it is next presented, and an account's expired sessions when it
signs in again (``purge_expired`` drops all of them).

The CSRF token is derived, not stored: ``HMAC-SHA256(session token, "davdrive csrf v1")``.
Only who holds the (HttpOnly) cookie's value can compute it, so a page of another site can
neither read nor forge it, and every process derives the same one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import delete, select, update

from davdrive import errors
from davdrive.metadata.schema import Device, User
from davdrive.service.auth import BROWSER, Accounts
from davdrive.service.types import Principal

DEFAULT_IDLE = 8 * 3600.0  # seconds: a working day
TOUCH_EVERY_MAX = 60.0
TOKEN_MAX = 128  # characters of a cookie value worth looking up
_CSRF_LABEL = b"davdrive csrf v1"


@dataclass(frozen=True)
class Session:
    """A valid browser session: who it is, its device and its CSRF token."""

    principal: Principal
    device_id: int
    csrf: str
    idle_timeout: int  # seconds

    @property
    def login(self) -> str:
        return self.principal.login


@dataclass(frozen=True)
class NewSession:
    """A session just created; ``token`` is the cookie's value, shown only this once."""

    token: str
    session: Session


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def csrf_token(token: str) -> str:
    """The CSRF token of the session whose cookie value is ``token``."""
    mac = hmac.new(token.encode("utf-8"), _CSRF_LABEL, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def check_csrf(token: str, value: str | None) -> bool:
    """Whether ``value`` is the CSRF token of the session ``token`` (constant time)."""
    return bool(value) and hmac.compare_digest(csrf_token(token), value or "")


_BROWSERS = [  # (pattern, name): the first match wins (Edge and Opera also say "Chrome")
    (r"\bEdgA?/", "Edge"),
    (r"\bOPR/|\bOpera\b", "Opera"),
    (r"\bSamsungBrowser/", "Samsung Internet"),
    (r"\bVivaldi/", "Vivaldi"),
    (r"\bFirefox/|\bFxiOS/", "Firefox"),
    (r"\bChromium/", "Chromium"),
    (r"\bChrome/|\bCriOS/", "Chrome"),
    (r"\bSafari/", "Safari"),
]
_SYSTEMS = [
    (r"\bAndroid\b", "Android"),
    (r"\biPhone\b|\biPad\b|\biPod\b", "iOS"),
    (r"\bCrOS\b", "ChromeOS"),
    (r"\bWindows\b", "Windows"),
    (r"\bMac OS X\b|\bMacintosh\b", "macOS"),
    (r"\bLinux\b|\bX11\b", "Linux"),
]


def browser_name(user_agent: str | None) -> str:
    """A device name from a ``User-Agent``: "Browser – Firefox on Linux" (or as much as is
    known; "Browser" alone when nothing is)."""
    ua = user_agent or ""
    what = next((name for pattern, name in _BROWSERS if re.search(pattern, ua)), None)
    system = next((name for pattern, name in _SYSTEMS if re.search(pattern, ua)), None)
    summary = " on ".join(part for part in (what, system) if part)
    return f"Browser – {summary}" if summary else "Browser"


class Sessions:
    """Sign in, look up and sign out browser sessions (state only in the database)."""

    def __init__(
        self,
        accounts: Accounts,
        *,
        idle: float = DEFAULT_IDLE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if idle <= 0:
            raise ValueError("the idle timeout must be positive")
        self.accounts = accounts
        self.db = accounts.db
        self.idle = float(idle)
        self.touch_every = min(TOUCH_EVERY_MAX, self.idle / 10)
        self.clock = clock  # wall-clock seconds (stored; tests pass a fake)

    def login(
        self, login: str, password: str, *, client: str | None = None, user_agent: str | None = None
    ) -> NewSession:
        """A new session for the account password of ``login`` (``NotAuthenticated``; a device
        app password is refused too; ``TooManyRequests`` as ``Accounts.authenticate`` says)."""
        p = self.accounts.authenticate(login, password, client=client)
        if p.device_id is not None:
            raise errors.NotAuthenticated("sign in with the account password")
        now = self.clock()
        self.purge_expired(p.user_id)
        token = secrets.token_urlsafe(32)

        def create(name: str) -> NewSession:
            device_id = self.accounts.insert_device(
                p, name, token=token, kind=BROWSER, last_seen=now
            )
            device_p = Principal(p.user_id, p.login, device_id, p.is_admin, has_mounts=p.has_mounts)
            return NewSession(token, self._session(device_p, token))

        return self.accounts.with_free_name(p, browser_name(user_agent), create)

    def resolve(self, token: str) -> Session:
        """The session whose cookie value is ``token``; ``NotAuthenticated`` when there is
        none (signed out, revoked, or idle too long: then it is deleted)."""
        if not token or len(token) > TOKEN_MAX:
            raise errors.NotAuthenticated("no session")
        with self.db.read_conn(snapshot=False) as conn:
            row = conn.execute(
                select(
                    Device.id,
                    Device.last_seen,
                    Device.created_at,
                    User.id.label("user_id"),
                    User.login,
                    User.is_admin,
                    User.shares_in,
                )
                .join(User, User.id == Device.user_id)
                .where(Device.token_hash == digest(token), Device.kind == BROWSER)
            ).first()
        if row is None:
            raise errors.NotAuthenticated("the session has ended; sign in again")
        now = self.clock()
        seen = row.last_seen if row.last_seen is not None else row.created_at
        if now - seen >= self.idle:
            with self.db.write() as s:
                s.execute(delete(Device).where(Device.id == row.id))
            raise errors.NotAuthenticated("the session expired; sign in again")
        if now - seen >= self.touch_every:
            with self.db.write() as s:
                s.execute(update(Device).where(Device.id == row.id).values(last_seen=now))
        p = Principal(
            row.user_id, row.login, row.id, bool(row.is_admin), has_mounts=row.shares_in > 0
        )
        return self._session(p, token)

    def logout(self, token: str) -> bool:
        """End the session ``token`` (whether valid or not); whether there was one."""
        if not token or len(token) > TOKEN_MAX:
            return False
        with self.db.write() as s:
            row = s.execute(
                select(Device.id, Device.user_id).where(
                    Device.token_hash == digest(token), Device.kind == BROWSER
                )
            ).first()
            if row is None:
                return False
            s.execute(delete(Device).where(Device.id == row.id))
        self.accounts.forget_device(row.user_id, row.id)
        return True

    def purge_expired(self, user_id: int | None = None) -> int:
        """Delete the sessions (of one account, or all) idle for longer than ``idle``; how
        many."""
        cutoff = self.clock() - self.idle
        query = delete(Device).where(
            Device.kind == BROWSER,
            ((Device.last_seen.is_not(None)) & (Device.last_seen <= cutoff))
            | ((Device.last_seen.is_(None)) & (Device.created_at <= cutoff)),
        )
        if user_id is not None:
            query = query.where(Device.user_id == user_id)
        with self.db.write() as s:
            return s.execute(query).rowcount or 0

    def _session(self, p: Principal, token: str) -> Session:
        assert p.device_id is not None
        return Session(p, p.device_id, csrf_token(token), round(self.idle))


__all__ = [
    "BROWSER",
    "DEFAULT_IDLE",
    "NewSession",
    "Session",
    "Sessions",
    "browser_name",
    "check_csrf",
    "csrf_token",
]
