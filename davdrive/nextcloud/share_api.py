"""The OCS share API (``/ocs/v{1,2}.php/apps/files_sharing/api/v1/...``) over davdrive's own
user shares (``service.shares``) and share links (``service.links``): the share dialog of the
Nextcloud desktop client and the mobile apps. No storage of its own; the services decide.

- ``GET shares`` (``path``, ``reshares``, ``subfiles``, ``shared_with_me``), ``GET shares/<id>``
  (a list of one, as Nextcloud), ``POST shares`` (``shareType`` 0 user or 3 public link),
  ``PUT shares/<id>``, ``DELETE shares/<id>``; ``GET sharees`` (an exact login only).
- Ids: a user share ``n`` is ``2n``, a link ``n`` is ``2n + 1`` (numeric, as the apps parse
  them, and never the same for the two kinds).
- Permissions are Nextcloud's bits (1 read, 2 update, 4 create, 8 delete, 16 share). A user
  share keeps them (16 is dropped: no re-sharing). A link's kind maps to bits: ``view`` 1,
  ``upload`` 5, ``drop`` 4, ``edit`` 15 (a file: 3).
- ``expireDate`` ``YYYY-MM-DD``: the link works through that day (UTC).
- Failures: v1 answers HTTP 200 with ``meta.statuscode`` 400/403/404, v2 the HTTP status.
"""

from __future__ import annotations

import mimetypes
import posixpath
from collections.abc import Callable
from datetime import UTC, date, datetime, time
from functools import wraps
from typing import TYPE_CHECKING, Any

from flask import Flask, Response, request

from davdrive import errors
from davdrive.nextcloud import ocs
from davdrive.service.access import Perm
from davdrive.service.links import LinkInfo
from davdrive.service.shares import ShareInfo
from davdrive.service.types import Principal

if TYPE_CHECKING:
    from davdrive.app import App

PREFIX = "/ocs/v<any('1','2'):v>.php/apps/files_sharing/api/v1"
USER, LINK = 0, 3
ALL_BITS = 31
DEFAULT_USER_PERMS = 15  # the capabilities' ``default_permissions``
LINK_BITS = {"view": 1, "upload": 5, "drop": 4, "edit": 15}
FILE_LINK_BITS = {"view": 1, "edit": 3}
LINK_PROTECTED = "***"  # ``share_with`` of a link with a password (never the password or hash)
MAX_BODY = 1 << 20
MAX_ID = (1 << 63) - 1
FOLDER_MIME = "httpd/unix-directory"
# (error class, status); the first match wins; anything else goes to the app's handler
STATUS: list[tuple[type[errors.DriveError], int]] = [
    (errors.PermissionDenied, 403),
    (errors.AlreadyExists, 403),  # Nextcloud: "Path is already shared with this user"
    (errors.NotFound, 404),
    (errors.BadRequest, 400),
    (errors.Conflict, 409),
]


# -- ids, permissions, dates ----------------------------------------------------------------------
def ocs_id(kind: int, n: int) -> str:
    """The OCS id of user share ``n`` (``kind`` USER) or link ``n`` (LINK)."""
    return str(2 * n + (1 if kind == LINK else 0))


def parse_id(text: str) -> tuple[int, int]:
    """(USER or LINK, davdrive id) of an OCS id; ``NotFound`` for anything else."""
    if not text.isdigit() or len(text) > 19 or int(text) > MAX_ID or int(text) < 2:
        raise errors.NotFound("Wrong share ID, share doesn't exist")
    value = int(text)
    return (LINK if value % 2 else USER), value // 2


def link_bits(kind: str, is_dir: bool) -> int:
    """Nextcloud's permission bits of a link of ``kind``."""
    return (LINK_BITS if is_dir else FILE_LINK_BITS)[kind]


def link_kind(bits: int, is_dir: bool) -> str:
    """The link kind Nextcloud's ``bits`` ask for (16 ignored; a file keeps read and update)."""
    if not 0 <= bits <= ALL_BITS:
        raise errors.BadRequest("invalid permissions")
    bits &= ~int(Perm.SHARE)
    if not bits & (Perm.READ | Perm.CREATE):
        bits |= Perm.READ
    table = LINK_BITS if is_dir else FILE_LINK_BITS
    if not is_dir:
        bits &= ~int(Perm.CREATE | Perm.DELETE)
    for kind, value in table.items():
        if value == bits:
            return kind
    allowed = ", ".join(f"{v} ({k})" for k, v in table.items())
    raise errors.BadRequest(f"a public link's permissions are one of {allowed}")


