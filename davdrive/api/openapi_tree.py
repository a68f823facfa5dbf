"""OpenAPI entries of the namespace routes (``files/list`` … ``/account``), of ``/shares``,
of ``/links`` and of tus 1.0 at ``/api/v1/uploads``; ``meta.OPENAPI`` merges them.
``tests/api/test_openapi_routes.py`` checks that every served route and method is documented,
so the document cannot drift."""

from __future__ import annotations

from typing import Any

NODE_REF = {"$ref": "#/components/schemas/Node"}
ERROR_REF = {"$ref": "#/components/schemas/Error"}
PATH_Q = {"name": "path", "in": "query", "required": True, "schema": {"type": "string"}}
TUS_HEADER = {
    "name": "Tus-Resumable",
    "in": "header",
    "required": True,
    "schema": {"type": "string", "enum": ["1.0.0"]},
}
SID = {"name": "sid", "in": "path", "required": True, "schema": {"type": "string"}}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _err(description: str) -> dict[str, Any]:
    return _json(ERROR_REF, description)


ERRORS = {
    "400": _err("bad input"),
    "401": _err("not authenticated"),
    "403": _err("not allowed (the root, or missing rights)"),
    "404": _err("not found"),
    "409": _err("conflict (a file or folder in the way, or the parent is missing)"),
    "423": _err("locked: send the lock token (If: (<token>) or Lock-Token)"),
    "429": _err("too many failed logins"),
}
PRECONDITION = {"412": _err("if_rev / If-Match does not match, or the destination exists")}
IF_MATCH = {"name": "If-Match", "in": "header", "schema": {"type": "string"}}
LOCK_TOKEN = {"name": "Lock-Token", "in": "header", "schema": {"type": "string"}}
ENTRY = {
    "allOf": [
        NODE_REF,
        {
            "type": "object",
            "required": ["id", "permissions"],
            "properties": {
                "id": {"type": "string"},
                "permissions": {
                    "type": "array",
                    "items": {"enum": ["read", "write", "create", "delete", "share"]},
                },
            },
        },
    ]
}
LISTING = {
    "type": "object",
    "required": ["path", "entries", "has_more", "cursor"],
    "properties": {
        "path": {"type": "string"},
        "entries": {"type": "array", "items": ENTRY},
        "has_more": {"type": "boolean"},
        "cursor": {"type": ["string", "null"]},
        "changes_cursor": {"type": ["string", "null"]},
    },
}
TRANSFER_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["from", "to"],
                "properties": {
                    "from": {"type": "string", "minLength": 1},
                    "to": {"type": "string", "minLength": 1},
                    "overwrite": {"type": "boolean"},
                    "if_rev": {"type": "string"},
                },
            }
        }
    },
}
TRANSFERRED = {
    "allOf": [
        ENTRY,
        {
            "type": "object",
            "required": ["replaced"],
            "properties": {"replaced": {"type": "boolean"}},
        },
    ]
}
PATH_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["path"],
                "properties": {
                    "path": {"type": "string", "minLength": 1},
                    "if_rev": {"type": "string"},
                },
            }
        }
    },
}
NO_CONTENT = {"description": "done (tus headers: Upload-Offset, Tus-Resumable)"}
PERMS_IN = {
    "description": "read 1, write 2, create 4, delete 8 (a bitmask; read is required), or "
    "their names",
    "oneOf": [
        {"type": "integer", "minimum": 1, "maximum": 15},
        {"type": "array", "items": {"enum": ["read", "write", "create", "delete"]}},
    ],
}
SHARE = {
    "type": "object",
    "required": [
        "id",
        "owner",
        "user",
        "path",
        "name",
        "type",
        "permissions",
        "permission_names",
        "mount_path",
        "created",
    ],
    "properties": {
        "id": {"type": "integer"},
        "owner": {"type": "string"},
        "user": {"type": "string", "description": "the recipient's login"},
        "path": {
            "type": "string",
            "description": "where the caller sees the node: the owner, in its own files; the "
            "recipient, its mount point",
        },
        "name": {"type": "string"},
        "type": {"type": "string", "enum": ["folder", "file"]},
        "permissions": {"type": "integer", "minimum": 1, "maximum": 15},
        "permission_names": {
            "type": "array",
            "items": {"enum": ["read", "write", "create", "delete"]},
        },
        "mount_path": {"type": "string", "description": "where the recipient sees the node"},
        "created": {"type": "string", "format": "date-time"},
    },
}
SHARE_ID = {
    "name": "id",
    "in": "path",
    "required": True,
    "schema": {"type": "integer", "format": "int64"},
}
SHARE_ERRORS = {
    "400": _err("bad input (the root, yourself, bad permissions)"),
    "401": _err("not authenticated"),
    "403": _err("re-sharing what was shared with you"),
    "404": _err("no such file, folder, user or share (or not yours)"),
    "429": _err("too many failed logins"),
}
DATE_TIME_OR_NULL = {"type": ["string", "null"], "format": "date-time"}
LINK = {
    "type": "object",
    "required": [
        "id",
        "type",
        "url",
        "dav_url",
        "token",
        "path",
        "name",
        "item_type",
        "has_password",
        "expires",
        "max_uses",
        "uses",
        "label",
        "created",
        "revoked",
        "active",
    ],
    "properties": {
        "id": {"type": "integer"},
        "type": {"type": "string", "enum": ["view", "edit", "upload", "drop"]},
        "url": {"type": "string", "description": "the link's web page"},
        "dav_url": {"type": "string", "description": "the link as a WebDAV folder or file"},
        "token": {"type": "string", "pattern": "^[A-Za-z0-9_-]{22,}$"},
        "path": {
            "type": "string",
            "description": "the node's path in your files (empty while it is in the trash)",
        },
        "name": {"type": "string"},
        "item_type": {"type": "string", "enum": ["folder", "file"]},
        "has_password": {"type": "boolean"},
        "expires": DATE_TIME_OR_NULL,
        "max_uses": {"type": ["integer", "null"], "minimum": 1},
        "uses": {"type": "integer", "minimum": 0},
        "label": {"type": ["string", "null"]},
        "created": {"type": "string", "format": "date-time"},
        "revoked": DATE_TIME_OR_NULL,
        "active": {
            "type": "boolean",
            "description": "not revoked, not expired and not used up",
        },
    },
}
EXPIRES_IN = {
    "description": "when the link stops working: an RFC 3339 time or seconds since the epoch, "
    "in the future; null: never",
    "oneOf": [
        {"type": "string", "format": "date-time"},
        {"type": "number"},
        {"type": "null"},
    ],
}
LINK_SETTINGS = {
    "password": {
        "description": "holders must give it (null: none); never shown again",
        "type": ["string", "null"],
        "minLength": 1,
    },
    "expires": EXPIRES_IN,
    "max_uses": {
        "description": "files or archives downloaded plus files uploaded (null: no limit)",
        "type": ["integer", "null"],
        "minimum": 1,
        "maximum": 2147483647,
    },
    "label": {"type": ["string", "null"], "maxLength": 255},
}
LINK_ID = {
    "name": "id",
    "in": "path",
    "required": True,
    "schema": {"type": "integer", "format": "int64"},
}
LINK_ERRORS = {
    "400": _err("bad input (the root, a bad type or setting, an upload or drop link to a file)"),
    "401": _err("not authenticated"),
    "403": _err("linking to what was shared with you"),
    "404": _err("no such file, folder or link (or not yours)"),
    "429": _err("too many failed logins"),
}

