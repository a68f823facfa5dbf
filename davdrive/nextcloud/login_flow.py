"""How Nextcloud clients log in: Login Flow v2 and v1, and app passwords (``register``).

Routes, on the facade's Flask app:

- ``POST /index.php/login/v2`` (public): starts a flow (``service.login_flow``); JSON
  ``{"poll": {"token", "endpoint"}, "login"}``, URLs on the base the request came to.
- ``GET /index.php/login/v2/flow/<login token>``: the login page, naming the client (its
  ``User-Agent`` when it started the flow). ``POST`` there: the account login and password (or
  an app password), verified by ``Accounts.authenticate`` with its rate limits. Right: the flow
  is approved and the page says the window may be closed; wrong: the form again, 403; too many
  failures: 429 with ``Retry-After``; an unknown, expired or used token: 404.
- ``POST /index.php/login/v2/poll`` (form field ``token``): 404 ``[]`` until approved, then once
  ``{"server", "loginName", "appPassword"}`` (a new device; ``server`` is the base the poll came
  to, which the client reaches by definition), then 404 again.
- ``GET /index.php/login/flow`` (v1, with ``OCS-APIREQUEST: true``, else 403): the same page;
  its ``POST`` answers 302 to ``nc://login/server:<base>&user:<login>&password:<app password>``
  (login and password encoded as PHP's ``urlencode``), which the mobile apps catch.
- ``DELETE /ocs/v{1,2}.php/core/apppassword``: revokes the device whose app password (or token)
  authenticated the request; 403 for the account password.
- ``GET /ocs/v{1,2}.php/core/getapppassword`` (with ``OCS-APIREQUEST: true``, else 412): a new
  device's app password for a request made with the account password; 403 with an app password.

Forms carry a double-submit token against cross-site posts: the page sets a random value in a
``SameSite=Strict``, ``HttpOnly`` cookie scoped to the page's own path (for v2 the flow's URL,
so it is tied to the login token) and in a hidden field; a POST without the matching pair gets
403. Pages load nothing: their Content-Security-Policy allows only their own style (by hash)
and posting to themselves (v1 also to ``nc:``); framing is denied.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import math
import secrets
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote_plus

from flask import Flask, Response, request

from davdrive import errors
from davdrive.service.types import Principal

if TYPE_CHECKING:
    from collections.abc import Callable

    from davdrive.app import App

CSRF_COOKIE = "dd_login_csrf"
CSRF_FIELD = "requesttoken"
FORM_MAX = 16 << 10  # bytes of a login form
GONE = "This login link does not exist or has expired. Start the login again from your client."
_CSS = (
    "body{font:16px/1.5 system-ui,sans-serif;margin:0;background:#f4f5f7;color:#222}"
    "main{max-width:26rem;margin:8vh auto;padding:2rem;background:#fff;border-radius:8px;"
    "box-shadow:0 1px 4px #0002}h1{font-size:1.4rem;margin-top:0}"
    "label{display:block;margin:.8rem 0}input{display:block;width:100%;box-sizing:border-box;"
    "padding:.5rem;font:inherit}button{padding:.5rem 1.2rem;font:inherit}"
    ".error{color:#b00020}.muted{color:#666;font-size:.9rem}"
)
_STYLE_HASH = "'sha256-" + base64.b64encode(hashlib.sha256(_CSS.encode()).digest()).decode() + "'"


def _csp(*form_targets: str) -> str:
    targets = " ".join(("'self'", *form_targets))
    return (
        f"default-src 'none'; style-src {_STYLE_HASH}; form-action {targets}; "
        "frame-ancestors 'none'; base-uri 'none'"
    )


class OcsResponse(Protocol):
    """The facade's OCS envelope writer (``make_nextcloud_app``'s ``ocs_response``)."""

    def __call__(
        self,
        data: Any,
        http_status: int = 200,
        *,
        message: str = "OK",
        headers: dict[str, str] | None = None,
    ) -> Response: ...


def php_urlencode(text: str) -> str:
    """As PHP's ``urlencode``: letters, digits and ``-_.`` stay, a space is ``+``."""
    return quote_plus(text, safe="").replace("~", "%7E")


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _layout(title: str, body: str) -> str:
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="referrer" content="no-referrer"><meta name="robots" content="noindex">'
        f"<title>{_esc(title)}</title><style>{_CSS}</style></head>"
        f"<body><main><h1>{_esc(title)}</h1>{body}</main></body></html>\n"
    )


