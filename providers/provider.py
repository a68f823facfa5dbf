"""DriveProvider: ``/dav/<login>/...`` onto the drive service, one namespace per account.

``/dav/`` lists only the caller's home; another login's home answers 404 for every method, and a
``Destination`` outside the caller's home answers 403. The login segment is matched in its
canonical form (lowercase, like every login), so ``/dav/Alice/`` is alice's home too.
Request-level quirks WsgiDAV leaves open are closed in ``custom_request_handler`` (see
docs/WEBDAV.md).
"""

from __future__ import annotations

import html
import io
import re
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from dataclasses import replace
from typing import Any
from urllib.parse import quote, unquote, urlparse

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, fromstring
from wsgidav.dav_error import (
    HTTP_BAD_REQUEST,
    HTTP_FORBIDDEN,
    HTTP_NOT_FOUND,
    HTTP_PRECONDITION_FAILED,
    HTTP_REQUEST_ENTITY_TOO_LARGE,
    HTTP_UNAUTHORIZED,
    DAVError,
    PRECONDITION_CODE_PropfindFiniteDepth,
)
from wsgidav.dav_provider import DAVProvider

from davdrive.errors import BadRequest
from davdrive.service.access import Perm
from davdrive.service.drive import Drive
from davdrive.service.locks import LockView, lock_url
from davdrive.service.paths import normalize_name
from davdrive.service.timestamps import parse_mtime
from davdrive.service.types import NodeInfo, Principal
from providers.auth import PRINCIPAL_KEY
from providers.fast_put import is_plain_put, plain_put
from providers.oc_props import VIEWS_KEY, written_headers
from providers.propfind import handle_propfind
from providers.resources import (
    CREATED_KEY,
    MTIME_APPLIED_KEY,
    MTIME_KEY,
    NODES_KEY,
    WRITTEN_KEY,
    FileResource,
    FolderResource,
    RootResource,
    dav_errors,
)

MAX_XML_BODY = 1 << 20
XML_METHODS = ("PROPFIND", "PROPPATCH", "LOCK")
IF_MATCH_METHODS = ("PUT", "DELETE", "PROPPATCH", "MOVE", "COPY", "LOCK")


def _is_home(segment: str, p: Principal) -> bool:
    """Whether a URL's first segment names the caller's home (logins are lowercase)."""
    return segment.lower() == p.login


def _hostile(parts: Iterable[str]) -> bool:
    """Dot segments, NUL, backslashes, and "%2F": cheroot leaves an encoded slash encoded, so a
    name containing it cannot be told apart from a path separator; refuse it."""
    return any(p in (".", "..") or "\x00" in p or "\\" in p or "%2f" in p.lower() for p in parts)


