"""``/devices``: the caller's devices: list, register (credentials shown once), revoke.

A device's own credentials (its app password or token) may list the devices and revoke that
device itself (sign out); registering a device or revoking another one needs the account
password, so a leaked device secret can neither mint new ones nor lock the owner's other
devices out (as Nextcloud does with app passwords).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify

from davdrive import errors
from davdrive.api.util import json_body, principal, rfc3339, services

bp = Blueprint("devices", __name__)


def _device_json(d: Any, current: int | None) -> dict[str, Any]:
    return {
        "id": d.id,
        "name": d.name,
        "created": rfc3339(d.created),
        "last_seen": rfc3339(d.last_seen),
        "last_cursor": d.last_cursor,
        "kind": d.kind,  # "app" (app password and token) or "browser" (a web app session)
        "current": d.id == current,
    }


@bp.get("/devices")
def list_devices() -> Any:
    p = principal()
    devices = services().accounts.list_devices(p.login)
    return jsonify({"devices": [_device_json(d, p.device_id) for d in devices]})


@bp.post("/devices")
def add_device() -> Any:
    p = principal()
    if p.device_id is not None:
        raise errors.PermissionDenied("registering a device needs the account password")
    name = json_body().get("name")
    if not isinstance(name, str):
        raise errors.BadRequest("'name' is required")
    device_id, app_password, token = services().accounts.add_device(p, name)
    resp = jsonify(
        {"id": device_id, "name": name.strip(), "app_password": app_password, "token": token}
    )
    resp.status_code = 201
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.delete("/devices/<int:device_id>")
def revoke_device(device_id: int) -> Any:
    p = principal()
    accounts = services().accounts
    if p.device_id is not None and p.device_id != device_id:
        if all(d.id != device_id for d in accounts.list_devices(p.login)):
            raise errors.NotFound(f"no device {device_id}")
        raise errors.PermissionDenied("revoking another device needs the account password")
    accounts.revoke_device(p.login, device_id)
    return Response(status=204)
