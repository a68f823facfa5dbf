"""Share links: a token that reaches one file or folder of its owner, with the rights of its
kind, until revoked, expired or used up.

Kinds (``access.LINK_PERMS``): ``view`` reads; ``edit`` reads and writes; ``upload`` adds and
lists; ``drop`` only adds (its holders see nothing, and a name clash is renamed, never
overwritten). A link may carry a password (argon2, like account passwords; attempts are
limited per link and client), an expiry, a maximum number of uses (a use is one file or archive
downloaded, or one file uploaded, through the link) and a label. A link that is revoked,
expired, used up or whose node is gone answers ``NotFound``, with one message for all: the
holder learns nothing about which.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.engine import Connection

from davdrive.errors import BadRequest, NotFound, PermissionDenied, TooManyRequests
from davdrive.metadata.schema import Link, Node, User
from davdrive.metadata.shares import node_place
from davdrive.service.access import LINK_PERMS
from davdrive.service.core import DriveCore
from davdrive.service.types import LinkGrant, Principal

KINDS = tuple(LINK_PERMS)
FOLDER_KINDS = ("upload", "drop")  # need a folder to add to
TOKEN_BYTES = 24  # 192 bits, URL-safe base64: 32 characters
LABEL_MAX = 255
PASSWORD_MAX = 1024
MAX_USES = 2**31 - 1  # the column is a 32-bit integer
LAST_EXPIRY = 253402300799.0  # 9999-12-31T23:59:59Z: the last time RFC 3339 can show
MAX_ID = 2**63 - 1
PASSWORD_FAILURES = 5  # wrong passwords per link and client within the window ...
PASSWORD_WINDOW = 300.0  # ... seconds, then 429 until the oldest failure leaves the window
PROOF_TTL = 12 * 3600.0  # how long a browser's proof of the password lasts
VERIFIED_TTL = 300.0  # a verified (link, password) pair is trusted this long in a process
GONE = "no such link"  # one answer for missing, revoked, expired and used up

_COLUMNS = (
    Link.id,
    Link.owner_id,
    Link.node_id,
    Link.token,
    Link.kind,
    Link.password_hash,
    Link.expires_at,
    Link.max_uses,
    Link.uses,
    Link.label,
    Link.created_at,
    Link.revoked_at,
)
_BY_TOKEN = select(*_COLUMNS).where(Link.token == bindparam("token"))
_BY_ID = select(*_COLUMNS).where(Link.id == bindparam("lid"))
_USE = (
    update(Link)
    .where(
        Link.id == bindparam("lid"),
        Link.revoked_at.is_(None),
        (Link.max_uses.is_(None)) | (Link.uses < Link.max_uses),
        (Link.expires_at.is_(None)) | (Link.expires_at > bindparam("now")),
    )
    .values(uses=Link.uses + 1)
)


@dataclass(frozen=True)
class LinkInfo:
    """A link as its owner (or an admin) sees it."""

    id: int
    owner: str
    token: str
    kind: str
    node_id: int
    name: str
    is_dir: bool
    path: str  # the node's path in the owner's tree ("" when it is in the trash)
    has_password: bool
    expires: float | None
    max_uses: int | None
    uses: int
    label: str | None
    created: float
    revoked: float | None

    @property
    def active(self) -> bool:
        """Not revoked, not expired, not used up (its node may still be in the trash)."""
        return (
            self.revoked is None
            and (self.expires is None or self.expires > time.time())
            and (self.max_uses is None or self.uses < self.max_uses)
        )


@dataclass(frozen=True)
class OpenLink:
    """A live link as its holder reaches it: the principal to act as, and whether a password
    stands in front of it. ``check`` is what a password must match (``Links.unlock``)."""

    principal: Principal
    kind: str
    is_dir: bool
    name: str
    password_hash: str | None = field(repr=False)

    @property
    def protected(self) -> bool:
        """Whether a password stands in front of the link."""
        return self.password_hash is not None


def new_token() -> str:
    """A random link token: 192 bits, URL-safe."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def _validate(
    kind: Any, expires: Any, max_uses: Any, label: Any, password: Any
) -> tuple[str, float | None, int | None, str | None, str | None]:
    if kind not in KINDS:
        raise BadRequest(f"a link's type is one of {', '.join(KINDS)}")
    if expires is not None:
        if isinstance(expires, bool) or not isinstance(expires, int | float):
            raise BadRequest("expires is a time (seconds since the epoch)")
        if not time.time() < expires <= LAST_EXPIRY:  # also refuses NaN
            raise BadRequest("the expiry must be in the future, before the year 10000")
    if max_uses is not None and (
        isinstance(max_uses, bool) or not isinstance(max_uses, int) or not 1 <= max_uses <= MAX_USES
    ):
        raise BadRequest(f"max_uses is an integer from 1 to {MAX_USES}")
    if label is not None and (not isinstance(label, str) or len(label) > LABEL_MAX):
        raise BadRequest(f"label is text of at most {LABEL_MAX} characters")
    if password is not None and (
        not isinstance(password, str) or not 0 < len(password) <= PASSWORD_MAX
    ):
        raise BadRequest(f"a link password is text of 1-{PASSWORD_MAX} characters")
    return kind, (float(expires) if expires is not None else None), max_uses, label, password


