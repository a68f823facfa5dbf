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
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from wsgidav.dav_error import DAVError
from wsgidav.dc.base_dc import BaseDomainController
from wsgidav.mw.base_mw import BaseMiddleware

from davdrive import errors
from providers.errors import HTTP_TOO_MANY_REQUESTS

PRINCIPAL_KEY = "davdrive.principal"
BEARER_KEY = "davdrive.bearer"  # set (True) by BearerAuthenticator when a token authenticated
REALM = "davdrive"


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
        client = environ.get("REMOTE_ADDR")
        try:
            principal = self.app.accounts.authenticate(user_name, password, client=client)
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
            principal = self.app.accounts.authenticate_token(token.strip())
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
