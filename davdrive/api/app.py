"""Flask application factory for ``/api/v1``; every route calls the drive service."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from flask import Flask, Response, g, request

from davdrive import errors
from davdrive.api.errors import drive_error_response, error_response
from davdrive.api.session import COOKIE, cookie_principal
from davdrive.service.auth import principal_from_header
from davdrive.service.types import Principal

if TYPE_CHECKING:
    from davdrive.app import App

PREFIX = "/api/v1"
# Public: the session routes read the cookie themselves (davdrive.api.session).
PUBLIC = {f"{PREFIX}/openapi.json", f"{PREFIX}/capabilities", f"{PREFIX}/session"}
PUBLIC_OPTIONS = {f"{PREFIX}/uploads"}  # tus discovery: no credentials needed, none checked


def _principal(services: App) -> Principal | Response:
    """Who asks: ``Authorization`` (Basic or Bearer) when sent, else the web app's session
    cookie (with its CSRF rule), else 401."""
    header = request.headers.get("Authorization", "")
    if not header and COOKIE in request.cookies:
        return cookie_principal()
    return principal_from_header(services.accounts, header, client=request.remote_addr)


def make_api_app(services: App, *, max_longpolls: int | None = None) -> Flask:
    """Build the API over ``services`` (an ``davdrive.app.App``: drive, accounts, config)."""
    from davdrive.api import (
        blocks,
        changes,
        devices,
        files,
        links,
        meta,
        namespace,
        session,
        shares,
        trash,
        uploads,
        zip_download,
    )

    api = Flask("davdrive.api")
    api.config["services"] = services
    api.json.sort_keys = False  # type: ignore[attr-defined]
    slots = getattr(getattr(services, "config", None), "longpoll_slots", 32)
    limit = max_longpolls if max_longpolls is not None else max(1, slots)
    api.config["longpoll_slots"] = threading.BoundedSemaphore(limit)

    @api.before_request
    def authenticate() -> Any:
        if request.path in PUBLIC or (
            request.method == "OPTIONS" and request.path in PUBLIC_OPTIONS
        ):
            return None
        try:
            who = _principal(services)
        except errors.DriveError as exc:
            return drive_error_response(exc)
        if isinstance(who, Response):
            return who
        g.principal = who
        request.environ["davdrive.principal"] = g.principal  # the access log's login
        return None

    @api.after_request
    def no_basic_prompt(resp: Response) -> Response:
        """No Basic challenge for the web app: a browser would pop up its password dialog
        (and then send the cached password everywhere) on a 401 of a session request."""
        web_app = request.path == f"{PREFIX}/session" or (
            COOKIE in request.cookies and not request.headers.get("Authorization")
        )
        if resp.status_code == 401 and web_app:
            resp.headers.pop("WWW-Authenticate", None)
        return resp

    @api.errorhandler(errors.DriveError)
    def on_drive_error(exc: errors.DriveError) -> Any:
        return drive_error_response(exc)

    @api.errorhandler(404)
    def on_404(_exc: Exception) -> Any:
        return error_response(404, "not_found", f"no such endpoint: {request.path}")

    @api.errorhandler(405)
    def on_405(_exc: Exception) -> Any:
        return error_response(405, "method_not_allowed", f"{request.method} is not allowed here")

    @api.errorhandler(400)
    def on_400(exc: Exception) -> Any:
        return error_response(400, "bad_request", getattr(exc, "description", "bad request"))

    @api.errorhandler(413)
    def on_413(_exc: Exception) -> Any:
        return error_response(413, "file_too_large", "request body too large")

    for module in (
        files,
        zip_download,
        namespace,
        trash,
        changes,
        uploads,
        devices,
        session,
        shares,
        links,
        blocks,
        meta,
    ):
        api.register_blueprint(module.bp, url_prefix=PREFIX)
    return api