PATHS: dict[str, Any] = {
    "/api/v1/openapi.json": {
        "get": {
            "summary": "This document (OpenAPI 3.1)",
            "security": [],
            "responses": {"200": _json({"type": "object"})},
        }
    },
    "/api/v1/files/list": {
        "get": {
            "summary": "Members of a folder by name, or (recursive) every entry below it",
            "description": "Pages: pass `cursor` while `has_more`. A recursive listing is "
            "ordered by path (a folder before its members); its last page gives "
            "`changes_cursor`, the journal position to follow `/changes` from (the answer to a "
            "410 reset).",
            "parameters": [
                PATH_Q,
                {"name": "cursor", "in": "query", "schema": {"type": "string"}},
                {
                    "name": "limit",
                    "in": "query",
                    "schema": {"type": "integer", "minimum": 1, "maximum": 2000},
                },
                {"name": "recursive", "in": "query", "schema": {"type": "boolean"}},
            ],
            "responses": {"200": _json(LISTING), **ERRORS},
        }
    },
    "/api/v1/files/create_folder": {
        "post": {
            "summary": "Create a folder",
            "parameters": [LOCK_TOKEN],
            "requestBody": PATH_BODY,
            "responses": {"201": _json(ENTRY, "created"), **ERRORS},
        }
    },
    "/api/v1/files/archive": {
        "post": {
            "summary": "Archive now: move a file's blocks (every version) to the cold tier",
            "description": (
                "Blocks a current or pinned version of another file uses stay hot. Reading an "
                "archived file from a cold tier that needs a restore (S3 GLACIER, DEEP_ARCHIVE) "
                "answers 409 `archived` with Retry-After and requests the restore."
            ),
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["path"],
                            "properties": {"path": {"type": "string", "minLength": 1}},
                        }
                    }
                },
            },
            "responses": {
                "200": _json(
                    {
                        "type": "object",
                        "required": ["path", "tier", "blocks", "bytes", "kept", "failed"],
                        "properties": {
                            "path": {"type": "string"},
                            "tier": {"type": "string"},
                            "blocks": {"type": "integer"},
                            "bytes": {"type": "integer"},
                            "kept": {"type": "integer"},
                            "failed": {"type": "integer"},
                        },
                    }
                ),
                **ERRORS,
                "409": _err("the server has no cold tier (archive is off)"),
            },
        }
    },
    "/api/v1/files/delete": {
        "post": {
            "summary": "Move a file or folder to the trash",
            "parameters": [IF_MATCH, LOCK_TOKEN],
            "requestBody": PATH_BODY,
            "responses": {
                "200": _json(
                    {
                        "type": "object",
                        "required": ["path", "trashed"],
                        "properties": {"path": {"type": "string"}, "trashed": {"type": "boolean"}},
                    }
                ),
                **ERRORS,
                **PRECONDITION,
            },
        }
    },
    "/api/v1/files/move": {
        "post": {
            "summary": "Rename or move (a file over a file becomes its new revision)",
            "parameters": [IF_MATCH, LOCK_TOKEN],
            "requestBody": TRANSFER_BODY,
            "responses": {
                "200": _json(TRANSFERRED, "moved over an existing item"),
                "201": _json(TRANSFERRED, "moved"),
                **ERRORS,
                **PRECONDITION,
            },
        }
    },
    "/api/v1/files/copy": {
        "post": {
            "summary": "Copy (no data is copied: blocks are shared)",
            "parameters": [IF_MATCH, LOCK_TOKEN],
            "requestBody": TRANSFER_BODY,
            "responses": {
                "200": _json(TRANSFERRED, "copied over an existing item"),
                "201": _json(TRANSFERRED, "copied"),
                "507": _err("over quota"),
                **ERRORS,
                **PRECONDITION,
            },
        }
    },
    "/api/v1/account": {
        "get": {
            "summary": "Login, quota and what the bytes are spent on",
            "description": "`used` (what the quota counts) is the current files; `usage` "
            "splits logical bytes into current files, older revisions and trash; `stored` is "
            "what the account's blocks take in the store after dedup and compression.",
            "responses": {
                "200": _json(
                    {
                        "type": "object",
                        "required": ["login", "quota", "used", "available", "usage", "devices"],
                        "properties": {
                            "login": {"type": "string"},
                            "quota": {"type": "integer"},
                            "used": {"type": "integer"},
                            "available": {"type": "integer"},
                            "usage": {
                                "type": "object",
                                "required": ["current", "history", "trash"],
                                "properties": {
                                    "current": {"type": "integer"},
                                    "history": {"type": "integer"},
                                    "trash": {"type": "integer"},
                                },
                            },
                            "stored": {"type": "integer"},
                            "devices": {"type": "integer"},
                            "quota_rule": {"type": "string"},
                        },
                    }
                ),
                **ERRORS,
            },
        }
    },
    "/api/v1/shares": {
        "get": {
            "summary": "The shares you gave, or with `shared_with_me=true` those you received",
            "parameters": [
                {
                    "name": "path",
                    "in": "query",
                    "description": "only the share(s) of this node (received: mounted here)",
                    "schema": {"type": "string"},
                },
                {"name": "shared_with_me", "in": "query", "schema": {"type": "boolean"}},
            ],
            "responses": {
                "200": _json(
                    {
                        "type": "object",
                        "required": ["shares"],
                        "properties": {"shares": {"type": "array", "items": SHARE}},
                    }
                ),
                **SHARE_ERRORS,
            },
        },
        "post": {
            "summary": "Share a file or folder of yours with another user",
            "description": "The recipient sees it at the root of its files (a name clash gets a "
            "suffix like ` (2)`). Files in it count against the owner's quota.",
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["path", "user"],
                            "properties": {
                                "path": {"type": "string", "minLength": 1},
                                "user": {"type": "string", "minLength": 1},
                                "permissions": PERMS_IN,
                            },
                        }
                    }
                },
            },
            "responses": {
                "201": _json(SHARE, "created (Location names the share)"),
                **SHARE_ERRORS,
                "409": _err("that user has a share of this node already"),
            },
        },
    },
    "/api/v1/shares/{id}": {
        "get": {
            "summary": "One share (its owner or recipient only)",
            "parameters": [SHARE_ID],
            "responses": {"200": _json(SHARE), **SHARE_ERRORS},
        },
        "patch": {
            "summary": "Change a share's permissions (its owner only)",
            "parameters": [SHARE_ID],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["permissions"],
                            "properties": {"permissions": PERMS_IN},
                        }
                    }
                },
            },
            "responses": {"200": _json(SHARE), **SHARE_ERRORS},
        },
        "delete": {
            "summary": "End a share: the owner revokes it, or the recipient declines it",
            "description": "The owner's files stay; the recipient's mount point goes.",
            "parameters": [SHARE_ID],
            "responses": {"204": {"description": "ended"}, **SHARE_ERRORS},
        },
    },
    "/api/v1/links": {
        "get": {
            "summary": "Your share links, oldest first (revoked, expired and used-up ones too)",
            "parameters": [
                {
                    "name": "path",
                    "in": "query",
                    "description": "only the links of this node",
                    "schema": {"type": "string"},
                },
            ],
            "responses": {
                "200": _json(
                    {
                        "type": "object",
                        "required": ["links"],
                        "properties": {"links": {"type": "array", "items": LINK}},
                    }
                ),
                **LINK_ERRORS,
            },
        },
        "post": {
            "summary": "Make a share link to a file or folder of yours",
            "description": "`view` reads; `edit` reads and writes; `upload` (a folder) adds "
            "and lists; `drop` (a folder) only adds. Whoever holds `url` reaches the item until "
            "the link is revoked, expires or is used up.",
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["path", "type"],
                            "properties": {
                                "path": {"type": "string", "minLength": 1},
                                "type": {"enum": ["view", "edit", "upload", "drop"]},
                                **LINK_SETTINGS,
                            },
                        }
                    }
                },
            },
            "responses": {"201": _json(LINK, "created (Location names the link)"), **LINK_ERRORS},
        },
    },
    "/api/v1/links/{id}": {
        "get": {
            "summary": "One of your links",
            "parameters": [LINK_ID],
            "responses": {"200": _json(LINK), **LINK_ERRORS},
        },
        "patch": {
            "summary": "Change a link's password, expiry, maximum uses or label",
            "description": "Only the keys given change; null clears one.",
            "parameters": [LINK_ID],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {"type": "object", "properties": LINK_SETTINGS},
                    }
                },
            },
            "responses": {"200": _json(LINK), **LINK_ERRORS},
        },
        "delete": {
            "summary": "Revoke a link: its token stops working at once",
            "description": "The link stays in your list, with `revoked` set.",
            "parameters": [LINK_ID],
            "responses": {"204": {"description": "revoked"}, **LINK_ERRORS},
        },
    },
    "/api/v1/uploads": {
        "options": {
            "summary": "tus 1.0 discovery: Tus-Version, Tus-Extension, Tus-Max-Size",
            "security": [],
            "responses": {"204": NO_CONTENT},
        },
        "post": {
            "summary": "tus creation: open a resumable upload (Location names the session)",
            "description": "The target path comes from `?path=` or the Upload-Metadata key "
            "`path` (base64, tus style); `mtime` (seconds) may ride along.",
            "parameters": [
                TUS_HEADER,
                {
                    "name": "Upload-Length",
                    "in": "header",
                    "required": True,
                    "schema": {"type": "integer", "minimum": 0},
                },
                {"name": "Upload-Metadata", "in": "header", "schema": {"type": "string"}},
                {"name": "path", "in": "query", "schema": {"type": "string"}},
            ],
            "responses": {
                "201": {"description": "created (Location, Upload-Offset: 0, Upload-Expires)"},
                "412": _err("unsupported Tus-Resumable version"),
                "413": _err("over the file size limit"),
                "507": _err("over quota"),
                **ERRORS,
            },
        },
    },
    "/api/v1/uploads/{sid}": {
        "head": {
            "summary": "tus: the session's Upload-Offset (where to resume)",
            "parameters": [SID, TUS_HEADER],
            "responses": {
                "200": {"description": "Upload-Offset, Upload-Length"},
                "412": _err("unsupported Tus-Resumable version"),
                **ERRORS,
            },
        },
        "get": {
            "summary": "The session as JSON (path, length, offset)",
            "parameters": [SID],
            "responses": {
                "200": _json(
                    {
                        "type": "object",
                        "required": ["id", "path", "length", "offset", "status"],
                        "properties": {
                            "id": {"type": "string"},
                            "path": {"type": "string"},
                            "length": {"type": "integer"},
                            "offset": {"type": "integer"},
                            "status": {"type": "string"},
                        },
                    }
                ),
                **ERRORS,
            },
        },
        "patch": {
            "operationId": "tusPatch",
            "summary": "tus: append bytes at Upload-Offset; the last append commits the file",
            "parameters": [
                SID,
                TUS_HEADER,
                {
                    "name": "Upload-Offset",
                    "in": "header",
                    "required": True,
                    "schema": {"type": "integer", "minimum": 0},
                },
                {"name": "Upload-Checksum", "in": "header", "schema": {"type": "string"}},
                LOCK_TOKEN,
            ],
            "requestBody": {
                "required": True,
                "content": {"application/offset+octet-stream": {"schema": {}}},
            },
            "responses": {
                "204": NO_CONTENT,
                "412": _err("unsupported Tus-Resumable version, or the file changed"),
                "415": _err("Content-Type must be application/offset+octet-stream"),
                "460": _err("checksum mismatch"),
                "507": _err("over quota or out of disk"),
                **ERRORS,
            },
        },
        "delete": {
            "summary": "tus termination: cancel the upload (its staged blocks are reclaimed)",
            "parameters": [SID, TUS_HEADER],
            "responses": {
                "204": NO_CONTENT,
                "412": _err("unsupported Tus-Resumable version"),
                **ERRORS,
            },
        },
    },
}

