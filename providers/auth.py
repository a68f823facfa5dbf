"""Authentication of DAV requests: HTTP Basic and ``Authorization: Bearer <device token>``.

``DriveDomainController`` checks Basic credentials against ``App.accounts`` (no digest: passwords
are argon2). WsgiDAV builds it from its class with ``(wsgidav_app, config)``, so the davdrive
``App`` rides in ``config["davdrive"]["app"]``. On success the caller's ``Principal`` is stored in
``environ["davdrive.principal"]`` and ``wsgidav.auth.user_name`` becomes the canonical login (the
lock principal). Rate limiting lives in ``Accounts.authenticate`` (``TooManyRequests`` → 429).

WsgiDAV's ``HTTPAuthenticator`` knows Basic and Digest only, so ``BearerAuthenticator`` sits in
front of it: it verifies a bearer token (unknown → 401), stores the principal and marks the
request; the controller's ``require_authentication`` then answers False for that request, which
is how ``HTTPAuthenticator`` lets it through.

``lane_principal`` checks the credentials of a request by the same rules for the fast lane
(``providers.fast_lane``), in front of both. Whatever it finds (the principal, or the error)
is kept in ``environ[AUTH_MEMO_KEY]`` with the header it came from, and the controller and the
bearer middleware take it from there when the request falls through to WsgiDAV: one
verification per request, one failure counted by the login limits.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterable
from typing import Any

from wsgidav.dav_error import DAVError
from wsgidav.dc.base_dc import BaseDomainController
from wsgidav.mw.base_mw import BaseMiddleware

from davdrive import errors
from davdrive.service.types import Principal
from providers.errors import HTTP_TOO_MANY_REQUESTS

PRINCIPAL_KEY = "davdrive.principal"
BEARER_KEY = "davdrive.bearer"  # set (True) by BearerAuthenticator when a token authenticated
REALM = "davdrive"
# environ: (Authorization header, Principal or the DriveError it raised), by lane_principal
AUTH_MEMO_KEY = "davdrive.auth_memo"


def _remembered(environ: dict[str, Any], check: Callable[[], Principal]) -> Principal:
    """``check()``'s outcome for this request's Authorization header, computed once."""
    header = environ.get("HTTP_AUTHORIZATION")
    memo = environ.get(AUTH_MEMO_KEY)
    if memo is not None and memo[0] == header:
        outcome = memo[1]
    else:
        try:
            outcome = check()
        except errors.DriveError as exc:
            outcome = exc
        environ[AUTH_MEMO_KEY] = (header, outcome)
    if isinstance(outcome, errors.DriveError):
        raise outcome
    return outcome


def basic_principal(app: Any, user_name: str, password: str, environ: dict[str, Any]) -> Principal:
    """The account or device behind Basic credentials (``Accounts.authenticate``, with the
    client address for the login limits); its errors as raised (``TooManyRequests``...)."""
    return _remembered(
        environ,
        lambda: app.accounts.authenticate(user_name, password, client=environ.get("REMOTE_ADDR")),
    )


def bearer_principal(app: Any, token: str, environ: dict[str, Any]) -> Principal:
    """The device behind a bearer token (``Accounts.authenticate_token``)."""
    return _remembered(environ, lambda: app.accounts.authenticate_token(token))


def lane_principal(app: Any, environ: dict[str, Any]) -> Principal | None:
    """For the fast lane: the caller of a request with well-formed Basic or Bearer
    credentials, set in the environ as the authenticators set it; None when WsgiDAV's
    authenticators must answer (no or other credentials, a failed check: its outcome stays
    in ``AUTH_MEMO_KEY`` for them)."""
    header = environ.get("HTTP_AUTHORIZATION")
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    lowered = scheme.lower()
    try:
        if lowered == "basic":
            if header != header.strip():
                return None
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
            user_name, colon, password = decoded.partition(":")
            if not colon:
                return None
            principal = basic_principal(app, user_name, password, environ)
            environ["wsgidav.auth.user_name"] = user_name
        elif lowered == "bearer":
            principal = bearer_principal(app, header.strip().partition(" ")[2].strip(), environ)
            environ[BEARER_KEY] = True
            environ["wsgidav.auth.user_name"] = principal.login
        else:
            return None
    except (binascii.Error, ValueError, errors.DriveError):
        return None
    environ[PRINCIPAL_KEY] = principal
    environ["davdrive.login"] = principal.login
    environ["wsgidav.auth.realm"] = REALM
    return principal


class DriveDomainController(BaseDomainController):
    """Every DAV request needs an account; Basic only."""

    def __init__(self, wsgidav_app: Any, config: dict[str, Any]) -> None:
        super().__init__(wsgidav_app, config)
        self.app = config["davdrive"]["app"]

    def __str__(self) -> str:
        return "DriveDomainController()"

    def get_domain_realm(self, path_info: str, environ: dict[str, Any] | None) -> str:
        """One realm for the whole DAV tree (browsers and OSes remember one password)."""
        return REALM

    def require_authentication(self, realm: str, environ: dict[str, Any] | None) -> bool:
        """Always, except for a request ``BearerAuthenticator`` already authenticated."""
        if environ is not None and environ.get(BEARER_KEY):
            principal = environ[PRINCIPAL_KEY]
            environ["wsgidav.auth.user_name"] = principal.login
            environ["davdrive.login"] = principal.login
            return False
        return True

    def supports_http_digest_auth(self) -> bool:
        return False

    def basic_auth_user(
        self, realm: str, user_name: str, password: str, environ: dict[str, Any]
    ) -> bool:
        """Verify the credentials; False means 401, ``TooManyRequests`` means 429."""
        try:
            principal = basic_principal(self.app, user_name, password, environ)
        except errors.TooManyRequests as exc:
            retry = exc.details.get("retry_after") if exc.details else None
            raise DAVError(
                HTTP_TOO_MANY_REQUESTS,
                context_info="too many failed logins; try again later",
                add_headers=[("Retry-After", str(int(float(retry or 60))))],
            ) from None
        except errors.DriveError:
            return False
        environ[PRINCIPAL_KEY] = principal
        # WsgiDAV overwrites wsgidav.auth.user_name with the typed name after we return; the
        # provider reads the principal, and the lock principal is fixed in RequestServer from
        # this key, so keep them equal when the login differs only in case.
        environ["davdrive.login"] = principal.login
        return True


class BearerAuthenticator(BaseMiddleware):
    """``Authorization: Bearer <device token>`` for WebDAV; placed before HTTPAuthenticator.

    A known token sets the principal; an unknown one answers 401 at once. Any other
    ``Authorization`` scheme passes through untouched.
    """

    def __init__(self, wsgidav_app: Any, next_app: Any, config: dict[str, Any]) -> None:
        super().__init__(wsgidav_app, next_app, config)
        self.app = config["davdrive"]["app"]

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        environ.pop(BEARER_KEY, None)
        scheme, _, token = environ.get("HTTP_AUTHORIZATION", "").strip().partition(" ")
        if scheme.lower() != "bearer":
            return self.next_app(environ, start_response)
        try:
            principal = bearer_principal(self.app, token.strip(), environ)
        except errors.DriveError:
            body = b"Unknown or revoked token\n"
            start_response(
                "401 Unauthorized",
                [
                    ("WWW-Authenticate", f'Basic realm="{REALM}"'),
                    ("WWW-Authenticate", f'Bearer realm="{REALM}", error="invalid_token"'),
                    ("Content-Type", "text/plain"),
                    ("Content-Length", str(len(body))),
                ],
            )
            return [body]
        environ[PRINCIPAL_KEY] = principal
        environ[BEARER_KEY] = True
        return self.next_app(environ, start_response)