class DriveProvider(DAVProvider):
    """One provider for every account; resources are built per request from the drive."""

    def __init__(self, drive: Drive) -> None:
        super().__init__()
        self.drive = drive

    def __repr__(self) -> str:
        return "DriveProvider()"

    # -- identity and paths ---------------------------------------------------------------------
    @staticmethod
    def principal(environ: dict[str, Any]) -> Principal:
        """The caller, carrying the lock tokens of the request's ``If:`` header."""
        p = environ.get(PRINCIPAL_KEY)
        if p is None:
            raise DAVError(HTTP_UNAUTHORIZED)
        tokens = environ.get("wsgidav.ifLockTokenList")
        if tokens and p.lock_tokens != frozenset(tokens):
            p = replace(p, lock_tokens=frozenset(tokens))
            environ[PRINCIPAL_KEY] = p
        return p

    def split(self, path: str, environ: dict[str, Any]) -> list[str]:
        """Share-relative path → components in their stored form (NFC, so both spellings of a
        name reach, and lock, one file); hostile components → 400."""
        parts = [p for p in path.split("/") if p]
        if _hostile(parts):
            raise DAVError(HTTP_BAD_REQUEST, "invalid path")
        return [normalize_name(p) for p in parts]

    def home_len(self, parts: list[str], p: Principal, environ: dict[str, Any]) -> int:
        """How many leading components of a share-relative path name the caller's home
        ("/<login>" here: 1), or 0 when the path is not in it."""
        return 1 if parts and _is_home(parts[0], p) else 0

    def home_url(self, p: Principal, environ: dict[str, Any]) -> str:
        """The URL path of the caller's home as this request names it."""
        return quote(f"{self.mount_path}{self.share_path}/{p.login}")

    def lock_home(self, p: Principal, environ: dict[str, Any]) -> str:
        """Where the caller's own locks are kept (the lock snapshot's namespace)."""
        return self.home_url(p, environ)

    def drive_path(self, share_path: str, environ: dict[str, Any]) -> str:
        """ "/<login>/a/b" → "/a/b" for the caller; another home → 403 (used for Destination)."""
        parts = self.split(share_path, environ)
        n = self.home_len(parts, self.principal(environ), environ)
        if not n:
            raise DAVError(HTTP_FORBIDDEN, "destination outside your home")
        return "/" + "/".join(parts[n:])

    def make_resource(
        self, path: str, dpath: str, node: NodeInfo, environ: dict[str, Any]
    ) -> FileResource | FolderResource:
        if node.is_dir:
            return FolderResource(self, path, dpath, node, environ)
        return FileResource(self, path, dpath, node, environ)

    def get_resource_inst(self, path: str, environ: dict[str, Any]) -> Any:
        parts = self.split(path, environ)
        p = self.principal(environ)
        if not parts:
            return RootResource(self, environ)
        n = self.home_len(parts, p, environ)
        if not n:
            return None  # other homes do not exist for this caller
        share_path = "/" + "/".join(parts)
        dpath = "/" + "/".join(parts[n:])
        cache = environ.setdefault(NODES_KEY, {})
        if share_path in cache:
            node = cache[share_path]
        else:
            with dav_errors():
                node = self.drive.try_stat(p, dpath)
            cache[share_path] = node
        if node is None:
            return None
        return self.make_resource(share_path, dpath, node, environ)

    def _prefetch_pair(
        self, parts: list[str], n: int, p: Principal, environ: dict[str, Any]
    ) -> None:
        """Resolve a path and its folder together into the request's node cache."""
        with dav_errors():
            parent, node = self.drive.stat_pair(p, "/" + "/".join(parts[n:]))
        cache = environ.setdefault(NODES_KEY, {})
        cache["/" + "/".join(parts[:-1])] = parent
        cache["/" + "/".join(parts)] = node

    def exists(self, path: str, environ: dict[str, Any]) -> bool:
        return self.get_resource_inst(path, environ) is not None

    def is_collection(self, path: str, environ: dict[str, Any]) -> bool:
        res = self.get_resource_inst(path, environ)
        return bool(res is not None and res.is_collection)

    # -- request-level rules --------------------------------------------------------------------
    def custom_request_handler(
        self, environ: dict[str, Any], start_response: Callable, default_handler: Callable
    ) -> Any:
        """Checks WsgiDAV does not make, then the default handler with core errors mapped."""
        method = environ["REQUEST_METHOD"]
        p = self.principal(environ)
        environ["wsgidav.user_name"] = p.login  # the lock principal is the canonical login
        parts = self.split(environ["PATH_INFO"], environ)
        n = self.home_len(parts, p, environ)
        if parts and not n and method != "OPTIONS":
            raise DAVError(HTTP_NOT_FOUND)
        below = len(parts) > n  # below the home itself
        dpath = "/" + "/".join(parts[n:])
        if method in XML_METHODS:
            self._buffer_xml_body(environ)
        if method == "PROPFIND":
            depth = environ.get("HTTP_DEPTH", "")
            if depth == "infinity":
                raise DAVError(HTTP_FORBIDDEN, err_condition=PRECONDITION_CODE_PropfindFiniteDepth)
            if not depth:
                environ["HTTP_DEPTH"] = "1"  # like sabre/Nextcloud: no Depth means 1
        elif method == "PROPPATCH" and environ.get("HTTP_DEPTH"):
            environ["HTTP_DEPTH"] = "0"  # PROPPATCH has no depth; some clients send 1
        elif method == "PUT":
            raw = environ.get("HTTP_X_OC_MTIME")
            if raw:
                environ[MTIME_KEY] = parse_oc_mtime(raw)
            if below and is_plain_put(environ):
                return plain_put(self.drive, p, dpath, environ, start_response)
            if below:  # WsgiDAV asks for the target and its folder: one query
                self._prefetch_pair(parts, n, p, environ)
        elif method in ("GET", "HEAD"):
            res = self.get_resource_inst(environ["PATH_INFO"], environ)
            if res is not None and res.is_collection:
                return _folder_page(res, start_response, head=method == "HEAD")
        elif method in ("LOCK", "PROPPATCH") and below:
            # WsgiDAV keeps locks and answers PROPPATCH per property: a read-only share must
            # refuse the request as a whole, before either happens.
            # Locking an item needs the right to change it; locking a new name (RFC 4918
            # §9.10.4: it creates an empty file) the right to add one and to see it.
            with dav_errors():
                rights = self.drive.rights(p, dpath)
            if method == "PROPPATCH" or self.get_resource_inst(environ["PATH_INFO"], environ):
                allowed = bool(rights & Perm.WRITE)
            else:
                allowed = rights & (Perm.CREATE | Perm.READ) == Perm.CREATE | Perm.READ
            if not allowed:
                raise DAVError(HTTP_FORBIDDEN, "read-only: you may not change this item")
        elif method in ("MOVE", "COPY"):
            if not str(environ.get("HTTP_DESTINATION", "")).strip():
                raise DAVError(HTTP_BAD_REQUEST, "MOVE and COPY need a Destination header")
            self._check_destination(environ)
        if environ.get("HTTP_IF") is not None and not valid_if_header(environ["HTTP_IF"]):
            raise DAVError(HTTP_BAD_REQUEST, "malformed If header")
        if (
            method in IF_MATCH_METHODS
            and environ.get("HTTP_IF_MATCH")
            and self.get_resource_inst(environ["PATH_INFO"], environ) is None
        ):
            raise DAVError(HTTP_PRECONDITION_FAILED, "If-Match on a missing resource")

        def respond(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            if environ.get(CREATED_KEY) and status.startswith("204"):
                status = "201 Created"
            if environ.get(MTIME_APPLIED_KEY):
                headers = [*headers, ("X-OC-Mtime", "accepted")]
            written = environ.get(WRITTEN_KEY)
            if written is not None and status[:3] in ("201", "204"):
                headers = [*headers, *written_headers(written)]
            return (
                start_response(status, headers, exc_info)
                if exc_info
                else start_response(status, headers)
            )

        storage = getattr(self.lock_manager, "storage", None)
        home = self.home_url(p, environ)
        kept = self.lock_home(p, environ)
        snapshot = storage.snapshot(kept) if hasattr(storage, "snapshot") else nullcontext()
        views = self._lock_views(p, environ, home) if hasattr(storage, "views") else []
        aliases = storage.views(views) if views else nullcontext()
        with dav_errors(), snapshot, aliases:  # one lock query per request, not one per URL
            if method == "PROPFIND":  # a text-built 207 for the common requests
                return handle_propfind(self, environ, respond, default_handler)
            return default_handler(environ, respond)

    def _lock_views(self, p: Principal, environ: dict[str, Any], home: str) -> list[LockView]:
        """Locks on nodes this caller reaches through a share or a link are kept under their
        owner's URL: the URL pairs for this request (none for an account that has no share)."""
        with dav_errors():
            views = self.drive.lock_views(p)
        environ[VIEWS_KEY] = views  # the oc: properties need them too
        return [
            LockView(home + (quote(path) if path != "/" else ""), lock_url(owner, base))
            for path, owner, base in views
        ]

    def _check_destination(self, environ: dict[str, Any]) -> None:
        """A Destination must stay inside the caller's home (no ``..``, no other login)."""
        raw = unquote(environ["HTTP_DESTINATION"])
        path = urlparse(raw, allow_fragments=False).path
        prefix = self.mount_path + self.share_path
        if "\x00" in path:
            raise DAVError(HTTP_BAD_REQUEST, "invalid destination")
        if not (path == prefix or path.startswith(prefix + "/")):
            raise DAVError(HTTP_FORBIDDEN, "destination outside your home")
        parts = [x for x in path[len(prefix) :].split("/") if x]
        if _hostile(parts):
            raise DAVError(HTTP_BAD_REQUEST, "invalid destination")
        if not parts or not self.home_len(parts, self.principal(environ), environ):
            raise DAVError(HTTP_FORBIDDEN, "destination outside your home")

    @staticmethod
    def _buffer_xml_body(environ: dict[str, Any]) -> None:
        """Read an XML request body (≤ 1 MiB, chunked too), refuse DTDs/entities and malformed
        XML with 400, and hand WsgiDAV a buffered copy with a Content-Length."""
        stream = environ["wsgi.input"]
        raw_len = str(environ.get("CONTENT_LENGTH") or "").strip()
        if raw_len:
            try:
                length = int(raw_len)
            except ValueError:
                raise DAVError(HTTP_BAD_REQUEST, "invalid Content-Length") from None
            if length > MAX_XML_BODY:
                raise DAVError(HTTP_REQUEST_ENTITY_TOO_LARGE, "XML body too large")
            body = _read_upto(stream, length)
        elif "chunked" in str(environ.get("HTTP_TRANSFER_ENCODING", "")).lower():
            body = _read_upto(stream, MAX_XML_BODY + 1)
            if len(body) > MAX_XML_BODY:
                raise DAVError(HTTP_REQUEST_ENTITY_TOO_LARGE, "XML body too large")
        else:
            body = b""
        environ["wsgidav.all_input_read"] = 1
        if body.strip():
            try:
                fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
            except (ParseError, DefusedXmlException, ValueError) as exc:
                raise DAVError(HTTP_BAD_REQUEST, f"malformed XML body: {exc}") from None
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))


