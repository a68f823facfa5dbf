"""Nextcloud Login Flow v2 state, and the device app passwords the Nextcloud logins hand out.

A flow (``start``) has two random tokens: the *poll token*, known only to the client that
started it, and the *login token*, in the URL of the page where the user logs in. Only their
SHA-256 digests are stored (table ``login_flow``): whoever reads the database can neither poll
nor approve a flow. ``approve`` (once the page has verified the user's credentials) records the
account; the first ``poll`` after that deletes the row and only then creates the device, so an
app password is never stored anywhere, and a second poll finds nothing. A flow lives ``ttl``
seconds (Nextcloud's 20 minutes); expired rows are deleted, with one indexed statement, when a
flow starts or is picked up. All state is in SQL, so the start, the page and the polls may
reach different server processes.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from davdrive import errors
from davdrive.metadata.schema import LoginFlow, User
from davdrive.service.auth import DEVICE_NAME_MAX, Accounts
from davdrive.service.types import Principal

FLOW_TTL = 20 * 60.0  # seconds, as Nextcloud
TOKEN_BYTES = 64  # random bytes per token: 86 URL-safe characters
DEFAULT_CLIENT = "Nextcloud client"
NAME_ROOM = 8  # characters kept free for a " (NNNN)" suffix


@dataclass(frozen=True)
class NewFlow:
    """The tokens of a flow just started (shown once: only their digests are kept)."""

    poll_token: str
    login_token: str


@dataclass(frozen=True)
class Grant:
    """What the client of an approved flow receives: the account and a new app password."""

    login: str
    app_password: str


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def device_name(client: str | None) -> str:
    """A device name from a client's ``User-Agent``: control characters and runs of white
    space become one space, cut to leave room for a " (2)" suffix; ``DEFAULT_CLIENT`` if
    nothing is left."""
    text = "".join(" " if ord(c) < 32 or 127 <= ord(c) < 160 else c for c in client or "")
    name = " ".join(text.split())[: DEVICE_NAME_MAX - NAME_ROOM].strip()
    return name or DEFAULT_CLIENT


class LoginFlows:
    """Login Flow v2 (``start``, ``client_of``, ``approve``, ``poll``) and ``app_password``."""

    def __init__(
        self,
        accounts: Accounts,
        *,
        ttl: float = FLOW_TTL,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.accounts = accounts
        self.db = accounts.db
        self.ttl = ttl
        self.clock = clock  # wall-clock seconds: shared by every process through the rows

    def start(self, client: str | None) -> NewFlow:
        """A new pending flow for the client named by its ``User-Agent``."""
        now = self.clock()
        flow = NewFlow(secrets.token_urlsafe(TOKEN_BYTES), secrets.token_urlsafe(TOKEN_BYTES))
        with self.db.write() as s:
            self._purge(s, now)
            s.execute(
                insert(LoginFlow).values(
                    poll_hash=_digest(flow.poll_token),
                    login_hash=_digest(flow.login_token),
                    client_name=device_name(client),
                    created_at=now,
                    expires_at=now + self.ttl,
                )
            )
        return flow

    def client_of(self, login_token: str) -> str:
        """The client name of the pending flow with this login token; ``NotFound`` if there is
        none (unknown, expired or already approved)."""
        with self.db.read_conn(snapshot=False) as conn:
            name = conn.execute(
                select(LoginFlow.client_name).where(
                    LoginFlow.login_hash == _digest(login_token or ""),
                    LoginFlow.user_id.is_(None),
                    LoginFlow.expires_at > self.clock(),
                )
            ).scalar()
        if name is None:
            raise errors.NotFound("this login flow does not exist or has expired")
        return name

    def approve(self, login_token: str, p: Principal) -> None:
        """Grant the pending flow to ``p``'s account (whose credentials the caller verified);
        ``NotFound`` as ``client_of``. Each flow is approved at most once."""
        if p.link is not None:
            raise errors.PermissionDenied("a share link cannot log in a client")
        with self.db.write() as s:
            done = s.execute(
                update(LoginFlow)
                .where(
                    LoginFlow.login_hash == _digest(login_token or ""),
                    LoginFlow.user_id.is_(None),
                    LoginFlow.expires_at > self.clock(),
                )
                .values(user_id=p.user_id)
            ).rowcount
        if not done:
            raise errors.NotFound("this login flow does not exist or has expired")

    def poll(self, poll_token: str) -> Grant:
        """The grant of an approved flow, exactly once: the flow is deleted and a device
        created. ``NotFound`` while pending, and for an unknown, expired or used token."""
        now = self.clock()
        digest = _digest(poll_token or "")
        with self.db.read_conn(snapshot=False) as conn:  # the frequent case: still pending
            ready = conn.execute(
                select(LoginFlow.user_id).where(
                    LoginFlow.poll_hash == digest,
                    LoginFlow.user_id.is_not(None),
                    LoginFlow.expires_at > now,
                )
            ).first()
        if ready is None:
            raise errors.NotFound("no approved login flow for this token")
        with self.db.write() as s:
            taken = s.execute(  # one statement: of two concurrent polls only one gets the row
                delete(LoginFlow)
                .where(
                    LoginFlow.poll_hash == digest,
                    LoginFlow.user_id.is_not(None),
                    LoginFlow.expires_at > now,
                )
                .returning(LoginFlow.user_id, LoginFlow.client_name)
            ).first()
            self._purge(s, now)
            login = (
                None
                if taken is None
                else s.scalar(select(User.login).where(User.id == taken.user_id))
            )
        if taken is None or login is None:
            raise errors.NotFound("no approved login flow for this token")
        p = Principal(taken.user_id, login)
        return Grant(login, self.app_password(p, taken.client_name))

    def app_password(self, p: Principal, client: str | None) -> str:
        """A new device of ``p``'s account named after ``client`` (a ``User-Agent``), made
        unique with " (2)", " (3)", ...; its app password (shown only this once)."""
        return self.accounts.with_free_name(
            p, device_name(client), lambda name: self.accounts.add_device(p, name)[1]
        )

    def _purge(self, s: Session, now: float) -> None:
        s.execute(delete(LoginFlow).where(LoginFlow.expires_at <= now))


__all__ = ["FLOW_TTL", "Grant", "LoginFlows", "NewFlow", "device_name"]
