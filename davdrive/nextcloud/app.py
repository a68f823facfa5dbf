"""The Flask app of the Nextcloud/ownCloud facade (``make_nextcloud_app``).

The dispatcher sends ``/status.php``, ``/ocs/...`` and ``/index.php/...`` here. Routes:

- ``GET /status.php`` (public): ``status.status_document()`` as JSON;
- ``GET /index.php/204`` (public, with or without the trailing slash): 204, empty (the
  clients' captive-portal check);
- ``GET /ocs/v{1,2}.php/cloud/capabilities`` and ``.../cloud/user``: authenticated as every door
  (Basic with the account password or a device app password, or ``Bearer`` with a device
  token); JSON with ``?format=json`` (or ``Accept: application/json``), XML otherwise;
- Login Flow v2 and v1 (``/index.php/login/...``), ``core/apppassword`` and
  ``core/getapppassword``: ``davdrive.nextcloud.login_flow``.

Failures on ``/ocs/`` are OCS envelopes in the requested format: 401 (statuscode 997) with
``WWW-Authenticate``, 429 with ``Retry-After``, 404 (998) for a path the facade does not know.
Doubled slashes in the path are tolerated (a server URL entered with a trailing slash).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from flask import Flask, Response, request

from davdrive import errors
from davdrive.nextcloud import login_flow, ocs, share_api
from davdrive.nextcloud.status import status_document
from davdrive.service.auth import principal_from_header
from davdrive.service.types import Principal

if TYPE_CHECKING:
    from davdrive.app import App

log = logging.getLogger(__name__)

REALM = 'Basic realm="davdrive", charset="UTF-8"'
_OCS_VERSION = re.compile(r"^/ocs/v([12])\.php(?:/|$)")
_SLASHES = re.compile(r"/{2,}")
# (error class, HTTP status); the first match wins
STATUS: list[tuple[type[errors.DriveError], int]] = [
    (errors.NotAuthenticated, 401),
    (errors.TooManyRequests, 429),
    (errors.PermissionDenied, 403),
    (errors.NotFound, 404),
    (errors.BadRequest, 400),
]


def _status_of(exc: errors.DriveError) -> int:
    for cls, status in STATUS:
        if isinstance(exc, cls):
            return status
    return 500


def ocs_version(path: str) -> int:
    """2 for ``/ocs/v2.php/...``, else 1."""
    m = _OCS_VERSION.match(path)
    return 2 if m and m.group(1) == "2" else 1


class _SqueezeSlashes:
    """WSGI middleware: ``//ocs//v1.php`` is ``/ocs/v1.php`` (``/`` is ASCII, so the WSGI-native
    ``PATH_INFO`` can be edited as it is)."""

    def __init__(self, inner: Callable[..., Iterable[bytes]]) -> None:
        self.inner = inner

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or "/"
        if "//" in path:
            environ["PATH_INFO"] = _SLASHES.sub("/", path)
        return self.inner(environ, start_response)


def make_nextcloud_app(app: App, *, checksum_types: Iterable[str] = ()) -> Flask:
    """The facade over ``app`` (a ``davdrive.app.App``). ``checksum_types``: the content
    checksum types the WebDAV door verifies (``OC-Checksum``), advertised in the capabilities."""
    capabilities = ocs.capabilities(checksum_types)
    status_body = ocs.to_json(status_document())
    nc = Flask("davdrive.nextcloud", static_folder=None)
    nc.url_map.strict_slashes = False
    nc.wsgi_app = _SqueezeSlashes(nc.wsgi_app)  # type: ignore[method-assign]

    def ocs_response(
        data: Any,
        http_status: int = 200,
        *,
        message: str = "OK",
        headers: dict[str, str] | None = None,
    ) -> Response:
        version = ocs_version(request.path)
        code = None if http_status == 200 else ocs.error_code(http_status)
        doc = ocs.envelope(version, data, statuscode=code, message=message)
        if ocs.wants_json(request.args.get("format"), request.headers.get("Accept", "")):
            body, mimetype = ocs.to_json(doc), ocs.JSON_TYPE
        else:
            body, mimetype = ocs.to_xml(doc), ocs.XML_TYPE
        resp = Response(body, status=http_status, content_type=mimetype)
        resp.headers["Cache-Control"] = "no-store"
        for name, value in (headers or {}).items():
            resp.headers[name] = value
        return resp

    def error_response(exc: errors.DriveError) -> Response:
        status = _status_of(exc)
        headers: dict[str, str] = {}
        if status == 401:
            headers["WWW-Authenticate"] = REALM
        elif status == 429:
            retry = (exc.details or {}).get("retry_after") or 60
            headers["Retry-After"] = str(max(1, int(float(str(retry)) + 0.999)))
        elif status == 500:
            log.error("OCS %s: %s", request.path, exc)
        message = exc.message if status != 500 else "internal error"
        if request.path.startswith("/ocs/"):
            return ocs_response([], status, message=message, headers=headers)
        resp = Response(message + "\n", status=status, mimetype="text/plain")
        resp.headers.update(headers)
        return resp

    def principal() -> Principal:
        header = request.headers.get("Authorization", "")
        p = principal_from_header(app.accounts, header, client=request.remote_addr)
        request.environ["davdrive.principal"] = p  # the access log's login
        return p

    @nc.errorhandler(errors.DriveError)
    def on_drive_error(exc: errors.DriveError) -> Response:
        return error_response(exc)

    @nc.errorhandler(404)
    def on_404(_exc: Exception) -> Response:
        if request.path.startswith("/ocs/"):
            return ocs_response([], 404, message="Invalid query, the endpoint does not exist")
        return Response("not found\n", status=404, mimetype="text/plain")

    @nc.errorhandler(405)
    def on_405(exc: Exception) -> Response:
        allow = ", ".join(getattr(exc, "valid_methods", None) or ["GET", "HEAD"])
        if request.path.startswith("/ocs/"):
            resp = ocs_response([], 405, message=f"{request.method} is not allowed here")
        else:
            resp = Response("method not allowed\n", status=405, mimetype="text/plain")
        resp.headers["Allow"] = allow
        return resp

    # -- public ------------------------------------------------------------------------------
    @nc.get("/status.php")
    def status() -> Response:
        resp = Response(status_body, content_type=ocs.JSON_TYPE)
        resp.headers["Access-Control-Allow-Origin"] = "*"
        resp.headers["Cache-Control"] = "no-store"
        return resp

    @nc.get("/index.php/204")
    def captive_portal_check() -> Response:
        resp = Response(b"", status=204)
        resp.headers["Cache-Control"] = "no-store"
        return resp

    # -- OCS ---------------------------------------------------------------------------------
    @nc.get("/ocs/v<any('1','2'):v>.php/cloud/capabilities")
    def cloud_capabilities(v: str) -> Response:
        principal()
        return ocs_response(capabilities)

    @nc.get("/ocs/v<any('1','2'):v>.php/cloud/user")
    def cloud_user(v: str) -> Response:
        p = principal()
        return ocs_response(ocs.user(p, app.drive.usage(p)))

    login_flow.register(nc, app, ocs_response=ocs_response, principal=principal)
    share_api.register(nc, app, ocs_response=ocs_response, principal=principal)
    return nc


__all__ = ["make_nextcloud_app", "ocs_version"]
