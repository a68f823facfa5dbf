"""WebDAV lock storage in SQL (table ``dav_lock``), shared by every server process.

``LockRepo`` implements the duck-typed storage interface WsgiDAV's ``LockManager`` drives
(``open``, ``close``, ``cleanup``, ``clear``, ``get``, ``create``, ``refresh``, ``delete``,
``get_lock_list``) without importing WsgiDAV: keys are ref-URL strings ("/dav/alice/a.txt"),
lock dicts carry ``root``, ``type``, ``scope``, ``depth``, ``owner`` (XML bytes), ``principal``,
``timeout``, ``expire`` and ``token``. Expired locks are never returned and are purged lazily and
by ``cleanup`` (a periodic job).

A node reached through a share or a link has other URLs than its owner's; a lock is always kept
under the owner's URL of the node (its canonical URL), so it binds every door and every
recipient alike. A request through a share runs inside ``LockRepo.views``, which maps the URLs
WsgiDAV asks about to the canonical ones and the roots it answers back to the caller's view.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from sqlalchemy import bindparam, delete, or_, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from davdrive.errors import Locked
from davdrive.metadata.db import Database
from davdrive.metadata.schema import DavLock

DAV_ROOT = "/dav"  # locks are keyed by the ref-URL of a node under /dav/<login>/
DEFAULT_TIMEOUT = 3600.0  # when the client asks for none
MAX_TIMEOUT = 86400.0  # "Infinite" and anything longer is clamped to one day

LockDict = dict[str, Any]


def normalize_root(path: str) -> str:
    """ "/a/b/" -> "/a/b" (the form WsgiDAV's lock manager uses)."""
    return "/" + str(path).strip("/")


def like_prefix(prefix: str) -> str:
    """A LIKE pattern matching strings that start with ``prefix`` (``\\`` escapes %, _)."""
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


def clamp_timeout(timeout: float | None, cap: float = MAX_TIMEOUT) -> float:
    """Requested seconds (-1 = infinite, None = default) -> the lifetime actually granted."""
    if timeout is None:
        return min(DEFAULT_TIMEOUT, cap)
    timeout = float(timeout)
    if timeout < 0 or timeout > cap:
        return cap
    return timeout


def lock_url(login: str, path: str) -> str:
    """The ref-URL a lock on ``path`` (account-relative, "/a/b") in ``login``'s home is keyed by,
    as WsgiDAV forms it (``quote(share path + path)``)."""
    return normalize_root(quote(f"{DAV_ROOT}/{login}{'' if path == '/' else path}"))


_RULE_COLUMNS = (DavLock.token, DavLock.root, DavLock.depth, DavLock.principal)

_LOCKS_AT = select(*_RULE_COLUMNS).where(
    DavLock.root.in_(bindparam("roots", expanding=True)), DavLock.expire >= bindparam("now")
)

_SNAPSHOT = select(DavLock.__table__).where(
    or_(
        DavLock.root.in_(bindparam("also", expanding=True)),
        DavLock.root == bindparam("root"),
        DavLock.root.like(bindparam("prefix"), escape="\\"),
    ),
    DavLock.expire >= bindparam("now"),
)


def lock_roots(login: str, paths: Iterable[str]) -> list[str]:
    """Every lock root that could protect a write to ``paths`` (their URLs and ancestors):
    no live lock rooted there means ``check_write`` for those nodes has nothing to refuse."""
    roots: set[str] = set()
    for path in paths:
        url = lock_url(login, path)
        roots.add(url)
        roots.update(_ancestors(url))
    return sorted(roots)


def check_write(
    s: Session | Connection,
    login: str,
    tokens: Collection[str],
    *,
    nodes: Iterable[str] = (),
    trees: Iterable[str] = (),
    who: str | None = None,
) -> None:
    """The lock rule every door obeys (RFC 4918 §7): raise ``Locked`` unless the request holds
    a token for every live lock that protects the paths written.

    ``nodes``: account-relative paths whose node (content, properties, or membership for a
    folder) changes — a lock rooted there (any depth) or on an ancestor with depth infinity
    protects it. ``trees``: paths whose whole subtree changes (delete, move) — locks below count
    too. A token counts only for the lock's own principal: ``who``, the writer's login (the
    tree's owner ``login`` when not given).
    """
    who = login if who is None else who
    exact: set[str] = set()
    inherited: set[str] = set()
    prefixes: set[str] = set()
    for path, subtree in [(p, False) for p in nodes] + [(p, True) for p in trees]:
        url = lock_url(login, path)
        exact.add(url)
        inherited.update(_ancestors(url))
        if subtree:
            prefixes.add(url.rstrip("/") + "/")
    if not exact:
        return
    roots = sorted(exact | inherited)
    if prefixes:
        conditions = [DavLock.root.in_(roots)]
        conditions += [DavLock.root.like(like_prefix(p), escape="\\") for p in sorted(prefixes)]
        rows = s.execute(
            select(*_RULE_COLUMNS).where(or_(*conditions), DavLock.expire >= time.time())
        ).all()
    else:  # the common case (a file written): one prepared statement
        rows = s.execute(_LOCKS_AT, {"roots": roots, "now": time.time()}).all()
    for token, root, depth, principal in rows:
        applies = (
            root in exact
            or (root in inherited and depth == "infinity")
            or any(root.startswith(p) for p in prefixes)
        )
        if applies and not (token in tokens and principal == who):
            raise Locked(f"{root} is locked; send its lock token", root=root)


def drop_locks(s: Session, login: str, path: str) -> None:
    """Delete the locks on ``path`` and below it (its node left: moved away or deleted)."""
    url = lock_url(login, path)
    s.execute(
        delete(DavLock).where(
            (DavLock.root == url)
            | DavLock.root.like(like_prefix(url.rstrip("/") + "/"), escape="\\")
        )
    )


def drop_locks_of(s: Session, login: str, path: str, principal: str) -> None:
    """Delete the locks ``principal`` holds on ``path`` of ``login``'s tree and below it (a
    share that ended takes its recipient's locks with it)."""
    url = lock_url(login, path)
    s.execute(
        delete(DavLock).where(
            (DavLock.principal == principal)
            & (
                (DavLock.root == url)
                | DavLock.root.like(like_prefix(url.rstrip("/") + "/"), escape="\\")
            )
        )
    )


@dataclass(frozen=True)
class LockView:
    """One node with two URLs: ``view``, as a request through a share or link names it, and
    ``canonical``, its owner's URL, under which its locks are kept."""

    view: str
    canonical: str


def _moved(url: str, old: str, new: str) -> str | None:
    if url == old:
        return new
    if url.startswith(old + "/"):
        return new + url[len(old) :]
    return None


def _serialize_namespace(s: Session, root: str) -> None:
    """On PostgreSQL, take a transaction-scoped advisory lock for the home (``/dav/<login>``)
    that ``root`` lies in; on SQLite the write transaction is exclusive already."""
    if s.get_bind().dialect.name != "postgresql":
        return
    home = "/".join(root.split("/")[:3])
    key = int.from_bytes(hashlib.blake2b(home.encode(), digest_size=8).digest(), "big", signed=True)
    s.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def _conflicting(s: Session, root: str, scope: str, depth: str) -> str | None:
    """The root of a live lock that a new ``scope``/``depth`` lock on ``root`` conflicts with
    (RFC 4918 §6.1: anything but two shared locks, on the node, an ancestor locked with depth
    infinity, or, for a depth-infinity lock, a descendant), or None."""
    above = _ancestors(root)
    conditions = [DavLock.root == root, DavLock.root.in_(above)]
    if depth == "infinity":
        conditions.append(DavLock.root.like(like_prefix(root.rstrip("/") + "/"), escape="\\"))
    rows = s.execute(
        select(DavLock.root, DavLock.scope, DavLock.depth).where(
            or_(*conditions), DavLock.expire >= time.time()
        )
    ).all()
    for other_root, other_scope, other_depth in rows:
        if scope == "shared" and other_scope == "shared":
            continue
        if other_root in above and other_depth != "infinity":
            continue
        return other_root
    return None


def _ancestors(root: str) -> list[str]:
    """ "/dav/alice" -> ["/", "/dav"]."""
    parts = root.strip("/").split("/")
    return ["/" + "/".join(parts[:i]) for i in range(len(parts))]


def _as_dict(row: Any) -> LockDict:
    return {
        "token": row.token,
        "root": row.root,
        "type": row.type,
        "scope": row.scope,
        "depth": row.depth,
        "owner": bytes(row.owner or b""),
        "principal": row.principal,
        "timeout": row.timeout,
        "expire": row.expire,
    }


class LockRepo:
    """SQL-backed lock storage for WsgiDAV's ``LockManager`` (pass an instance as
    ``lock_storage``). ``max_timeout`` caps every granted lifetime."""

    def __init__(self, db: Database, *, max_timeout: float = MAX_TIMEOUT) -> None:
        self.db = db
        self.max_timeout = max_timeout
        self._local = threading.local()  # the current request's snapshot and views

    # -- request snapshot -----------------------------------------------------------------------
    @contextmanager
    def snapshot(self, namespace: str) -> Iterator[None]:
        """Answer this thread's lock queries under ``namespace`` (one user's home) from one SQL
        read until the block ends or this repo writes a lock.

        WsgiDAV asks for the lock list of a URL and of each of its parents several times per
        request (seven queries for one PUT); a request sees one consistent picture instead.
        Queries outside ``namespace`` still go to SQL.
        """
        root = normalize_root(namespace)
        self._local.scope = (root, _ancestors(root), None)
        try:
            yield
        finally:
            self._local.scope = None

    @contextmanager
    def views(self, views: Sequence[LockView]) -> Iterator[None]:
        """Within the block, this thread's URLs inside one of ``views`` mean their canonical
        URL, and lock roots come back as the view names them."""
        self._local.views = sorted(views, key=lambda v: len(v.view), reverse=True)
        try:
            yield
        finally:
            self._local.views = ()

    def _canonical(self, url: str) -> str:
        for v in getattr(self._local, "views", ()):
            moved = _moved(url, v.view, v.canonical)
            if moved is not None:
                return moved
        return url

    def _shown(self, lock: LockDict) -> LockDict:
        views = getattr(self._local, "views", ())
        for v in sorted(views, key=lambda v: len(v.canonical), reverse=True):
            moved = _moved(lock["root"], v.canonical, v.view)
            if moved is not None:
                return {**lock, "root": moved}
        return lock

    def _scoped_locks(self, root: str, include_children: bool) -> list[LockDict] | None:
        """The snapshot's live locks if it can answer for ``root`` (inside its namespace, or an
        ancestor of it asked about its own locks only), else None."""
        scope = getattr(self._local, "scope", None)
        if scope is None:
            return None
        namespace, ancestors, locks = scope
        inside = root == namespace or root.startswith(namespace + "/")
        if not inside and (include_children or root not in ancestors):
            return None
        if locks is None:
            locks = self._query(namespace, include_root=True, include_children=True, also=ancestors)
            self._local.scope = (namespace, ancestors, locks)
        return locks

    def _invalidate(self) -> None:
        scope = getattr(self._local, "scope", None)
        if scope is not None:
            self._local.scope = (scope[0], scope[1], None)

    def __repr__(self) -> str:
        return "LockRepo(sql)"

    # -- lifecycle ------------------------------------------------------------------------------
    def open(self) -> None:
        """Nothing to open: the table is part of the schema."""

    def close(self) -> None:
        """Nothing to close: sessions are per call."""

    def cleanup(self, now: float | None = None) -> int:
        """Purge expired locks; returns how many were removed."""
        now = time.time() if now is None else now
        self._invalidate()
        with self.db.write() as s:
            result = s.execute(delete(DavLock).where(DavLock.expire < now))
            return int(result.rowcount or 0)

    def clear(self) -> None:
        """Delete every lock."""
        self._invalidate()
        with self.db.write() as s:
            s.execute(delete(DavLock))

    # -- single locks ---------------------------------------------------------------------------
    def get(self, token: str) -> LockDict | None:
        """The lock for ``token``, or None if unknown or expired (an expired one is purged)."""
        with self.db.read() as s:
            row = s.get(DavLock, token)
            lock = _as_dict(row) if row is not None else None
        if lock is None:
            return None
        if lock["expire"] < time.time():
            self.delete(token)
            return None
        return self._shown(lock)

    def create(self, path: str, lock: LockDict) -> LockDict:
        """Store a new lock on ``path``; sets ``root``, clamped ``timeout``, ``expire`` and
        ``token`` in ``lock`` and returns it."""
        if lock.get("token") is not None or lock.get("expire") is not None:
            raise ValueError("a new lock has neither token nor expire")
        root = self._canonical(normalize_root(path))
        timeout = clamp_timeout(lock.get("timeout"), self.max_timeout)
        owner = lock.get("owner") or b""
        if isinstance(owner, str):
            owner = owner.encode("utf-8")
        lock.update(
            root=root,
            timeout=timeout,
            expire=time.time() + timeout,
            token="opaquelocktoken:" + hex(secrets.randbits(256)),
            owner=owner,
        )
        if lock["scope"] not in ("shared", "exclusive") or lock["depth"] not in ("0", "infinity"):
            raise ValueError("invalid lock scope or depth")
        self._invalidate()
        with self.db.write() as s:
            # The database decides conflicts, so two processes never both grant an exclusive
            # lock: writers of one namespace queue here (SQLite: BEGIN IMMEDIATE already).
            _serialize_namespace(s, root)
            clash = _conflicting(s, root, lock["scope"], lock["depth"])
            if clash is not None:
                raise Locked(f"{clash} is already locked", root=clash)
            s.add(
                DavLock(
                    token=lock["token"],
                    root=root,
                    type=lock.get("type", "write"),
                    scope=lock["scope"],
                    depth=lock["depth"],
                    owner=owner,
                    principal=str(lock.get("principal") or ""),
                    timeout=timeout,
                    expire=lock["expire"],
                )
            )
        lock["root"] = self._shown(lock)["root"]
        return lock

    def refresh(self, token: str, *, timeout: float | None) -> LockDict:
        """Give a live lock a new lifetime (clamped); ``ValueError`` for an unknown token."""
        timeout = clamp_timeout(timeout, self.max_timeout)
        self._invalidate()
        with self.db.write() as s:
            row = s.get(DavLock, token)
            if row is None or row.expire < time.time():
                raise ValueError(f"no such lock: {token}")
            row.timeout = timeout
            row.expire = time.time() + timeout
            return self._shown(_as_dict(row))

    def delete(self, token: str) -> bool:
        """Remove a lock; False if it did not exist."""
        self._invalidate()
        with self.db.write() as s:
            result = s.execute(delete(DavLock).where(DavLock.token == token))
            return bool(result.rowcount)

    # -- queries --------------------------------------------------------------------------------
    def get_lock_list(
        self,
        path: str,
        *,
        include_root: bool,
        include_children: bool,
        token_only: bool,
    ) -> list[Any]:
        """Live locks rooted at ``path`` (``include_root``) and/or below it
        (``include_children``, a prefix scan on the indexed ``root`` column)."""
        root = self._canonical(normalize_root(path))
        scoped = self._scoped_locks(root, include_children)
        if scoped is None:
            locks = self._query(root, include_root=include_root, include_children=include_children)
        else:
            now, prefix = time.time(), root.rstrip("/") + "/"
            locks = [
                dict(lock)
                for lock in scoped
                if lock["expire"] >= now
                and (
                    (include_root and lock["root"] == root)
                    or (include_children and lock["root"].startswith(prefix))
                )
            ]
        if token_only:
            return [lock["token"] for lock in locks]
        return [self._shown(lock) for lock in locks]

    def _query(
        self, root: str, *, include_root: bool, include_children: bool, also: Sequence[str] = ()
    ) -> list[LockDict]:
        """Live locks on ``root`` and/or below it, plus those rooted at ``also``."""
        if include_root and include_children and also:  # a snapshot: one prepared statement
            params = {
                "also": list(also),
                "root": root,
                "prefix": like_prefix(root.rstrip("/") + "/"),
                "now": time.time(),
            }
            with self.db.read_conn(snapshot=False) as conn:
                return [_as_dict(r) for r in conn.execute(_SNAPSHOT, params)]
        conditions = [DavLock.root.in_(also)] if also else []
        if include_root:
            conditions.append(DavLock.root == root)
        if include_children:
            prefix = root.rstrip("/") + "/"
            conditions.append(DavLock.root.like(like_prefix(prefix), escape="\\"))
        if not conditions:
            return []
        query = select(DavLock.__table__).where(or_(*conditions), DavLock.expire >= time.time())
        with self.db.read_conn(snapshot=False) as conn:
            return [_as_dict(r) for r in conn.execute(query)]

    def delete_under(self, root: str) -> int:
        """Remove every lock on ``root`` and below it (used after MOVE/DELETE)."""
        root = self._canonical(normalize_root(root))
        self._invalidate()
        with self.db.write() as s:
            result = s.execute(
                delete(DavLock).where(
                    (DavLock.root == root)
                    | DavLock.root.like(like_prefix(root.rstrip("/") + "/"), escape="\\")
                )
            )
            return int(result.rowcount or 0)


__all__ = [
    "LockRepo",
    "LockView",
    "drop_locks_of",
    "check_write",
    "drop_locks",
    "clamp_timeout",
    "like_prefix",
    "lock_url",
    "normalize_root",
]
