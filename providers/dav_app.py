"""Build the WsgiDAV application for ``/dav`` over a davdrive ``App``.

The outer dispatcher passes the full ``PATH_INFO`` (``/dav/<login>/...``); WsgiDAV strips the
share itself. Locks live in SQL (``LockRepo``); dead properties live in the drive (no WsgiDAV
property manager); authentication is Basic through ``DriveDomainController`` or a bearer device
token through ``BearerAuthenticator`` (see providers/auth.py).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from wsgidav.wsgidav_app import WsgiDAVApp

from davdrive.service.locks import LockRepo
from providers.fast_lane import FastLane
from providers.provider import DriveProvider

if TYPE_CHECKING:
    from davdrive.app import App

SHARE = "/dav"
BLOCK_SIZE = 1 << 20
# The drive's doors (``/dav``, ``/remote.php``); the fast lane relies on exactly this stack.
DRIVE_STACK = [
    "wsgidav.error_printer.ErrorPrinter",
    "providers.auth.BearerAuthenticator",  # Bearer tokens (HTTPAuthenticator: Basic)
    "wsgidav.http_authenticator.HTTPAuthenticator",
    "providers.sync_report.SyncReportMiddleware",  # RFC 6578 REPORT (WsgiDAV: 405)
    "wsgidav.request_resolver.RequestResolver",
]


def dav_config(app: App, *, verbose: int = 1) -> dict[str, Any]:
    """The WsgiDAV config dict (services ride in the ``davdrive`` key by reference)."""
    return {
        "provider_mapping": {SHARE: DriveProvider(app.drive)},
        "mount_path": "",
        "lock_storage": LockRepo(app.db),
        "property_manager": None,
        "middleware_stack": list(DRIVE_STACK),
        "http_authenticator": {
            "domain_controller": "providers.auth.DriveDomainController",
            "accept_basic": True,
            "accept_digest": False,
            "default_to_digest": False,
            "trusted_auth_header": None,
        },
        "davdrive": {"app": app},
        "hotfixes": {"emulate_win32_lastmod": True, "re_encode_path_info": True},
        "mutable_live_props": ["{DAV:}getlastmodified"],
        "honor_mtime_header": False,  # X-OC-Mtime is applied inside the commit instead
        "add_header_MS_Author_Via": True,
        "block_size": BLOCK_SIZE,
        "suppress_version_info": True,
        "dir_browser": {"enable": False},
        "cors": {"allow_origin": None},
        "verbose": verbose,
        "logging": {"enable": False},
    }


def _malformed_basic(header: str) -> bool:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return True
    return ":" not in decoded


def _without_body(result: Iterable[bytes]) -> list[bytes]:
    """HEAD: run the app (it may start the response lazily), drop any body it produced.

    WsgiDAV's error pages (401 from the authenticator, errors raised before its HEAD handling)
    carry a body even for HEAD, which desynchronises keep-alive clients.
    """
    try:
        for _chunk in result:
            pass
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return [b""]


def make_dav_app(app: App, **kwargs: Any) -> Callable[..., Iterable[bytes]]:
    """The WSGI callable serving ``/dav`` for ``app`` (``.drive``, ``.db``, ``.accounts``).

    Malformed Basic credentials get a 401 here (WsgiDAV would answer 500). The WsgiDAV app is
    reachable as ``.wsgidav`` on the returned callable.
    """
    return wrap_dav(WsgiDAVApp(dav_config(app, **kwargs)))


def wrap_dav(dav: WsgiDAVApp, *, fast: bool = True) -> Callable[..., Iterable[bytes]]:
    """The WSGI callable around a WsgiDAV app: 401 for malformed Basic credentials, no body
    for HEAD (see ``make_dav_app``), and for the drive's doors the fast lane of plain GET, HEAD
    and PUT (``providers.fast_lane``; reachable as ``.fast_lane``, None when off; ``fast=False``
    turns it off, for the tests that compare it with WsgiDAV)."""
    lane = FastLane.for_app(dav, DRIVE_STACK) if fast else None

    def dav_entry(environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        if _malformed_basic(environ.get("HTTP_AUTHORIZATION", "")):
            body = b"Malformed credentials\n"
            start_response(
                "401 Unauthorized",
                [
                    ("WWW-Authenticate", 'Basic realm="davdrive"'),
                    ("Content-Type", "text/plain"),
                    ("Content-Length", str(len(body))),
                ],
            )
            return [b""] if environ.get("REQUEST_METHOD") == "HEAD" else [body]
        if lane is not None:
            answer = lane(environ, start_response)
            if answer is not None:
                return answer
        if environ.get("REQUEST_METHOD") == "HEAD":
            return _without_body(dav(environ, start_response))
        return dav(environ, start_response)

    dav_entry.wsgidav = dav  # type: ignore[attr-defined]
    dav_entry.fast_lane = lane  # type: ignore[attr-defined]
    return dav_entry


__all__ = ["DRIVE_STACK", "dav_config", "make_dav_app", "wrap_dav"]