_IF_TOKEN = re.compile(r"\s*(?:(<[^<>]*>)|(\[[^\]]*\])|(\()|(\))|(not)\b)", re.IGNORECASE)


def valid_if_header(value: str) -> bool:
    """Whether an ``If`` header follows RFC 4918 §10.4 (a malformed one must not be ignored:
    WsgiDAV would then apply a conditional write unconditionally).

    If = 1*No-tag-list | 1*Tagged-list; Tagged-list = Resource-Tag 1*List;
    List = "(" 1*Condition ")"; Condition = ["Not"] (Coded-URL | "[" entity-tag "]").
    """
    pos, text = 0, value.strip()
    tokens: list[str] = []
    while pos < len(text):
        m = _IF_TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            return False
        tokens.append(m.group(0).strip())
        pos = m.end()
    if not tokens:
        return False
    tagged = tokens[0].startswith("<")
    i, lists = 0, 0
    while i < len(tokens):
        if tagged:
            if not tokens[i].startswith("<"):
                return False
            i += 1
        count = 0
        while i < len(tokens) and tokens[i] == "(":
            i += 1
            conditions = 0
            while i < len(tokens) and tokens[i] != ")":
                if tokens[i].lower() == "not":
                    i += 1
                if i >= len(tokens) or tokens[i][0] not in "<[":
                    return False
                conditions += 1
                i += 1
            if i >= len(tokens) or conditions == 0:
                return False
            i += 1  # ")"
            count += 1
        if count == 0:
            return False
        lists += count
        if not tagged and i < len(tokens):
            return False
    return lists > 0