class Links:
    """Creating, listing, changing, revoking and opening share links."""

    def __init__(
        self,
        core: DriveCore,
        *,
        hasher: PasswordHasher | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.core = core
        self.hasher = hasher or PasswordHasher()
        self.clock = clock
        self._lock = threading.Lock()
        self._failures: dict[tuple[int, str], deque[float]] = {}
        # sha256(link id, password) -> (trusted until, the password hash it matched)
        self._verified: dict[str, tuple[float, str]] = {}

    # -- the owner's side ----------------------------------------------------------------------
    def create(
        self,
        p: Principal,
        path: str,
        kind: str,
        *,
        password: str | None = None,
        expires: float | None = None,
        max_uses: int | None = None,
        label: str | None = None,
    ) -> LinkInfo:
        """A new link to the node at ``path`` of ``p``'s own tree. ``BadRequest`` for bad
        settings, the root, or an upload/drop link to a file; ``PermissionDenied`` for a node
        reached through a share (only the owner shares); ``NotFound``."""
        kind, expires, max_uses, label, password = _validate(
            kind, expires, max_uses, label, password
        )
        t = self.core.target(p, path)
        if t.view is not None or p.link is not None:
            raise PermissionDenied("only the owner makes links to an item")
        if t.path == "/":
            raise BadRequest("the root cannot be shared")
        with self.core.db.read() as s:
            node, _ = self.core.at(s, t)
            node_id, is_dir = node.id, node.is_dir
        if kind in FOLDER_KINDS and not is_dir:
            raise BadRequest(f"an {kind} link needs a folder")
        password_hash = self.hasher.hash(password) if password is not None else None
        with self.core.db.write() as s:
            lid = s.execute(
                insert(Link).returning(Link.id),
                {
                    "owner_id": p.user_id,
                    "node_id": node_id,
                    "token": new_token(),
                    "kind": kind,
                    "password_hash": password_hash,
                    "expires_at": expires,
                    "max_uses": max_uses,
                    "uses": 0,
                    "label": label,
                    "created_at": time.time(),
                },
            ).scalar_one()
        return self.get(p, lid)

    _UNSET: Any = object()

    def update(
        self,
        p: Principal,
        link_id: int,
        *,
        password: Any = _UNSET,
        expires: Any = _UNSET,
        max_uses: Any = _UNSET,
        label: Any = _UNSET,
        kind: Any = _UNSET,
    ) -> LinkInfo:
        """Change a link's settings (the owner only); None clears password, expiry, maximum
        uses or label. ``kind`` changes what the link gives (``upload``/``drop``: a folder)."""
        row = self._own_row(p, link_id)
        _validate(
            row.kind if kind is self._UNSET else kind,
            None if expires is self._UNSET else expires,
            None if max_uses is self._UNSET else max_uses,
            None if label is self._UNSET else label,
            None if password is self._UNSET else password,
        )
        values: dict[str, Any] = {}
        if password is not self._UNSET:
            values["password_hash"] = self.hasher.hash(password) if password else None
        if expires is not self._UNSET:
            values["expires_at"] = float(expires) if expires is not None else None
        if max_uses is not self._UNSET:
            values["max_uses"] = max_uses
        if label is not self._UNSET:
            values["label"] = label
        if kind is not self._UNSET and kind != row.kind:
            if kind in FOLDER_KINDS:
                with self.core.db.read_conn() as conn:
                    is_dir = conn.scalar(select(Node.is_dir).where(Node.id == row.node_id))
                if not is_dir:
                    raise BadRequest(f"an {kind} link needs a folder")
            values["kind"] = kind
        if values:
            with self.core.db.write() as s:
                s.execute(update(Link).where(Link.id == link_id).values(**values))
        return self.get(p, link_id)

    def revoke(self, p: Principal | None, link_id: int) -> None:
        """Revoke a link (its owner; ``p`` None: an admin). Takes effect on the next request
        in every process (nothing caches a link)."""
        if p is not None:
            self._own_row(p, link_id)
        elif not 0 < link_id <= MAX_ID:
            raise NotFound(GONE)
        with self.core.db.write() as s:
            done = s.execute(
                update(Link)
                .where(Link.id == link_id, Link.revoked_at.is_(None))
                .values(revoked_at=time.time())
            ).rowcount
            if not done and s.scalar(select(Link.id).where(Link.id == link_id)) is None:
                raise NotFound(GONE)

    def get(self, p: Principal, link_id: int) -> LinkInfo:
        """One of ``p``'s links (``NotFound`` for anyone else's)."""
        self._own_row(p, link_id)
        with self.core.db.read_conn() as conn:
            return self._info(conn, conn.execute(_BY_ID, {"lid": link_id}).one())

    def list(self, p: Principal, path: str | None = None) -> list[LinkInfo]:
        """``p``'s links, oldest first (of one node with ``path``)."""
        node_id = self.core.node_id_at(p, path) if path is not None else None
        with self.core.db.read_conn() as conn:
            query = select(*_COLUMNS).where(Link.owner_id == p.user_id).order_by(Link.id)
            if node_id is not None:
                query = query.where(Link.node_id == node_id)
            return [self._info(conn, r) for r in conn.execute(query)]

    def list_all(self, login: str | None = None) -> list[LinkInfo]:
        """Every link (the admin's audit), or those of ``login``."""
        with self.core.db.read_conn() as conn:
            query = select(*_COLUMNS).order_by(Link.id)
            if login is not None:
                uid = conn.scalar(select(User.id).where(User.login == login.lower()))
                if uid is None:
                    raise NotFound(f"no user {login!r}")
                query = query.where(Link.owner_id == uid)
            return [self._info(conn, r) for r in conn.execute(query)]

    def _own_row(self, p: Principal, link_id: int) -> Any:
        if p.link is not None or not 0 < link_id <= MAX_ID:
            raise NotFound(GONE)
        with self.core.db.read_conn(snapshot=False) as conn:
            row = conn.execute(_BY_ID, {"lid": link_id}).first()
        if row is None or row.owner_id != p.user_id:
            raise NotFound(GONE)
        return row

    def _info(self, conn: Connection, row: Any) -> LinkInfo:
        node = conn.execute(select(Node.name, Node.is_dir).where(Node.id == row.node_id)).one()
        place = node_place(conn, row.node_id)
        return LinkInfo(
            id=row.id,
            owner=self.core.login_of(conn, row.owner_id),
            token=row.token,
            kind=row.kind,
            node_id=row.node_id,
            name=node.name,
            is_dir=bool(node.is_dir),
            path=place.path if place is not None and place.live else "",
            has_password=row.password_hash is not None,
            expires=row.expires_at,
            max_uses=row.max_uses,
            uses=row.uses,
            label=row.label,
            created=row.created_at,
            revoked=row.revoked_at,
        )

    # -- the holder's side ---------------------------------------------------------------------
    def open(self, token: str) -> OpenLink:
        """The live link of ``token`` (one indexed read); ``NotFound`` for a token that is
        unknown, revoked, expired, used up, or whose node is gone or in the trash."""
        if not isinstance(token, str) or not 16 <= len(token) <= 64:
            raise NotFound(GONE)
        with self.core.db.read_conn(snapshot=False) as conn:
            row = conn.execute(_BY_TOKEN, {"token": token}).first()
            if row is None or not hmac.compare_digest(row.token, token):
                raise NotFound(GONE)
            if (
                row.revoked_at is not None
                or (row.expires_at is not None and row.expires_at <= time.time())
                or (row.max_uses is not None and row.uses >= row.max_uses)
            ):
                raise NotFound(GONE)
            place = node_place(conn, row.node_id)
            if place is None or not place.live or place.owner_id != row.owner_id:
                raise NotFound(GONE)
            node = conn.execute(select(Node.name, Node.is_dir).where(Node.id == row.node_id)).one()
        principal = Principal(
            row.owner_id, f"link-{row.id}", link=LinkGrant(row.id, row.node_id, row.kind)
        )
        return OpenLink(
            principal,
            row.kind,
            bool(node.is_dir),
            node.name,
            row.password_hash,
        )

    def unlock(self, link: OpenLink, password: str, client: str | None) -> bool:
        """Whether ``password`` opens ``link`` (always True without a password).
        ``TooManyRequests`` after ``PASSWORD_FAILURES`` wrong passwords from ``client`` for
        this link within ``PASSWORD_WINDOW`` seconds."""
        if link.password_hash is None:
            return True
        assert link.principal.link is not None
        lid = link.principal.link.id
        key = hashlib.sha256(f"{lid}\0{password}".encode()).hexdigest()
        now = self.clock()
        limit_key = (lid, client or "")
        with self._lock:  # before anything that could tell a right password from a wrong one
            failures = self._failures.get(limit_key)
            while failures and failures[0] <= now - PASSWORD_WINDOW:
                failures.popleft()
            if failures is not None and not failures:
                del self._failures[limit_key]
            if failures and len(failures) >= PASSWORD_FAILURES:
                retry = failures[0] + PASSWORD_WINDOW - now
                raise TooManyRequests(
                    "too many wrong passwords for this link; try again later",
                    retry_after=max(1, int(retry) + 1),
                )
            hit = self._verified.get(key)
        if hit is not None and hit[0] > now and hit[1] == link.password_hash:
            return True
        try:
            ok = self.hasher.verify(link.password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            ok = False
        with self._lock:
            if ok:
                if len(self._verified) > 10000:
                    self._verified.clear()
                self._verified[key] = (now + VERIFIED_TTL, link.password_hash)
            else:
                self._failures.setdefault(limit_key, deque()).append(now)
        return ok

    def proof(self, link: OpenLink, *, now: float | None = None) -> str:
        """A value a browser may keep (a cookie) to show it gave the password: it expires after
        ``PROOF_TTL``, stops working when the password changes, and means nothing for any
        other link (an HMAC keyed by the password's hash, which only the server holds)."""
        until = int((time.time() if now is None else now) + PROOF_TTL)
        return f"{until}.{self._mac(link, until)}"

    def check_proof(self, link: OpenLink, value: str) -> bool:
        """Whether ``value`` is a live ``proof(link)`` (constant time)."""
        if link.password_hash is None or not isinstance(value, str):
            return False
        until, _, mac = value.partition(".")
        if not until.isdigit() or int(until) < time.time():
            return False
        return hmac.compare_digest(self._mac(link, int(until)), mac)

    @staticmethod
    def _mac(link: OpenLink, until: int) -> str:
        assert link.principal.link is not None and link.password_hash is not None
        msg = f"davdrive link {link.principal.link.id} until {until}".encode()
        return hmac.new(link.password_hash.encode(), msg, hashlib.sha256).hexdigest()

    def use(self, link: OpenLink) -> None:
        """Count one use (a file or archive downloaded, a file uploaded) atomically;
        ``NotFound`` when the link has none left (or was revoked or expired meanwhile)."""
        assert link.principal.link is not None
        with self.core.db.write() as s:
            done = s.execute(_USE, {"lid": link.principal.link.id, "now": time.time()}).rowcount
        if not done:
            raise NotFound(GONE)


__all__ = ["KINDS", "LinkInfo", "Links", "OpenLink", "new_token"]
