"""The outer WSGI dispatcher in front of WsgiDAV and the JSON API (notes/wsgidav.md §4).

Routes on the UTF-8 path (cheroot hands ``PATH_INFO`` over as latin-1, PEP 3333):

- ``/healthz`` → 200 ``ok`` without authentication;
- ``/metrics`` → the Prometheus text page, as the ``metrics`` setting says: ``off`` (the
  default) 404, ``public`` without authentication, ``admin`` Basic (or a device token) of an
  admin account, else 401 (403 for a non-admin account);
- ``/dav`` and ``/dav/...`` → ``providers.dav_app.make_dav_app(app)``, full path included;
- ``/api/v1/...`` → the app built by ``api_factory`` (a seam; the default mounts
  ``davdrive.api.app.make_api_app`` when it exists, else a JSON 404);
- ``/status.php``, ``/ocs/...``, ``/index.php`` and ``/index.php/...`` → the Nextcloud/ownCloud
  facade, ``davdrive.nextcloud.app.make_nextcloud_app(app)``;
- ``/remote.php/dav/uploads[/...]`` and ``/remote.php/dav/job-status/...`` →
  ``providers.nextcloud_uploads.make_nextcloud_uploads_app`` (chunked upload v2; also
  ``PATCH`` anywhere under ``/remote.php``: Nextcloud's checksum update); other
  ``/remote.php[/...]`` paths → ``providers.nextcloud_dav.make_nextcloud_dav_app(app)`` (the
  clients' WebDAV). All are built once, guarded: missing or failing, they answer 503 and the
  server runs on. Doubled slashes (``/remote.php//webdav``) route as single ones;
- ``/ui`` and ``/ui/...`` (every method but ``OPTIONS``), and ``GET``/``HEAD`` of ``/`` and
  ``/login`` → the web app's files and redirects, ``davdrive.web.ui.make_ui_app(app)``;
- ``OPTIONS`` on any other path (Windows probes ``/``) → 200 with the DAV headers;
- anything else → 404.

The environ handed to the DAV and API apps keeps the WSGI-native ``PATH_INFO``: WsgiDAV
(``hotfixes.re_encode_path_info``) and Werkzeug decode it themselves, and decoding twice would
break non-ASCII names. The decoded path is in ``environ["davdrive.path"]``.

``RequestMetrics`` (the outermost middleware of ``davdrive serve``) counts every request into
``davdrive.metrics``: door, method, status, duration to the last byte, body bytes both ways, and
the long-polls held open.
"""

from __future__ import annotations

import importlib
import json
import logging
import re
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import generate_latest
from wsgidav.util import re_encode_wsgi

from davdrive import errors, metrics
from davdrive.service.auth import principal_from_header
from davdrive.service.uploads import ResumableUploads

if TYPE_CHECKING:
    from davdrive.app import App

log = logging.getLogger(__name__)

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
_SLASHES = re.compile(r"/{2,}")
UPLOADS = "/remote.php/dav/uploads"
JOB_STATUS = "/remote.php/dav/job-status"
DAV_ALLOW = "OPTIONS, GET, HEAD, PUT, DELETE, PROPFIND, PROPPATCH, MKCOL, COPY, MOVE, LOCK, UNLOCK"


def _default_api_factory(app: App) -> WSGIApp | None:
    try:
        from davdrive.api.app import make_api_app
    except ImportError:
        return None
    return make_api_app(app)


# The seam for the JSON API: a callable ``(App) -> WSGI app`` (or None for a JSON 404).
api_factory: Callable[[App], WSGIApp | None] | None = _default_api_factory


def _door(app: App, module: str, factory: str, what: str, **kwargs: Any) -> WSGIApp | None:
    """Build one door's WSGI app with ``module.factory(app, **kwargs)``. A door that cannot be
    built (missing or broken) is logged and answers 503; it never stops the server."""
    try:
        return getattr(importlib.import_module(module), factory)(app, **kwargs)
    except Exception as exc:  # noqa: BLE001 - one broken door must not take the others down
        log.warning("%s unavailable (%s): it answers 503", what, exc)
        return None


