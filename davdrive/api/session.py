"""``/session``: the web app's browser sessions (sign in, read, sign out) and the cookie rule.

``POST /session`` with ``{"login", "password"}`` (the account password, through the same rate
limits as every password check) answers ``{"login", "csrf", "device_id", "idle_timeout"}`` and
sets ``davdrive_session`` (HttpOnly, SameSite=Strict, Path=/, Secure over TLS). ``GET /session``
answers the same for a valid cookie (401 otherwise); ``DELETE /session`` signs out (204, the
cookie cleared). Any other request may authenticate with the cookie when it carries no
``Authorization`` header (``cookie_principal``): then every method but GET, HEAD and OPTIONS
needs ``X-CSRF-Token``, and a request with an ``Origin`` must come from this origin (403
``csrf``). See docs/WEBAPP.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from flask import Blueprint, Response, current_app, jsonify, request

from davdrive import errors
from davdrive.api.errors import drive_error_response, error_response
from davdrive.api.util import json_body, services
from davdrive.service.sessions import DEFAULT_IDLE, Session, Sessions, check_csrf

if TYPE_CHECKING:
    from davdrive.service.types import Principal

bp = Blueprint("session", __name__)
COOKIE = "davdrive_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def sessions() -> Sessions:
    """The API's ``Sessions`` (built on first use; its state is all in the database)."""
    made = current_app.config.get("sessions")
    if made is None:
        app = services()
        minutes = getattr(app.config, "session_idle_minutes", DEFAULT_IDLE / 60)
        made = current_app.config["sessions"] = Sessions(app.accounts, idle=minutes * 60)
    return made


def _csrf_error(message: str) -> Response:
    return error_response(403, "csrf", message)


def _foreign_origin() -> bool:
    """Whether the request names an ``Origin`` other than its own (scheme, host and port)."""
    origin = request.headers.get("Origin")
    if origin is None:
        return False
    parts = urlsplit(origin)
    schemes = {request.scheme, request.headers.get("X-Forwarded-Proto", "").strip().lower()}
    return parts.scheme not in schemes or parts.netloc.lower() != request.host.lower()


def _csrf_refusal(session_token: str) -> Response | None:
    """The 403 a state-changing cookie request gets without the right token, else None."""
    if request.method in SAFE_METHODS:
        return None
    if _foreign_origin():
        return _csrf_error("this request comes from another site")
    if not check_csrf(session_token, request.headers.get(CSRF_HEADER)):
        return _csrf_error(f"send the session's CSRF token in {CSRF_HEADER}")
    return None


def cookie_principal() -> Principal | Response:
    """The principal of the session cookie, or the error answer (401; 403 ``csrf``)."""
    token = request.cookies.get(COOKIE, "")
    try:
        session = sessions().resolve(token)
    except errors.DriveError as exc:
        return drive_error_response(exc)
    refusal = _csrf_refusal(token)
    return refusal if refusal is not None else session.principal


def _session_json(session: Session) -> Response:
    resp = jsonify(
        {
            "login": session.login,
            "csrf": session.csrf,
            "device_id": session.device_id,
            "idle_timeout": session.idle_timeout,
        }
    )
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _secure() -> bool:
    """Whether the browser reached us over TLS (directly, or through a proxy that says so)."""
    return request.scheme == "https" or (
        request.headers.get("X-Forwarded-Proto", "").strip().lower() == "https"
    )


@bp.post("/session")
def sign_in() -> Any:
    """Sign in with the account password: a new browser session and its cookie."""
    if not request.is_json:  # a cross-site form cannot send JSON without asking first
        raise errors.BadRequest("send a JSON body (Content-Type: application/json)")
    if _foreign_origin():
        return _csrf_error("this request comes from another site")
    body = json_body()
    login, password = body.get("login"), body.get("password")
    if not isinstance(login, str) or not isinstance(password, str) or not login or not password:
        raise errors.BadRequest("'login' and 'password' are required")
    try:
        new = sessions().login(
            login,
            password,
            client=request.remote_addr,
            user_agent=request.headers.get("User-Agent"),
        )
    except errors.TooManyRequests as exc:
        resp = drive_error_response(exc)
        retry = (exc.details or {}).get("retry_after")
        if retry:
            resp.headers["Retry-After"] = str(int(retry))
        return resp
    old = request.cookies.get(COOKIE)
    if old and old != new.token:
        sessions().logout(old)  # this browser's previous session is unreachable now
    request.environ["davdrive.principal"] = new.session.principal  # the access log's login
    resp = _session_json(new.session)
    resp.set_cookie(COOKIE, new.token, path="/", secure=_secure(), httponly=True, samesite="Strict")
    return resp


@bp.get("/session")
def current() -> Any:
    """The session of the cookie (a fresh read of its CSRF token), else 401."""
    session = sessions().resolve(request.cookies.get(COOKIE, ""))
    request.environ["davdrive.principal"] = session.principal
    return _session_json(session)


@bp.delete("/session")
def sign_out() -> Any:
    """End the cookie's session (a no-op without a valid one) and clear the cookie."""
    token = request.cookies.get(COOKIE, "")
    try:
        sessions().resolve(token)
    except errors.NotAuthenticated:
        pass  # nothing to end
    else:
        refusal = _csrf_refusal(token)
        if refusal is not None:
            return refusal
        sessions().logout(token)
    resp = Response(status=204)
    resp.delete_cookie(COOKIE, path="/", secure=_secure(), httponly=True, samesite="Strict")
    return resp