def _login_page(client: str, csrf: str, *, user: str = "", error: str = "") -> str:
    note = f'<p class="error" role="alert">{_esc(error)}</p>' if error else ""
    return _layout(
        "Connect to your account",
        f"<p>Log in to give <strong>{_esc(client)}</strong> access to your files.</p>"
        '<p class="muted">If you did not just start this from that client, close this window: '
        "someone may be trying to get access to your account.</p>"
        f'{note}<form method="post">'
        f'<input type="hidden" name="{CSRF_FIELD}" value="{_esc(csrf)}">'
        f'<label>Login <input name="user" value="{_esc(user)}" autocomplete="username" '
        'autocapitalize="none" required autofocus></label>'
        '<label>Password or app password <input type="password" name="password" '
        'autocomplete="current-password" required></label>'
        '<button type="submit">Log in</button></form>',
    )


def _message_page(title: str, text: str) -> str:
    return _layout(title, f"<p>{_esc(text)}</p>")


def register(
    nc: Flask,
    app: App,
    *,
    ocs_response: OcsResponse,
    principal: Callable[[], Principal],
) -> None:
    """Add the login routes (see the module docstring) to the facade ``nc`` over ``app``."""
    flows = app.login_flows

    def base_url() -> str:
        return request.url_root.rstrip("/")

    def page(body: str, status: int = 200, *, csp: str = _csp()) -> Response:
        resp = Response(body, status=status, mimetype="text/html")
        resp.headers["Content-Security-Policy"] = csp
        resp.headers["X-Frame-Options"] = "DENY"
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["Referrer-Policy"] = "no-referrer"
        resp.headers["Cache-Control"] = "no-store"
        return resp

    def json_response(doc: Any, status: int = 200) -> Response:
        resp = Response(json.dumps(doc), status=status, mimetype="application/json")
        resp.headers["Cache-Control"] = "no-store"
        return resp

    def form_page(client: str, csp: str, *, status: int = 200, error: str = "") -> Response:
        """The login form with a fresh CSRF pair (cookie scoped to this page's path)."""
        csrf = secrets.token_urlsafe(32)
        user = request.form.get("user", "") if request.method == "POST" else ""
        resp = page(_login_page(client, csrf, user=user[:64], error=error), status, csp=csp)
        resp.set_cookie(
            CSRF_COOKIE,
            csrf,
            path=request.script_root + request.path,
            secure=request.is_secure,
            httponly=True,
            samesite="Strict",
        )
        return resp

    def log_in(client: str, csp: str) -> Principal | Response:
        """The principal of the posted form, or the page to answer instead (CSRF failure,
        wrong credentials, rate limit)."""
        if (request.content_length or 0) > FORM_MAX:
            return page(_message_page("Bad request", "The form is too large."), 400, csp=csp)
        cookie = request.cookies.get(CSRF_COOKIE, "")
        field = request.form.get(CSRF_FIELD, "")
        if not cookie or not hmac.compare_digest(cookie.encode(), field.encode()):
            text = "The form has expired or did not come from this page. Please log in again."
            return form_page(client, csp, status=403, error=text)
        try:
            p = app.accounts.authenticate(
                request.form.get("user", "").strip(),
                request.form.get("password", ""),
                client=request.remote_addr,
            )
        except errors.NotAuthenticated:
            return form_page(client, csp, status=403, error="Wrong login or password.")
        except errors.TooManyRequests as exc:
            retry = float(str((exc.details or {}).get("retry_after") or 60))
            text = "Too many failed logins. Please wait a while, then try again."
            resp = page(_message_page("Too many attempts", text), 429, csp=csp)
            resp.headers["Retry-After"] = str(max(1, math.ceil(retry)))
            return resp
        request.environ["davdrive.principal"] = p  # the access log's login
        return p

    def done(resp: Response) -> Response:
        resp.delete_cookie(CSRF_COOKIE, path=request.script_root + request.path)
        return resp

    # -- Login Flow v2 ---------------------------------------------------------------------------
    @nc.post("/index.php/login/v2")
    def flow_v2_start() -> Response:
        flow = flows.start(request.headers.get("User-Agent"))
        base = base_url()
        return json_response(
            {
                "poll": {"token": flow.poll_token, "endpoint": f"{base}/index.php/login/v2/poll"},
                "login": f"{base}/index.php/login/v2/flow/{flow.login_token}",
            }
        )

    @nc.route("/index.php/login/v2/flow/<token>", methods=["GET", "POST"])
    def flow_v2_page(token: str) -> Response:
        csp = _csp()
        try:
            client = flows.client_of(token)
        except errors.NotFound:
            return page(_message_page("Login link not found", GONE), 404)
        if request.method == "GET":
            return form_page(client, csp)
        p = log_in(client, csp)
        if isinstance(p, Response):
            return p
        try:
            flows.approve(token, p)
        except errors.NotFound:  # expired or approved meanwhile
            return page(_message_page("Login link not found", GONE), 404)
        text = f"{client} now has access to your account. You may close this window."
        return done(page(_message_page("Account connected", text)))

    @nc.post("/index.php/login/v2/poll")
    def flow_v2_poll() -> Response:
        try:
            grant = flows.poll(request.values.get("token", ""))
        except errors.NotFound:
            return json_response([], 404)
        return json_response(
            {"server": base_url(), "loginName": grant.login, "appPassword": grant.app_password}
        )

    # -- Login Flow v1 ---------------------------------------------------------------------------
    @nc.route("/index.php/login/flow", methods=["GET", "POST"])
    def flow_v1() -> Response:
        csp = _csp("nc:")
        client = request.headers.get("User-Agent") or "unknown client"
        if request.method == "GET":
            if request.headers.get("OCS-APIREQUEST", "").lower() != "true":
                text = "Open this page from a Nextcloud client (it sends OCS-APIREQUEST: true)."
                return page(_message_page("Access forbidden", text), 403, csp=csp)
            return form_page(client, csp)
        p = log_in(client, csp)
        if isinstance(p, Response):
            return p
        password = flows.app_password(p, client)
        target = (
            f"nc://login/server:{base_url()}&user:{php_urlencode(p.login)}"
            f"&password:{php_urlencode(password)}"
        )
        resp = done(page(_message_page("Account connected", "Returning to the app..."), 302))
        resp.headers["Location"] = target
        return resp

    # -- app passwords ---------------------------------------------------------------------------
    @nc.delete("/ocs/v<any('1','2'):v>.php/core/apppassword")
    def delete_app_password(v: str) -> Response:
        p = principal()
        if p.device_id is None:
            return ocs_response([], 403, message="no app password in use")
        app.accounts.revoke_device(p.login, p.device_id)
        return ocs_response([])

    @nc.get("/ocs/v<any('1','2'):v>.php/core/getapppassword")
    def get_app_password(v: str) -> Response:
        if request.headers.get("OCS-APIREQUEST", "").lower() != "true":
            return ocs_response([], 412, message="CSRF check failed: send OCS-APIREQUEST: true")
        p = principal()
        if p.device_id is not None:
            message = "You cannot request a new app password with an app password"
            return ocs_response([], 403, message=message)
        password = flows.app_password(p, request.headers.get("User-Agent"))
        return ocs_response({"apppassword": password})


__all__ = ["OcsResponse", "php_urlencode", "register"]