SESSION = _json(
    {
        "type": "object",
        "required": ["login", "csrf", "device_id", "idle_timeout"],
        "properties": {
            "login": {"type": "string"},
            "csrf": {"type": "string", "description": "send it as X-CSRF-Token"},
            "device_id": {"type": "integer"},
            "idle_timeout": {"type": "integer", "description": "seconds"},
        },
    },
    "the session (the cookie `davdrive_session` carries it)",
)
SESSION_PATHS: dict[str, Any] = {
    "/api/v1/session": {
        "post": {
            "summary": "Sign the web app in with the account password (sets the session cookie)",
            "security": [],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["login", "password"],
                            "properties": {
                                "login": {"type": "string"},
                                "password": {"type": "string"},
                            },
                        }
                    }
                },
            },
            "responses": {
                "200": SESSION,
                "400": _err("bad input (a JSON body with login and password)"),
                "401": _err("wrong login or password"),
                "403": _err("from another site (Origin)"),
                "429": _err("too many failed logins (Retry-After)"),
            },
        },
        "get": {
            "summary": "The session of the cookie, with its CSRF token",
            "security": [],
            "responses": {"200": SESSION, "401": _err("no valid session cookie")},
        },
        "delete": {
            "summary": "Sign out: the session's device is revoked and the cookie cleared",
            "description": "A no-op without a valid session; with one it needs X-CSRF-Token.",
            "security": [],
            "responses": {
                "204": {"description": "signed out"},
                "403": _err("missing or wrong X-CSRF-Token"),
            },
        },
    },
    "/api/v1/files/download_zip": {
        "get": {
            "summary": "Files and folders as one zip stream (each under its own name)",
            "parameters": [
                {
                    "name": "path",
                    "in": "query",
                    "required": True,
                    "style": "form",
                    "explode": True,
                    "schema": {
                        "type": "array",
                        "items": {"type": "string"},
                        "minItems": 1,
                        "maxItems": 1000,
                    },
                }
            ],
            "responses": {
                "200": {
                    "description": "the archive (stored members)",
                    "content": {"application/zip": {"schema": {}}},
                },
                **ERRORS,
                "414": {
                    "description": "the URL passes the server's 64 KiB request-head limit (the "
                    "HTTP server answers before the API): zip fewer paths, or their folder",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                },
            },
        }
    },
}
PATHS.update(SESSION_PATHS)

__all__ = ["PATHS"]
