"""``/openapi.json`` (the contract tests check responses against) and ``/capabilities``."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from davdrive.api import openapi_blocks, openapi_tree
from davdrive.api.util import services
from davdrive.protocol import CHUNK_PARAMS, MAX_SIZE
from davdrive.service.block_api import MAX_CHECK, STAGED_GRACE
from davdrive.service.delta_commit import MAX_COMMIT_BLOCKS

bp = Blueprint("meta", __name__)


def _err(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _ok(schema: str, description: str = "OK") -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
    }


REVISION = "#/components/schemas/Revision"
STRING = {"type": "string"}
PATH_Q = {"name": "path", "in": "query", "required": True, "schema": {"type": "string"}}


def _json_request(properties: dict[str, Any], required: list[str] | None = None) -> dict:
    """A required JSON object request body with these properties."""
    schema: dict[str, Any] = {"type": "object"}
    if required:
        schema["required"] = required
    schema["properties"] = properties
    return {"required": True, "content": {"application/json": {"schema": schema}}}


STD_ERRORS = {
    "400": _err("bad input"),
    "401": _err("not authenticated"),
    "404": _err("not found"),
    "409": _err("conflict (a folder stands there, or the parent is missing)"),
    "429": _err("too many failed logins"),
}
NODE = {
    "type": "object",
    "required": ["path", "name", "is_dir", "rev", "size", "modified", "etag", "status"],
    "properties": {
        "path": {"type": "string"},
        "name": {"type": "string"},
        "is_dir": {"type": "boolean"},
        "rev": {"type": ["string", "null"]},
        "size": {"type": "integer", "minimum": 0},
        "content_hash": {"type": ["string", "null"]},
        "modified": {"type": "string", "format": "date-time"},
        "etag": {"type": "string"},
        "status": {"type": "string", "enum": ["ok", "pending"]},
        "uploaded": {"type": "integer", "minimum": 0},
        "blocks": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id", "size"],
                "properties": {"id": {"type": "string"}, "size": {"type": "integer"}},
            },
        },
    },
}

OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "davdrive API",
        "version": "1",
        "description": "Revisions, downloads, uploads, trash and the change feed of a davdrive "
        "account. Paths are relative to the caller's home. Authenticate with HTTP Basic "
        "(account or device app password) or a Bearer device token.",
    },
    "servers": [{"url": "/"}],
    "security": [{"basic": []}, {"bearer": []}],
    "components": {
        "securitySchemes": {
            "basic": {"type": "http", "scheme": "basic"},
            "bearer": {"type": "http", "scheme": "bearer"},
        },
        "schemas": {
            "Error": {
                "type": "object",
                "required": ["error"],
                "properties": {
                    "error": {
                        "type": "object",
                        "required": ["code", "message"],
                        "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
                    }
                },
            },
            "Node": NODE,
            "Revision": {
                "type": "object",
                "required": ["rev", "size", "modified", "content_hash", "author", "pinned"],
                "properties": {
                    "rev": {"type": "string"},
                    "size": {"type": "integer", "minimum": 0},
                    "modified": {"type": "string", "format": "date-time"},
                    "created": {"type": "string", "format": "date-time"},
                    "content_hash": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                    "author": {
                        "type": "object",
                        "properties": {
                            "user": {"type": ["string", "null"]},
                            "device": {"type": ["string", "null"]},
                        },
                    },
                    "pinned": {"type": "boolean"},
                    "current": {"type": "boolean"},
                },
            },
            "Revisions": {
                "type": "object",
                "required": ["path", "revisions"],
                "properties": {
                    "path": {"type": "string"},
                    "revisions": {
                        "type": "array",
                        "items": {"$ref": "#/components/schemas/Revision"},
                    },
                },
            },
            "TrashList": {
                "type": "object",
                "required": ["items"],
                "properties": {
                    "items": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["id", "name", "path", "is_dir", "size", "deleted"],
                            "properties": {
                                "id": {"type": "string"},
                                "name": {"type": "string"},
                                "path": {"type": "string"},
                                "is_dir": {"type": "boolean"},
                                "size": {"type": "integer"},
                                "deleted": {"type": "string", "format": "date-time"},
                            },
                        },
                    }
                },
            },
            "Device": {
                "type": "object",
                "required": ["id", "name", "created", "last_seen", "last_cursor", "current"],
                "properties": {
                    "id": {"type": "integer"},
                    "name": {"type": "string"},
                    "created": {"type": "string", "format": "date-time"},
                    "last_seen": {"type": ["string", "null"], "format": "date-time"},
                    "last_cursor": {"type": "integer"},
                    "current": {"type": "boolean"},
                },
            },
            "DeviceList": {
                "type": "object",
                "required": ["devices"],
                "properties": {
                    "devices": {"type": "array", "items": {"$ref": "#/components/schemas/Device"}}
                },
            },
            "NewDevice": {
                "type": "object",
                "required": ["id", "name", "app_password", "token"],
                "properties": {
                    "id": {"type": "integer"},
                    "name": {"type": "string"},
                    "app_password": {"type": "string"},
                    "token": {"type": "string"},
                },
            },
            "Changes": {
                "type": "object",
                "required": ["changes", "cursor", "has_more"],
                "properties": {
                    "changes": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["id", "kind", "path", "at"],
                            "properties": {
                                "id": {"type": "integer"},
                                "kind": {"type": "string"},
                                "path": {"type": "string"},
                                "from_path": {"type": ["string", "null"]},
                                "rev": {"type": ["string", "null"]},
                                "is_dir": {"type": "boolean"},
                                "at": {"type": "string", "format": "date-time"},
                                "device": {"type": ["integer", "null"]},
                            },
                        },
                    },
                    "cursor": {"type": "string"},
                    "has_more": {"type": "boolean"},
                },
            },
        },
    },
    "paths": {
        "/api/v1/files/list_revisions": {
            "get": {
                "summary": "Revisions of a file, newest first, a page at a time",
                "description": "When `has_more` is true, pass `cursor` to get the next page.",
                "parameters": [
                    PATH_Q,
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
                    },
                    {
                        "name": "cursor",
                        "in": "query",
                        "description": "The `cursor` of the previous page (opaque)",
                        "schema": {"type": "string"},
                    },
                ],
                "responses": {
                    "200": {
                        "description": "One page of revisions",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "allOf": [
                                        {"$ref": "#/components/schemas/Revisions"},
                                        {
                                            "type": "object",
                                            "required": ["has_more", "cursor"],
                                            "properties": {
                                                "has_more": {"type": "boolean"},
                                                "cursor": {"type": ["string", "null"]},
                                            },
                                        },
                                    ]
                                }
                            }
                        },
                    },
                    **STD_ERRORS,
                },
            }
        },
        "/api/v1/files/download": {
            "get": {
                "summary": "Stream a file's current or given revision (Range supported)",
                "parameters": [
                    PATH_Q,
                    {"name": "rev", "in": "query", "schema": {"type": "string"}},
                ],
                "responses": {
                    "200": {
                        "description": "the content",
                        "content": {"application/octet-stream": {"schema": {}}},
                    },
                    "206": {
                        "description": "a byte range",
                        "content": {"application/octet-stream": {"schema": {}}},
                    },
                    "416": {"description": "range not satisfiable"},
                    **STD_ERRORS,
                },
            }
        },
        "/api/v1/files/restore": {
            "post": {
                "summary": "Make an old revision current as a new revision",
                "requestBody": _json_request(
                    {"path": {"type": "string"}, "rev": {"type": "string"}}, ["path", "rev"]
                ),
                "responses": {"200": _ok("Node"), "507": _err("over quota"), **STD_ERRORS},
            }
        },
        "/api/v1/files/pin": {
            "post": {
                "summary": "Mark a revision important (pruning keeps it)",
                "requestBody": _json_request(
                    {
                        "path": {"type": "string"},
                        "rev": {"type": "string"},
                        "pinned": {"type": "boolean"},
                    },
                    ["path", "rev"],
                ),
                "responses": {
                    "200": {
                        "description": "OK",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    },
                    **STD_ERRORS,
                },
            }
        },
        "/api/v1/files/metadata": {
            "get": {
                "summary": "Current revision, size, hash, status and block list",
                "parameters": [PATH_Q],
                "responses": {"200": _ok("Node"), **STD_ERRORS},
            }
        },
        "/api/v1/files/upload": {
            "post": {
                "summary": "Upload a file (media) or open a resumable (tus) session",
                "parameters": [
                    PATH_Q,
                    {
                        "name": "uploadType",
                        "in": "query",
                        "schema": {"type": "string", "enum": ["media", "resumable"]},
                    },
                    {"name": "mtime", "in": "query", "schema": {"type": "number"}},
                ],
                "requestBody": {
                    "content": {"application/octet-stream": {"schema": {}}},
                },
                "responses": {
                    "200": _ok("Node", "replaced an existing file"),
                    "201": _ok("Node", "created (media) or session created (resumable)"),
                    "412": _err("If-Match / If-None-Match failed"),
                    "413": _err("over the file size limit"),
                    "507": _err("over quota or out of disk"),
                    **STD_ERRORS,
                },
            }
        },
        "/api/v1/trash": {
            "get": {
                "summary": "Items in the trash, newest first",
                "responses": {"200": _ok("TrashList"), **STD_ERRORS},
            },
            "delete": {
                "summary": "Purge one item (id or path) or everything",
                "parameters": [
                    {"name": "id", "in": "query", "schema": {"type": "string"}},
                    {"name": "path", "in": "query", "schema": {"type": "string"}},
                ],
                "responses": {
                    "200": {
                        "description": "OK",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    },
                    **STD_ERRORS,
                },
            },
        },
        "/api/v1/trash/restore": {
            "post": {
                "summary": "Restore a trashed file or folder (with its contents)",
                "requestBody": _json_request(
                    {"id": {"type": "string"}, "path": {"type": "string"}}
                ),
                "responses": {"200": _ok("Node"), "507": _err("over quota"), **STD_ERRORS},
            }
        },
        "/api/v1/changes/latest": {
            "get": {
                "summary": "The cursor that stands for now",
                "responses": {
                    "200": {
                        "description": "OK",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["cursor"],
                                    "properties": {"cursor": {"type": "string"}},
                                }
                            }
                        },
                    },
                    **STD_ERRORS,
                },
            }
        },
        "/api/v1/changes": {
            "get": {
                "summary": "Every change after a cursor, in commit order",
                "parameters": [
                    {"name": "cursor", "in": "query", "schema": {"type": "string"}},
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 2000},
                    },
                ],
                "responses": {
                    "200": _ok("Changes"),
                    "410": _err("cursor expired: list again and start from /changes/latest"),
                    **STD_ERRORS,
                },
            }
        },
        "/api/v1/longpoll": {
            "get": {
                "summary": "Wait until the journal passes the cursor",
                "parameters": [
                    {
                        "name": "cursor",
                        "in": "query",
                        "required": True,
                        "schema": {"type": "string"},
                    },
                    {
                        "name": "timeout",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 120},
                    },
                ],
                "responses": {
                    "200": {
                        "description": "OK",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["changes"],
                                    "properties": {
                                        "changes": {"type": "boolean"},
                                        "backoff": {"type": "integer"},
                                    },
                                }
                            }
                        },
                    },
                    **STD_ERRORS,
                },
            }
        },
        "/api/v1/devices": {
            "get": {
                "summary": "The caller's devices, by name (`current`: the one asking)",
                "responses": {"200": _ok("DeviceList"), **STD_ERRORS},
            },
            "post": {
                "summary": "Register a device: its app password and bearer token, shown once",
                "description": "Needs the account password (403 with a device's credentials).",
                "requestBody": _json_request(
                    {"name": {"type": "string", "minLength": 1, "maxLength": 128}}, ["name"]
                ),
                "responses": {
                    **STD_ERRORS,
                    "201": _ok("NewDevice", "created"),
                    "403": _err("a device's credentials cannot register devices"),
                    "409": _err("the account has a device of that name"),
                },
            },
        },
        "/api/v1/devices/{id}": {
            "delete": {
                "operationId": "revokeDevice",
                "summary": "Revoke a device: its app password and token stop working at once",
                "description": "A device's credentials may revoke only that device itself.",
                "parameters": [
                    {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}
                ],
                "responses": {
                    "204": {"description": "revoked"},
                    "403": _err("a device's credentials cannot revoke another device"),
                    **STD_ERRORS,
                },
            }
        },
        "/api/v1/capabilities": {
            "get": {
                "summary": "Server facts a sync client needs (chunking parameters)",
                "security": [],
                "responses": {
                    "200": {
                        "description": "OK",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    }
                },
            }
        },
    },
}


OPENAPI["paths"].update(openapi_tree.PATHS)
OPENAPI["paths"].update(openapi_blocks.PATHS)


@bp.get("/openapi.json")
def openapi() -> Any:
    return jsonify(OPENAPI)


@bp.get("/capabilities")
def capabilities() -> Any:
    grace = getattr(services().config, "staged_block_grace", STAGED_GRACE)
    return jsonify(
        {
            "api": 1,
            "chunking": CHUNK_PARAMS,
            "blocks": {
                "max_check_hashes": MAX_CHECK,
                "max_block_size": MAX_SIZE,
                "max_commit_blocks": MAX_COMMIT_BLOCKS,
                "staged_grace_seconds": grace,
            },
            "tus": {"version": "1.0.0"},
        }
    )