def user_bits(raw: int | None, *, create: bool) -> int:
    """davdrive rights from Nextcloud's bits for a user share: re-sharing (16) dropped; on
    creation read is added (as Nextcloud does) and the default is ``DEFAULT_USER_PERMS``."""
    bits = DEFAULT_USER_PERMS if raw is None else raw
    if not 0 <= bits <= ALL_BITS:
        raise errors.BadRequest("invalid permissions")
    if create:
        bits |= Perm.READ
    return bits & ~int(Perm.SHARE)


def expiry_arg(value: str) -> float | None:
    """``expireDate`` (``YYYY-MM-DD``, a time after it ignored; empty: none) as the instant the
    link stops: the start of the next day, UTC."""
    if not value.strip():
        return None
    try:
        day = date.fromisoformat(value.strip()[:10])
    except ValueError:
        raise errors.BadRequest("Invalid date, date format must be YYYY-MM-DD") from None
    if day < datetime.now(UTC).date():
        raise errors.BadRequest("Expiration date is in the past")
    return datetime.combine(day, time(), UTC).timestamp() + 86400


def expiration(expires: float | None) -> str | None:
    """Nextcloud's ``expiration``: the last day the link works, ``YYYY-MM-DD 00:00:00``."""
    if expires is None:
        return None
    return datetime.fromtimestamp(expires - 1, UTC).strftime("%Y-%m-%d 00:00:00")


# -- share elements -------------------------------------------------------------------------------
def _mimetype(name: str, is_dir: bool) -> str:
    if is_dir:
        return FOLDER_MIME
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


def _element(owner: str, node_id: int, name: str, is_dir: bool, path: str) -> dict[str, Any]:
    return {
        "uid_owner": owner,
        "displayname_owner": owner,
        "uid_file_owner": owner,
        "displayname_file_owner": owner,
        "parent": None,
        "note": "",
        "path": path,
        "item_type": "folder" if is_dir else "file",
        "mimetype": _mimetype(name, is_dir),
        "has_preview": False,
        "storage_id": f"home::{owner}",
        "item_source": node_id,
        "file_source": node_id,
        "mail_send": 0,
        "hide_download": 0,
    }


def share_element(s: ShareInfo, viewer: Principal) -> dict[str, Any]:
    """A user share as ``viewer`` (its owner or recipient) sees it."""
    mine = s.owner == viewer.login
    return {
        "id": ocs_id(USER, s.id),
        "share_type": USER,
        "permissions": int(s.permissions),
        "can_edit": mine,
        "can_delete": True,  # the owner revokes, the recipient declines
        "stime": int(s.created),
        "expiration": None,
        "token": None,
        "label": "",
        **_element(s.owner, s.node_id, s.name, s.is_dir, s.path),
        "file_target": s.mount_path,
        "share_with": s.recipient,
        "share_with_displayname": s.recipient,
    }


def link_element(info: LinkInfo) -> dict[str, Any]:
    """A link as its owner sees it: the URL, never the password (``share_with`` only says
    whether there is one, as the apps read it)."""
    return {
        "id": ocs_id(LINK, info.id),
        "share_type": LINK,
        "permissions": link_bits(info.kind, info.is_dir),
        "can_edit": True,
        "can_delete": True,
        "stime": int(info.created),
        "expiration": expiration(info.expires),
        "token": info.token,
        "label": info.label or "",
        **_element(info.owner, info.node_id, info.name, info.is_dir, info.path),
        "file_target": "/" + info.name,
        "share_with": LINK_PROTECTED if info.has_password else None,
        "share_with_displayname": "(Shared link)",
        "url": f"{request.host_url}s/{info.token}",
    }


def sharees(login: str | None) -> dict[str, Any]:
    """``data`` of ``sharees``: ``login`` (an exact match) or nothing."""
    exact = [
        {
            "label": login,
            "subline": "",
            "icon": "icon-user",
            "value": {"shareType": USER, "shareWith": login},
            "shareWithDisplayNameUnique": login,
            "status": [],
        }
    ]
    kinds = ("groups", "remotes", "remote_groups", "emails", "circles", "rooms", "lookup")
    empty: dict[str, Any] = {k: [] for k in kinds}
    return {
        "exact": {"users": exact if login else [], **empty},
        "users": [],
        **empty,
        "lookupEnabled": False,
    }