def _dav_factory(app: App) -> WSGIApp | None:
    return _door(app, "providers.dav_app", "make_dav_app", "WebDAV (/dav)")


def _link_pages_factory(app: App) -> WSGIApp | None:
    return _door(app, "davdrive.web.link_pages", "make_link_pages", "share link pages (/s/)")


def _ui_factory(app: App) -> WSGIApp | None:
    return _door(app, "davdrive.web.ui", "make_ui_app", "web app (/ui/)")


def is_ui(path: str, method: str) -> bool:
    """Whether the web app answers ``path``: ``/ui[/...]`` (but OPTIONS, the DAV probe), and
    GET or HEAD of ``/`` and ``/login`` (redirects into it)."""
    if path in ("/", "/login"):
        return method in ("GET", "HEAD")
    return (path == "/ui" or path.startswith("/ui/")) and method != "OPTIONS"


def _link_dav_factory(app: App) -> WSGIApp | None:
    return _door(app, "providers.link_provider", "make_link_dav_app", "link WebDAV (/s/*/dav)")


def _verified_checksum_types() -> tuple[str, ...]:
    """The ``OC-Checksum`` types the clients' WebDAV verifies (advertised in the capabilities):
    ``providers.nextcloud_dav.VERIFIED_CHECKSUM_TYPES`` when it says so, else none."""
    try:
        module = importlib.import_module("providers.nextcloud_dav")
    except Exception:  # noqa: BLE001 - reported by _nextcloud_dav_factory
        return ()
    return tuple(str(t) for t in getattr(module, "VERIFIED_CHECKSUM_TYPES", ()))


def _nextcloud_factory(app: App) -> WSGIApp | None:
    return _door(
        app,
        "davdrive.nextcloud.app",
        "make_nextcloud_app",
        "Nextcloud facade (/status.php, /ocs)",
        checksum_types=_verified_checksum_types(),
    )


def _nextcloud_dav_factory(app: App) -> WSGIApp | None:
    return _door(app, "providers.nextcloud_dav", "make_nextcloud_dav_app", "/remote.php WebDAV")


def _nextcloud_uploads_factory(app: App) -> WSGIApp | None:
    return _door(
        app,
        "providers.nextcloud_uploads",
        "make_nextcloud_uploads_app",
        "chunked uploads (/remote.php/dav/uploads)",
    )


def is_nextcloud(path: str) -> bool:
    """Whether ``path`` (doubled slashes squeezed) belongs to the Nextcloud facade."""
    return (
        path == "/status.php"
        or path.startswith("/ocs/")
        or path == "/index.php"
        or path.startswith("/index.php/")
    )


def is_remote_php(path: str) -> bool:
    """Whether ``path`` (doubled slashes squeezed) is the clients' WebDAV."""
    return path == "/remote.php" or path.startswith("/remote.php/")


def is_chunked_upload(path: str) -> bool:
    """Whether ``path`` (doubled slashes squeezed) is the clients' chunked-upload area (or the
    status of an assembly job)."""
    return any(path == root or path.startswith(root + "/") for root in (UPLOADS, JOB_STATUS))