def _folder_page(res: Any, start_response: Callable, *, head: bool) -> list[bytes]:
    """GET/HEAD on a folder: 200 with a plain HTML list of members (clients probe folders with
    HEAD; the web UI is elsewhere)."""
    with dav_errors():
        names = [
            m.get_display_name() + ("/" if m.is_collection else "") for m in res.get_member_list()
        ]
    items = "".join(f'<li><a href="{quote(n)}">{html.escape(n)}</a></li>' for n in names)
    title = html.escape(res.get_href())
    body = (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title></head>"
        f"<body><h1>{title}</h1><ul>{items}</ul></body></html>"
    ).encode()
    headers = [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(body)))]
    etag = res.get_etag()
    if etag:
        headers.append(("ETag", f'"{etag}"'))
    start_response("200 OK", headers)
    return [b""] if head else [body]


def _read_upto(stream: Any, limit: int) -> bytes:
    out = bytearray()
    while len(out) < limit:
        chunk = stream.read(min(65536, limit - len(out)))
        if not chunk:
            break
        out += chunk
    return bytes(out)


def parse_oc_mtime(raw: str) -> float:
    """X-OC-Mtime through the one timestamp rule (``service.timestamps``); 400 otherwise."""
    try:
        return parse_mtime(raw.strip(), "X-OC-Mtime")
    except BadRequest as exc:
        raise DAVError(HTTP_BAD_REQUEST, exc.message) from None
