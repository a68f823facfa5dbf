"""The server's JSON API as the sync client uses it (``/api/v1``, requests).

Authentication is a device app password (HTTP Basic) or a device token (Bearer). Every call is
retried with exponential backoff on connection errors, 5xx and 429 (honouring ``Retry-After``);
other errors become the small exception tree below, so the engine never looks at status codes.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import requests

from davdrive.protocol import CHUNK_PARAMS

# What must agree for blocks to be cut and named alike (not ``implementation``: a version string)
CHUNKING_KEYS = (
    "algorithm",
    "min_size",
    "avg_size",
    "max_size",
    "normalized_chunking",
    "seed",
    "block_id",
)

log = logging.getLogger(__name__)

RETRY_STATUS = frozenset({429, 500, 502, 503, 504})


class RemoteError(Exception):
    """An answer the client cannot use (``status`` and the server's error ``code``)."""

    def __init__(self, message: str, status: int = 0, code: str = "", details: Any = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.details = details or {}


class AuthError(RemoteError):
    """401/403: the credentials are wrong or revoked."""


class NotFound(RemoteError):
    """404."""


class Conflict(RemoteError):
    """409: stale ``base_rev``, something in the way, or a missing parent folder."""

    @property
    def current_rev(self) -> str | None:
        rev = self.details.get("current_rev")
        return None if rev is None else str(rev)


class PreconditionFailed(RemoteError):
    """412: ``if_rev`` did not match, or the destination of a move exists."""


class CursorExpired(RemoteError):
    """410: the journal no longer reaches back to our cursor (list everything again)."""


@dataclass(frozen=True)
class Node:
    """A file or folder as the server shows it (``path`` is home-relative, ``/a/b``)."""

    id: str
    path: str
    is_dir: bool
    rev: str | None
    size: int
    content_hash: str | None
    mtime: float | None

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Node:
        return cls(
            id=str(d["id"]),
            path=d["path"],
            is_dir=bool(d["is_dir"]),
            rev=None if d.get("rev") is None else str(d["rev"]),
            size=int(d.get("size") or 0),
            content_hash=d.get("content_hash"),
            mtime=_parse_time(d.get("modified")),
        )


def _parse_time(value: str | None) -> float | None:
    if not value:
        return None
    from datetime import datetime

    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


class Remote:
    """One server account, as a device."""

    def __init__(
        self,
        base_url: str,
        user: str,
        *,
        password: str | None = None,
        token: str | None = None,
        retries: int = 6,
        timeout: float = 60.0,
        max_backoff: float = 30.0,
    ) -> None:
        self.base = base_url.rstrip("/") + "/api/v1"
        self.user = user
        self.retries = retries
        self.timeout = timeout
        self.max_backoff = max_backoff
        # set (from a signal handler) when the client is stopping: transfer threads give up
        # instead of retrying, so a stop waits for no backoff
        self.stopped = False
        self.check_batch = 10_000  # hashes per blocks/check call (the server's limit, once read)
        self._checked = False
        self.session = requests.Session()
        self.session.headers["User-Agent"] = "davdrive-sync"
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"
        else:
            self.session.auth = (user, password or "")
        adapter = requests.adapters.HTTPAdapter(pool_connections=8, pool_maxsize=8)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    # -- plumbing -----------------------------------------------------------------------------
    def _request(self, method: str, path: str, **kw: Any) -> requests.Response:
        kw.setdefault("timeout", self.timeout)
        url = self.base + path
        delay = 0.5
        for attempt in range(self.retries + 1):
            if self.stopped:
                raise RemoteError(f"{method} {path}: the client is stopping")
            try:
                resp = self.session.request(method, url, **kw)
            except (requests.ConnectionError, requests.Timeout) as exc:
                if attempt >= self.retries:
                    raise RemoteError(f"{method} {path}: cannot reach the server ({exc})") from exc
                wait = delay
            else:
                if resp.status_code not in RETRY_STATUS or attempt >= self.retries:
                    return self._check(resp, method, path)
                wait = delay
                retry_after = resp.headers.get("Retry-After")
                if retry_after and retry_after.strip().isdigit():
                    wait = float(retry_after)
            wait = min(self.max_backoff, wait) * (1 + random.random() * 0.2)
            log.debug("%s %s: retrying in %.1fs", method, path, wait)
            self._pause(wait)
            delay = min(self.max_backoff, delay * 2)
        raise AssertionError("unreachable")  # pragma: no cover

    def _pause(self, seconds: float) -> None:
        """Sleep, in short slices that end early once ``stopped`` is set (no lock is taken: the
        flag is set from a signal handler)."""
        deadline = time.monotonic() + seconds
        while not self.stopped and (left := deadline - time.monotonic()) > 0:
            time.sleep(min(0.2, left))

    @staticmethod
    def _check(resp: requests.Response, method: str, path: str) -> requests.Response:
        if resp.status_code < 400:
            return resp
        code, message, details = "", resp.reason or "", {}
        try:
            err = resp.json().get("error", {})
            code = err.get("code", "")
            message = err.get("message", message)
            details = err.get("details") or {}
        except ValueError:
            pass
        text = f"{method} {path}: {resp.status_code} {message}"
        cls = {
            401: AuthError,
            403: AuthError,
            404: NotFound,
            409: Conflict,
            410: CursorExpired,
            412: PreconditionFailed,
        }.get(resp.status_code, RemoteError)
        raise cls(text, resp.status_code, code, details)

    def _json(self, method: str, path: str, **kw: Any) -> Any:
        return self._request(method, path, **kw).json()

    # -- account ------------------------------------------------------------------------------
    def account(self) -> dict[str, Any]:
        """``GET /account`` (checks the credentials)."""
        return self._json("GET", "/account")

    def capabilities(self) -> dict[str, Any]:
        return self._json("GET", "/capabilities")

    def check_protocol(self) -> None:
        """Check that the server chunks and names blocks as this client does (else every
        upload would be refused or deduplicate nothing) and take its block API limits; once
        per process. ``RemoteError`` names the difference."""
        if self._checked:
            return
        caps = self.capabilities()
        theirs = caps.get("chunking") or {}
        differ = sorted(k for k in CHUNKING_KEYS if theirs.get(k) != CHUNK_PARAMS.get(k))
        if differ:
            shown = ", ".join(
                f"{k}: server {theirs.get(k)!r}, client {CHUNK_PARAMS[k]!r}" for k in differ
            )
            raise RemoteError(
                f"the server's block protocol differs from this client's ({shown}); "
                "use a davdrive-sync of the server's version"
            )
        limits = caps.get("blocks") or {}
        self.check_batch = int(limits.get("max_check_hashes") or self.check_batch)
        self._checked = True

    # -- tree ---------------------------------------------------------------------------------
    def metadata(self, path: str) -> dict[str, Any] | None:
        """A node with its block list (``blocks: [{id, size}]`` for files), None when absent."""
        try:
            return self._json("GET", "/files/metadata", params={"path": path})
        except NotFound:
            return None

    def list_tree(self, path: str) -> tuple[list[Node], str]:
        """Every node below ``path`` (parents first) and the cursor to replay changes from."""
        nodes: list[Node] = []
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"path": path, "recursive": "true", "limit": 2000}
            if cursor:
                params["cursor"] = cursor
            page = self._json("GET", "/files/list", params=params)
            nodes += [Node.from_json(e) for e in page["entries"]]
            if not page["has_more"]:
                return nodes, str(page["changes_cursor"])
            cursor = page["cursor"]

    def create_folder(self, path: str) -> Node:
        return Node.from_json(self._json("POST", "/files/create_folder", json={"path": path}))

    def delete(self, path: str, if_rev: str | None = None) -> None:
        body: dict[str, Any] = {"path": path}
        if if_rev is not None:
            body["if_rev"] = if_rev
        self._request("POST", "/files/delete", json=body)

    def move(self, src: str, dst: str) -> Node:
        return Node.from_json(self._json("POST", "/files/move", json={"from": src, "to": dst}))

    # -- changes ------------------------------------------------------------------------------
    def latest_cursor(self) -> str:
        return str(self._json("GET", "/changes/latest")["cursor"])

    def changes(self, cursor: str) -> Iterator[tuple[list[dict[str, Any]], str]]:
        """Pages of changes after ``cursor``: (changes, cursor after them). 410 →
        ``CursorExpired``."""
        while True:
            page = self._json("GET", "/changes", params={"cursor": cursor, "limit": 2000})
            cursor = str(page["cursor"])
            yield page["changes"], cursor
            if not page["has_more"]:
                return

    def longpoll(self, cursor: str, timeout: int = 60) -> tuple[bool, float]:
        """Wait until the journal passes ``cursor``: (changed, seconds to back off)."""
        r = self._json(
            "GET",
            "/longpoll",
            params={"cursor": cursor, "timeout": timeout},
            timeout=timeout + 30,
        )
        return bool(r.get("changes")), float(r.get("backoff") or 0)

    # -- blocks -------------------------------------------------------------------------------
    def blocks_missing(self, ids: list[str], batch: int | None = None) -> set[str]:
        batch = batch or self.check_batch
        missing: set[str] = set()
        unique = list(dict.fromkeys(ids))
        for i in range(0, len(unique), batch):
            r = self._json("POST", "/blocks/check", json={"hashes": unique[i : i + batch]})
            missing.update(r["missing"])
        return missing

    def put_block(self, block_id: str, data: bytes) -> None:
        self._request(
            "PUT",
            f"/blocks/{quote(block_id)}",
            data=data,
            headers={"Content-Type": "application/octet-stream"},
        )

    def get_block(self, block_id: str) -> bytes:
        return self._request("GET", f"/blocks/{quote(block_id)}").content

    def commit(
        self,
        path: str,
        blocks: list[str],
        size: int,
        content_hash: str,
        mtime: float | None,
        base_rev: str | None,
    ) -> Node:
        body = {
            "path": path,
            "blocks": blocks,
            "size": size,
            "content_hash": content_hash,
            "mtime": mtime,
            "base_rev": base_rev,
        }
        return Node.from_json(self._json("POST", "/files/commit", json=body))