# -- request parameters ---------------------------------------------------------------------------
def params() -> dict[str, str]:
    """The request's parameters: query, then a form or JSON body (≤ 1 MiB), as text."""
    if (request.content_length or 0) > MAX_BODY:
        raise errors.BadRequest("the request body is too large")
    out: dict[str, Any] = dict(request.args.items())
    if request.is_json:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise errors.BadRequest("the body is not a JSON object")
        out.update(body)
    else:
        out.update(request.form.items())
    return {k: _text(v) for k, v in out.items() if v is not None}


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int):
        return str(value)
    raise errors.BadRequest("parameters are text or numbers")


def _int(form: dict[str, str], name: str) -> int | None:
    value = form.get(name, "").strip()
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise errors.BadRequest(f"'{name}' must be an integer") from None


def _flag(form: dict[str, str], name: str) -> bool:
    return form.get(name, "").strip().lower() in ("true", "1")


def _path(value: str | None) -> str | None:
    if not value:
        return None
    return "/" + value.strip("/")


def _refuse(form: dict[str, str], names: tuple[str, ...], what: str) -> None:
    """``BadRequest`` for a setting davdrive does not have for ``what`` (empty or false: fine)."""
    for name in names:
        if form.get(name, "").strip().lower() not in ("", "false", "0"):
            raise errors.BadRequest(f"'{name}' is not supported for {what}")


