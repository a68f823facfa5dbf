"""RFC 6578 ``REPORT sync-collection`` for WsgiDAV (which answers 405 to REPORT itself).

A WsgiDAV middleware placed after authentication and before the request resolver: it answers
REPORT requests and passes everything else on. The rules live in ``davdrive.service.sync``;
this module only parses the request and writes the multistatus.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from email.utils import formatdate
from typing import Any
from urllib.parse import quote
from xml.etree.ElementTree import Element, SubElement, tostring

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, fromstring
from wsgidav.mw.base_mw import BaseMiddleware

from davdrive import errors
from davdrive.service.sync import check_token, sync_collection
from providers.auth import PRINCIPAL_KEY

DAV = "{DAV:}"
MAX_BODY = 1 << 20
TOKEN_PREFIX = "davdrive:sync:"


def _status(start_response: Callable, status: str, body: bytes, ctype: str) -> list[bytes]:
    start_response(status, [("Content-Type", ctype), ("Content-Length", str(len(body)))])
    return [body]


def _dav_error(start_response: Callable, status: str, condition: str) -> list[bytes]:
    root = Element(f"{DAV}error")
    SubElement(root, f"{DAV}{condition}")
    body = tostring(root, encoding="utf-8", xml_declaration=True)
    return _status(start_response, status, body, 'application/xml; charset="utf-8"')


def _prop_value(name: str, node: Any) -> str | Element | None:
    if name == f"{DAV}getetag":
        return f'"{node.etag}"'
    if name == f"{DAV}getlastmodified":
        return formatdate(node.mtime, usegmt=True)
    if name == f"{DAV}getcontentlength" and not node.is_dir:
        return str(node.size)
    if name == f"{DAV}displayname":
        return node.name
    if name == f"{DAV}getcontenttype" and not node.is_dir:
        return "application/octet-stream"
    if name == f"{DAV}resourcetype":
        rt = Element(f"{DAV}resourcetype")
        if node.is_dir:
            SubElement(rt, f"{DAV}collection")
        return rt
    return None


class SyncReportMiddleware(BaseMiddleware):
    """Handles ``REPORT`` with a ``sync-collection`` body on ``/dav/<login>/...``."""

    def __init__(self, wsgidav_app: Any, next_app: Callable, config: dict[str, Any]) -> None:
        super().__init__(wsgidav_app, next_app, config)
        self.drive = config["davdrive"]["app"].drive

    def is_disabled(self) -> bool:
        return False

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "REPORT":
            return self.next_app(environ, start_response)
        p = environ.get(PRINCIPAL_KEY)
        if p is None:
            return _status(start_response, "401 Unauthorized", b"", "text/plain")
        parts = [x for x in environ.get("PATH_INFO", "").split("/") if x]
        if not parts or parts[0].lower() != p.login or any(x in (".", "..") for x in parts):
            return _status(start_response, "404 Not Found", b"", "text/plain")
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY:
            return _status(start_response, "413 Payload Too Large", b"", "text/plain")
        try:
            root = fromstring(environ["wsgi.input"].read(length) if length else b"")
        except (ParseError, DefusedXmlException, ValueError):
            return _status(start_response, "400 Bad Request", b"malformed XML\n", "text/plain")
        if root.tag != f"{DAV}sync-collection":
            return _dav_error(start_response, "403 Forbidden", "supported-report")
        token_el = root.find(f"{DAV}sync-token")
        level_el = root.find(f"{DAV}sync-level")
        token = (token_el.text or "").strip() if token_el is not None else ""
        level = (level_el.text or "1").strip() if level_el is not None else "1"
        if level not in ("1", "infinite"):
            return _status(start_response, "400 Bad Request", b"bad sync-level\n", "text/plain")
        prop_el = root.find(f"{DAV}prop")
        names = [c.tag for c in prop_el] if prop_el is not None else [f"{DAV}getetag"]
        collection = "/" + "/".join(parts[1:])
        try:
            cursor = check_token(token) if token else None
            members, new_cursor = sync_collection(
                self.drive, p, collection, cursor, infinite=level == "infinite"
            )
        except errors.CursorExpired:
            return _dav_error(start_response, "403 Forbidden", "valid-sync-token")
        except errors.NotFound:
            return _status(start_response, "404 Not Found", b"", "text/plain")
        except errors.Conflict:
            return _status(start_response, "403 Forbidden", b"not a collection\n", "text/plain")
        except errors.BadRequest:
            return _status(start_response, "400 Bad Request", b"bad path\n", "text/plain")
        base = environ.get("SCRIPT_NAME", "") + "/" + p.login
        ms = Element(f"{DAV}multistatus")
        for m in members:
            resp = SubElement(ms, f"{DAV}response")
            href = base + m.path + ("/" if m.node is not None and m.node.is_dir else "")
            SubElement(resp, f"{DAV}href").text = quote(href)
            if m.node is None:
                SubElement(resp, f"{DAV}status").text = "HTTP/1.1 404 Not Found"
                continue
            found, missing = [], []
            for name in names:
                value = _prop_value(name, m.node)
                (missing if value is None else found).append((name, value))
            for group, status in ((found, "200 OK"), (missing, "404 Not Found")):
                if not group:
                    continue
                ps = SubElement(resp, f"{DAV}propstat")
                prop = SubElement(ps, f"{DAV}prop")
                for name, value in group:
                    if isinstance(value, Element):
                        prop.append(value)
                    else:
                        el = SubElement(prop, name)
                        if value is not None:
                            el.text = value
                SubElement(ps, f"{DAV}status").text = f"HTTP/1.1 {status}"
        SubElement(ms, f"{DAV}sync-token").text = TOKEN_PREFIX + new_cursor
        body = tostring(ms, encoding="utf-8", xml_declaration=True)
        return _status(start_response, "207 Multi-Status", body, 'application/xml; charset="utf-8"')