def is_link_dav(path: str) -> bool:
    """Whether ``path`` is the WebDAV of a share link: ``/s/<token>/dav`` or below it."""
    parts = path.split("/", 4)  # "", "s", token, "dav", rest
    return len(parts) >= 4 and parts[1] == "s" and bool(parts[2]) and parts[3] == "dav"


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
        link_pages: WSGIApp | None = None,
        link_dav: WSGIApp | None = None,
        nextcloud: WSGIApp | None = None,
        nextcloud_dav: WSGIApp | None = None,
        nextcloud_uploads: WSGIApp | None = None,
        ui: WSGIApp | None = None,
    ) -> None:
        self.app = app
        self.ui = ui if ui is not None else _ui_factory(app)
        self.dav = dav if dav is not None else _dav_factory(app)
        self.link_pages = link_pages if link_pages is not None else _link_pages_factory(app)
        self.link_dav = link_dav if link_dav is not None else _link_dav_factory(app)
        self.nextcloud = nextcloud if nextcloud is not None else _nextcloud_factory(app)
        self.nextcloud_dav = (
            nextcloud_dav if nextcloud_dav is not None else _nextcloud_dav_factory(app)
        )
        self.nextcloud_uploads = (
            nextcloud_uploads if nextcloud_uploads is not None else _nextcloud_uploads_factory(app)
        )
        if api is None and api_factory is not None:
            api = api_factory(app)
        self.api = api
        self.metrics_mode = getattr(getattr(app, "config", None), "metrics", "off")
        self.metrics_registry = metrics.app_registry(
            metrics.CallbackGauge(
                "davdrive_upload_sessions",
                "Open resumable upload sessions (in the whole database, not per process).",
                lambda: ResumableUploads(app.drive).count_sessions(),
            )
        )

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
        if path == "/metrics":
            return self.serve_metrics(environ, start_response)
        if path == "/dav" or path.startswith("/dav/"):
            if self.dav is None:
                return _respond(
                    start_response,
                    "503 Service Unavailable",
                    b"WebDAV is not available in this build\n",
                    extra=[("Retry-After", "60")],
                )
            return self.dav(environ, start_response)
        if path.startswith("/s/"):
            sub, what = (
                (self.link_dav, b"share link WebDAV")
                if is_link_dav(path)
                else (self.link_pages, b"share link pages")
            )
            if sub is None:
                return _respond(
                    start_response,
                    "503 Service Unavailable",
                    what + b" are not available in this build\n",
                    extra=[("Retry-After", "60")],
                )
            return sub(environ, start_response)
        squeezed = _SLASHES.sub("/", path) if "//" in path else path
        if is_nextcloud(squeezed) or is_remote_php(squeezed):
            dav = is_remote_php(squeezed)
            sub = self.nextcloud_dav if dav else self.nextcloud
            if is_chunked_upload(squeezed) or (dav and method == "PATCH"):
                sub = self.nextcloud_uploads  # WsgiDAV knows no PATCH (checksum updates)
            if sub is None:
                what = b"Nextcloud WebDAV is" if dav else b"the Nextcloud facade is"
                return _respond(
                    start_response,
                    "503 Service Unavailable",
                    what + b" not available in this build\n",
                    extra=[("Retry-After", "60")],
                )
            return sub(environ, start_response)
        if path == "/api" or path.startswith("/api/"):
            if self.api is None or not path.startswith("/api/v1/"):
                return _json_error(start_response, "404 Not Found", "not_found", f"no {path}")
            return self.api(environ, start_response)
        if is_ui(path, method):
            if self.ui is None:
                return _respond(
                    start_response,
                    "503 Service Unavailable",
                    b"the web app is not available in this build\n",
                    extra=[("Retry-After", "60")],
                )
            return self.ui(environ, start_response)
        if method == "OPTIONS":
            return _respond(
                start_response,
                "200 OK",
                b"",
                extra=[("DAV", "1, 2"), ("MS-Author-Via", "DAV"), ("Allow", DAV_ALLOW)],
            )
        return _respond(start_response, "404 Not Found", b"not found\n")

    def serve_metrics(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> list[bytes]:
        """``GET /metrics`` (see the module docstring)."""
        if self.metrics_mode not in ("public", "admin"):
            return _respond(start_response, "404 Not Found", b"not found\n")
        method = environ.get("REQUEST_METHOD", "GET")
        if method not in ("GET", "HEAD"):
            return _respond(
                start_response, "405 Method Not Allowed", b"GET only\n", extra=[("Allow", "GET")]
            )
        if self.metrics_mode == "admin":
            denied = self._metrics_denied(environ, start_response)
            if denied is not None:
                return denied
        body = generate_latest(self.metrics_registry)
        headers = [
            ("Content-Type", metrics.CONTENT_TYPE),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
        ]
        start_response("200 OK", headers)
        return [body if method == "GET" else b""]

    def _metrics_denied(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> list[bytes] | None:
        """None for an admin account; else the 401, 403 or 429 answer."""
        try:
            p = principal_from_header(
                self.app.accounts, environ.get("HTTP_AUTHORIZATION", ""), environ.get("REMOTE_ADDR")
            )
        except errors.TooManyRequests as exc:
            retry = exc.details.get("retry_after") if exc.details else None
            extra = [("Retry-After", str(int(retry)))] if retry else None
            return _respond(start_response, "429 Too Many Requests", b"too many requests\n",
                            extra=extra)  # fmt: skip
        except errors.DriveError:
            return _respond(
                start_response,
                "401 Unauthorized",
                b"authentication required\n",
                extra=[("WWW-Authenticate", 'Basic realm="davdrive", charset="UTF-8"')],
            )
        if not p.is_admin:
            return _respond(start_response, "403 Forbidden", b"admin accounts only\n")
        return None


def door_of(path: str) -> str:
    """The ``door`` label of a request path (``davdrive.metrics``; prefixes are ASCII, so the
    WSGI-native ``PATH_INFO`` does)."""
    if path.startswith("/dav/") or path == "/dav" or path.startswith("/remote.php/"):
        return "dav"
    if path.startswith("/s/") and is_link_dav(path):
        return "dav"
    if path.startswith("/api/"):
        return "notify" if path == "/api/v1/longpoll" else "api"
    if path.startswith(("/ocs/", "/status.php", "/index.php/")):
        return "api"
    if path.startswith(("/ui/", "/s/")) or path == "/ui":
        return "ui"
    return "other"


class RequestMetrics:
    """WSGI middleware counting every request into ``davdrive.metrics`` when its response is
    closed. Per request: one dict lookup of the label children (``metrics.http_series``), a
    counter, a histogram and the body byte counters; no lock of its own."""

    def __init__(self, app: WSGIApp) -> None:
        self.app = app

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        measured = _Measured(environ)

        def recording_start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Callable[[bytes], Any]:
            write = start_response(status, headers, exc_info)
            measured.status = status[:3]  # only a status the server took
            return write

        try:
            measured.result = self.app(environ, recording_start_response)
        except BaseException:
            measured.status = "500"
            measured.close()
            raise
        return measured


class _Measured:
    """The response iterable of ``RequestMetrics``: counts body bytes, records on close."""

    __slots__ = ("closed", "door", "length", "method", "result", "sent", "started", "status")

    def __init__(self, environ: dict[str, Any]) -> None:
        self.started = time.perf_counter()
        self.closed = False
        self.door = door_of(environ.get("PATH_INFO") or "/")
        self.method = metrics.method_label(environ.get("REQUEST_METHOD", "GET"))
        try:
            self.length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            self.length = 0
        self.result: Iterable[bytes] | None = None
        self.status = ""
        self.sent = 0
        if self.door == "notify":
            metrics.LONGPOLLS_PARKED.inc()

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.result or ():
            self.sent += len(chunk)
            yield chunk

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            close = getattr(self.result, "close", None)
            if close is not None:
                close()
        finally:
            if self.door == "notify":
                metrics.LONGPOLLS_PARKED.dec()
            series = metrics.http_series(self.door, self.method, self.status or "000")
            series.record(time.perf_counter() - self.started, self.length, self.sent)


def make_wsgi_app(app: App) -> Dispatcher:
    """The outer WSGI application over a built ``davdrive.app.App``."""
    return Dispatcher(app)


__all__ = [
    "Dispatcher",
    "RequestMetrics",
    "api_factory",
    "door_of",
    "is_link_dav",
    "is_nextcloud",
    "is_remote_php",
    "is_ui",
    "make_wsgi_app",
]