# -- routes ---------------------------------------------------------------------------------------
def register(
    nc: Flask,
    app: App,
    *,
    ocs_response: Callable[..., Response],
    principal: Callable[[], Principal],
) -> None:
    """Add the share API's routes to the facade ``nc`` over ``app``'s services."""
    shares, links, drive = app.drive.shares, app.drive.links, app.drive

    def failure(exc: errors.DriveError) -> Response:
        status = next((code for cls, code in STATUS if isinstance(exc, cls)), None)
        if status is None:
            raise exc  # 401, 429 and the unexpected: the facade's own handler
        version = 2 if request.path.startswith("/ocs/v2.php") else 1
        doc = ocs.envelope(version, [], statuscode=status, message=exc.message)
        body, ctype = ocs.render(doc, request.args.get("format"), request.headers.get("Accept", ""))
        resp = Response(body, status=ocs.failure_status(version, status), content_type=ctype)
        resp.headers["Cache-Control"] = "no-store"
        return resp

    def route(rule: str, method: str) -> Callable[[Callable[..., Response]], Any]:
        def add(fn: Callable[..., Response]) -> Callable[..., Response]:
            @wraps(fn)
            def view(v: str, **kw: Any) -> Response:
                try:
                    return fn(**kw)
                except errors.DriveError as exc:
                    return failure(exc)

            endpoint = f"share_api.{fn.__name__}"
            nc.add_url_rule(PREFIX + rule, endpoint, view, methods=[method])
            return fn

        return add

    def live_link(p: Principal, n: int) -> LinkInfo:
        info = links.get(p, n)
        if not info.active or not info.path:
            raise errors.NotFound("Wrong share ID, share doesn't exist")
        return info

    def element(p: Principal, kind: int, n: int) -> dict[str, Any]:
        if kind == USER:
            return share_element(shares.get(p, n), p)
        return link_element(live_link(p, n))

    def given(p: Principal, path: str | None, subfiles: bool) -> list[dict[str, Any]]:
        """The caller's shares and live links: all, of the node ``path``, or (``subfiles``)
        of the members of the folder ``path``."""
        if subfiles:
            if path is None or not drive.stat(p, path).is_dir:
                raise errors.BadRequest("subfiles needs the path of a folder")
            mine, own_links = shares.list_given(p), links.list(p)
        else:
            mine, own_links = shares.list_given(p, path), links.list(p, path)

        def keep(node_path: str) -> bool:
            return not subfiles or posixpath.dirname(node_path) == path

        out = [share_element(s, p) for s in mine if keep(s.path)]
        live = (i for i in own_links if i.active and i.path)
        return out + [link_element(i) for i in live if keep(i.path)]

    @route("/shares", "GET")
    def list_shares() -> Response:
        p = principal()
        form = dict(request.args.items())
        path = _path(form.get("path"))
        with_me = _flag(form, "shared_with_me")
        out = [] if with_me else given(p, path, _flag(form, "subfiles"))
        if with_me or (_flag(form, "reshares") and path is not None):  # shared with the caller
            got = shares.list_received(p)
            out = [share_element(s, p) for s in got if path in (None, s.mount_path)] + out
        return ocs_response(out)

    @route("/shares/<share_id>", "GET")
    def get_share(share_id: str) -> Response:
        p = principal()
        return ocs_response([element(p, *parse_id(share_id))])

    @route("/shares", "POST")
    def create_share() -> Response:
        p = principal()
        form = params()
        path = _path(form.get("path"))
        if path is None:
            raise errors.BadRequest("Please specify a file or folder path")
        share_type = _int(form, "shareType")
        if share_type == USER:
            _refuse(form, ("password", "expireDate", "publicUpload", "note", "label"), "users")
            with_ = form.get("shareWith", "").strip()
            if not with_:
                raise errors.BadRequest("Please specify a valid user")
            bits = user_bits(_int(form, "permissions"), create=True)
            return ocs_response(share_element(shares.create(p, path, with_, bits), p))
        if share_type != LINK:
            raise errors.BadRequest("davdrive shares with users (0) and public links (3) only")
        _refuse(form, ("hideDownload", "note"), "links")
        is_dir = drive.stat(p, path).is_dir
        bits = _int(form, "permissions")
        if bits is not None:
            kind = link_kind(bits, is_dir)
        elif _flag(form, "publicUpload"):
            if not is_dir:
                raise errors.BadRequest("Public upload is only possible for shared folders")
            kind = "edit"
        else:
            kind = "view"
        info = links.create(
            p,
            path,
            kind,
            password=form.get("password") or None,
            expires=expiry_arg(form.get("expireDate", "")),
            label=form.get("label") or None,
        )
        return ocs_response(link_element(info))

    @route("/shares/<share_id>", "PUT")
    def update_share(share_id: str) -> Response:
        p = principal()
        kind, n = parse_id(share_id)
        form = params()
        if kind == USER:
            _refuse(form, ("password", "expireDate", "publicUpload", "note", "label"), "users")
            bits = _int(form, "permissions")
            if bits is None:
                raise errors.BadRequest("Wrong or no update parameter given")
            return ocs_response(
                share_element(shares.update(p, n, user_bits(bits, create=False)), p)
            )
        _refuse(form, ("hideDownload", "note"), "links")
        info = live_link(p, n)
        changes: dict[str, Any] = {}
        if "password" in form:
            changes["password"] = form["password"] or None
        if "expireDate" in form:
            changes["expires"] = expiry_arg(form["expireDate"])
        if "label" in form:
            changes["label"] = form["label"] or None
        bits = _int(form, "permissions")
        if bits is not None:
            changes["kind"] = link_kind(bits, info.is_dir)
        elif "publicUpload" in form:
            upload = _flag(form, "publicUpload")
            if upload and not info.is_dir:
                raise errors.BadRequest("Public upload is only possible for shared folders")
            changes["kind"] = "edit" if upload else "view"
        if not changes:
            raise errors.BadRequest("Wrong or no update parameter given")
        return ocs_response(link_element(links.update(p, n, **changes)))

    @route("/shares/<share_id>", "DELETE")
    def delete_share(share_id: str) -> Response:
        p = principal()
        kind, n = parse_id(share_id)
        if kind == USER:
            shares.delete(p, n)
        else:
            live_link(p, n)
            links.revoke(p, n)
        return ocs_response([])

    @route("/sharees", "GET")
    def search_sharees() -> Response:
        p = principal()
        search = request.args.get("search", "").strip()
        types = request.args.getlist("shareType[]") + request.args.getlist("shareType")
        found = None
        if search and len(search) <= 255 and (not types or str(USER) in types):
            try:
                login = drive.principal(search).login
            except errors.NotFound:
                login = None
            found = login if login != p.login else None
        return ocs_response(sharees(found))


__all__ = [
    "expiration",
    "expiry_arg",
    "link_kind",
    "ocs_id",
    "parse_id",
    "register",
    "user_bits",
]
