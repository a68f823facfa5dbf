"""The outer WSGI dispatcher in front of WsgiDAV and the JSON API (notes/wsgidav.md §4).

Routes on the UTF-8 path (cheroot hands ``PATH_INFO`` over as latin-1, PEP 3333):

- ``/healthz`` → 200 ``ok`` without authentication;
- ``/dav`` and ``/dav/...`` → ``providers.dav_app.make_dav_app(app)``, full path included;
- ``/api/v1/...`` → the app built by ``api_factory`` (a seam; the default mounts
  ``davdrive.api.app.make_api_app`` when it exists, else a JSON 404);
- ``OPTIONS`` on any other path (Windows probes ``/``) → 200 with the DAV headers;
- anything else → 404.

The environ handed to the DAV and API apps keeps the WSGI-native ``PATH_INFO``: WsgiDAV
(``hotfixes.re_encode_path_info``) and Werkzeug decode it themselves, and decoding twice would
break non-ASCII names. The decoded path is in ``environ["davdrive.path"]``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from wsgidav.util import re_encode_wsgi

if TYPE_CHECKING:
    from davdrive.app import App

log = logging.getLogger(__name__)

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
DAV_ALLOW = "OPTIONS, GET, HEAD, PUT, DELETE, PROPFIND, PROPPATCH, MKCOL, COPY, MOVE, LOCK, UNLOCK"


def _default_api_factory(app: App) -> WSGIApp | None:
    try:
        from davdrive.api.app import make_api_app
    except ImportError:
        return None
    return make_api_app(app)


# The seam for the JSON API: a callable ``(App) -> WSGI app`` (or None for a JSON 404).
api_factory: Callable[[App], WSGIApp | None] | None = _default_api_factory


def _dav_factory(app: App) -> WSGIApp | None:
    try:
        from providers.dav_app import make_dav_app
    except ImportError as exc:
        log.warning("WebDAV adapter unavailable (%s): /dav answers 503", exc)
        return None
    return make_dav_app(app)


def _respond(
    start_response: Callable[..., Any],
    status: str,
    body: bytes,
    content_type: str = "text/plain; charset=utf-8",
    extra: list[tuple[str, str]] | None = None,
) -> list[bytes]:
    headers = [("Content-Type", content_type), ("Content-Length", str(len(body)))]
    start_response(status, headers + (extra or []))
    return [body]


def _json_error(
    start_response: Callable[..., Any], status: str, code: str, message: str
) -> list[bytes]:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    return _respond(start_response, status, body, "application/json")


class Dispatcher:
    """The WSGI entry point of ``davdrive serve``; sub-apps are built once, at construction."""

    def __init__(
        self,
        app: App,
        *,
        dav: WSGIApp | None = None,
        api: WSGIApp | None = None,
    ) -> None:
        self.app = app
        self.dav = dav if dav is not None else _dav_factory(app)
        if api is None and api_factory is not None:
            api = api_factory(app)
        self.api = api

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        raw = environ.get("PATH_INFO") or "/"
        try:
            path = re_encode_wsgi(raw)
        except UnicodeDecodeError:
            return _respond(start_response, "400 Bad Request", b"path is not UTF-8\n")
        environ["davdrive.path"] = path
        method = environ.get("REQUEST_METHOD", "GET")

        if path == "/healthz":
            body = b"ok\n" if method != "HEAD" else b""
            start_response(
                "200 OK",
                [
                    ("Content-Type", "text/plain; charset=utf-8"),
                    ("Content-Length", "3"),
                    ("Cache-Control", "no-store"),
                ],
            )
            return [body]
        if path == "/dav" or path.startswith("/dav/"):
            if self.dav is None:
                return _respond(
                    start_response,
                    "503 Service Unavailable",
                    b"WebDAV is not available in this build\n",
                    extra=[("Retry-After", "60")],
                )
            return self.dav(environ, start_response)
        if path == "/api" or path.startswith("/api/"):
            if self.api is None or not path.startswith("/api/v1/"):
                return _json_error(start_response, "404 Not Found", "not_found", f"no {path}")
            return self.api(environ, start_response)
        if method == "OPTIONS":
            return _respond(
                start_response,
                "200 OK",
                b"",
                extra=[("DAV", "1, 2"), ("MS-Author-Via", "DAV"), ("Allow", DAV_ALLOW)],
            )
        return _respond(start_response, "404 Not Found", b"not found\n")


def make_wsgi_app(app: App) -> Dispatcher:
    """The outer WSGI application over a built ``davdrive.app.App``."""
    return Dispatcher(app)


__all__ = ["Dispatcher", "api_factory", "make_wsgi_app"]
