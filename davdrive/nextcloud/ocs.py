"""The OCS API's envelope, its JSON and XML forms, and the documents of ``cloud/*``.

Every answer is ``{"ocs": {"meta": {...}, "data": ...}}``. ``meta.statuscode`` is 100 on success
for ``/ocs/v1.php`` and 200 for ``/ocs/v2.php``; failures use 997 (not authenticated), 998 (not
found), 996 (server error) or else the HTTP status; an app API's own failures (the share API:
400, 403, 404) answer HTTP 200 on v1 and the status on v2 (``failure_status``). JSON is
compact, as PHP writes it (ownCloud 2.11 reads the status code with the regular expression
``"statuscode":(\\d+),``). XML is the shape Nextcloud's ``BaseResponse::toXML`` writes: the
declaration ``<?xml version="1.0"?>`` exactly (the same client detects XML by that string), one
element per key, list items as ``<element>``, true as ``1``, false and null as an empty
element.

The capabilities say what davdrive does today and nothing more: clients switch protocols when
they see ``bulkupload``, ``files.locking`` or ``notify_push``, so those are never advertised
until they exist; ``files_sharing`` describes exactly what ``share_api`` does.
``checksums.supportedTypes`` lists only the types the WebDAV door verifies
(``checksum_types``); with none, the list is empty and ``preferredUploadType`` absent.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from typing import Any

from davdrive.nextcloud.status import VERSION, VERSION_STRING
from davdrive.service.types import Principal, Usage

OK_V1 = 100
OK_V2 = 200
NOT_AUTHENTICATED = 997
NOT_FOUND = 998
SERVER_ERROR = 996
XML_DECLARATION = '<?xml version="1.0"?>\n'
JSON_TYPE = "application/json; charset=utf-8"
XML_TYPE = "application/xml; charset=utf-8"
POLL_INTERVAL = 60  # as Nextcloud sends it; both desktop clients ignore values below 5000 (ms)


def ok_code(version: int) -> int:
    return OK_V2 if version == 2 else OK_V1


def error_code(http_status: int) -> int:
    """The ``meta.statuscode`` of a failure answered with ``http_status``."""
    return {401: NOT_AUTHENTICATED, 404: NOT_FOUND, 500: SERVER_ERROR}.get(http_status, http_status)


def envelope(
    version: int, data: Any, *, statuscode: int | None = None, message: str = "OK"
) -> dict[str, Any]:
    """The whole OCS document. ``statuscode`` None: success for ``version``."""
    code = ok_code(version) if statuscode is None else statuscode
    meta: dict[str, Any] = {
        "status": "ok" if code in (OK_V1, OK_V2) else "failure",
        "statuscode": code,
        "message": message,
    }
    if version != 2:  # v1 carries the (always empty) paging fields
        meta["totalitems"] = ""
        meta["itemsperpage"] = ""
    return {"ocs": {"meta": meta, "data": data}}


def to_json(doc: Any) -> bytes:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _fill(parent: ET.Element, value: Any) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _fill(ET.SubElement(parent, str(key)), item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _fill(ET.SubElement(parent, "element"), item)
    elif value is True:
        parent.text = "1"
    elif value is None or value is False:
        pass
    else:
        parent.text = str(value)


def to_xml(doc: dict[str, Any]) -> bytes:
    """``doc`` (one root key) as Nextcloud's OCS XML."""
    ((root_name, body),) = doc.items()
    root = ET.Element(root_name)
    _fill(root, body)
    ET.indent(root, space=" ")
    return (XML_DECLARATION + ET.tostring(root, encoding="unicode") + "\n").encode("utf-8")


def wants_json(format_param: str | None, accept: str) -> bool:
    """``?format=json|xml`` decides; without it ``Accept: application/json`` (as Nextcloud)."""
    if format_param:
        return format_param.strip().lower() == "json"
    return "application/json" in (accept or "").lower()


def capabilities(checksum_types: Iterable[str] = ()) -> dict[str, Any]:
    """``data`` of ``cloud/capabilities``."""
    types = [t.upper() for t in checksum_types]
    checksums: dict[str, Any] = {"supportedTypes": types}
    if types:
        checksums["preferredUploadType"] = types[0]
    major, minor, micro, _ = VERSION
    return {
        "version": {
            "major": major,
            "minor": minor,
            "micro": micro,
            "string": VERSION_STRING,
            "edition": "",
            "extendedSupport": False,
        },
        "capabilities": {
            "core": {"pollinterval": POLL_INTERVAL, "webdav-root": "remote.php/webdav"},
            "dav": {"chunking": "1.0"},
            "files": {"bigfilechunking": True, "undelete": True, "versioning": True},
            "checksums": checksums,
            "files_sharing": sharing_capabilities(),
        },
    }


def sharing_capabilities() -> dict[str, Any]:
    """The ``files_sharing`` block: user shares and public links (``nextcloud.share_api``);
    no groups, federation, mail or re-sharing; a link's password and expiry are optional and
    have no default; ``default_permissions`` read, update, create, delete (no re-share)."""
    return {
        "api_enabled": True,
        "public": {
            "enabled": True,
            "password": {"enforced": False, "askForOptionalPassword": False},
            "expire_date": {"enabled": False, "enforced": False},
            "multiple_links": True,
            "send_mail": False,
            "upload": True,
            "upload_files_drop": True,
        },
        "resharing": False,
        "user": {"send_mail": False, "expire_date": {"enabled": False}},
        "group_sharing": False,
        "group": {"enabled": False, "expire_date": {"enabled": False}},
        "federation": {"outgoing": False, "incoming": False, "expire_date": {"enabled": False}},
        "default_permissions": 15,
    }


def failure_status(version: int, status: int) -> int:
    """The HTTP status of a failure an OCS *app API* (such as the share API) reports with
    ``meta.statuscode`` ``status``: v1 answers 200 (the code is only in the envelope), v2 the
    status itself; 401 stays 401 in both (Nextcloud's ``V1Response``/``V2Response``)."""
    if status == 401:
        return 401
    return status if version == 2 else 200


def render(doc: dict[str, Any], format_param: str | None, accept: str) -> tuple[bytes, str]:
    """``doc`` as JSON or XML (``wants_json``): the body and its content type."""
    if wants_json(format_param, accept):
        return to_json(doc), JSON_TYPE
    return to_xml(doc), XML_TYPE


def quota(usage: Usage) -> dict[str, Any]:
    """Nextcloud's ``quota`` object: bytes, and ``relative`` as a percentage (2 decimals)."""
    used = usage.used
    free = usage.available
    total = used + free
    relative = round(used * 100 / total, 2) if total else 0
    return {"free": free, "used": used, "total": total, "relative": relative, "quota": usage.quota}


def user(p: Principal, usage: Usage) -> dict[str, Any]:
    """``data`` of ``cloud/user``: the login is the id and the display name (davdrive keeps no
    other name and no e-mail address)."""
    return {
        "id": p.login,
        "display-name": p.login,
        "displayname": p.login,
        "email": None,
        "quota": quota(usage),
    }


__all__ = [
    "JSON_TYPE",
    "NOT_AUTHENTICATED",
    "NOT_FOUND",
    "XML_TYPE",
    "capabilities",
    "envelope",
    "error_code",
    "failure_status",
    "ok_code",
    "render",
    "sharing_capabilities",
    "to_json",
    "to_xml",
    "user",
    "wants_json",
]
