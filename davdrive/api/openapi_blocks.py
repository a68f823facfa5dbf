"""OpenAPI entries of the block API of delta sync (``/blocks/check``, ``/blocks/{id}``,
``/files/commit``; ``api.blocks``); ``meta.OPENAPI`` merges them. An error of these routes
may carry ``details`` (``missing`` block ids, ``current_rev`` of a conflict)."""

from __future__ import annotations

from typing import Any

from davdrive.protocol import MAX_SIZE
from davdrive.service.block_api import MAX_CHECK
from davdrive.service.delta_commit import MAX_COMMIT_BLOCKS

NODE_REF = {"$ref": "#/components/schemas/Node"}
BLOCK_ID = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
SHA256 = {"type": "string", "pattern": "^[0-9a-fA-F]{64}$"}
ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {
                    "type": "object",
                    "properties": {
                        "missing": {"type": "array", "items": BLOCK_ID},
                        "current_rev": {"type": ["string", "null"]},
                    },
                },
            },
        }
    },
}
BLOCK_PARAM = {"name": "id", "in": "path", "required": True, "schema": BLOCK_ID}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _err(description: str) -> dict[str, Any]:
    return _json(ERROR, description)


ERRORS = {
    "400": _err("bad input"),
    "401": _err("not authenticated"),
    "404": _err("not found"),
    "429": _err("too many failed logins"),
}
COMMIT_BODY = {
    "type": "object",
    "required": ["path", "blocks", "size", "content_hash", "base_rev"],
    "properties": {
        "path": {"type": "string", "minLength": 1},
        "blocks": {"type": "array", "items": BLOCK_ID, "maxItems": MAX_COMMIT_BLOCKS},
        "size": {"type": "integer", "minimum": 0},
        "mtime": {"type": ["number", "null"], "minimum": 0},
        "content_hash": SHA256,
        "base_rev": {"type": ["string", "null"], "pattern": "^[0-9]{1,18}$"},
    },
}

PATHS: dict[str, Any] = {
    "/api/v1/blocks/check": {
        "post": {
            "summary": "Which of these blocks the caller's account does not hold",
            "description": f"At most {MAX_CHECK} ids per call. Held: a block of one of the "
            "account's files (kept revisions and trash included) or one uploaded with PUT "
            "and not expired. The answer lists the ids not held, in the order given, once each.",
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["hashes"],
                            "properties": {
                                "hashes": {
                                    "type": "array",
                                    "items": BLOCK_ID,
                                    "maxItems": MAX_CHECK,
                                }
                            },
                        }
                    }
                },
            },
            "responses": {
                "200": _json(
                    {
                        "type": "object",
                        "required": ["missing"],
                        "properties": {"missing": {"type": "array", "items": BLOCK_ID}},
                    }
                ),
                **ERRORS,
            },
        }
    },
    "/api/v1/blocks/{id}": {
        "put": {
            "summary": "Upload one block (its plaintext) into the caller's account",
            "description": f"The body is the block, 1 to {MAX_SIZE} bytes; its BLAKE3-256 hex "
            "must be the id. Stored sealed and durably before the answer; kept for the grace "
            "period (capabilities: blocks.staged_grace_seconds) unless a commit uses it.",
            "parameters": [BLOCK_PARAM],
            "requestBody": {
                "required": True,
                "content": {
                    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
                },
            },
            "responses": {
                "200": _json(
                    {
                        "type": "object",
                        "required": ["id", "size", "stored"],
                        "properties": {
                            "id": BLOCK_ID,
                            "size": {"type": "integer"},
                            "stored": {"type": "boolean"},
                        },
                    },
                    "held already: nothing written",
                ),
                "201": _json(
                    {
                        "type": "object",
                        "required": ["id", "size", "stored"],
                        "properties": {
                            "id": BLOCK_ID,
                            "size": {"type": "integer"},
                            "stored": {"type": "boolean"},
                        },
                    },
                    "stored",
                ),
                "409": _err("the block was collected while it was stored: send it again"),
                "413": _err(f"larger than {MAX_SIZE} bytes"),
                "507": _err("over quota or out of disk"),
                **ERRORS,
            },
        },
        "get": {
            "summary": "A block's plaintext, when a file the caller may read uses it",
            "description": "404 for a block no readable file (own, or shared with the caller) "
            "uses, exactly as for an unknown id.",
            "parameters": [BLOCK_PARAM],
            "responses": {
                "200": {
                    "description": "the block",
                    "content": {
                        "application/octet-stream": {
                            "schema": {"type": "string", "format": "binary"}
                        }
                    },
                },
                **ERRORS,
            },
        },
    },
    "/api/v1/files/commit": {
        "post": {
            "summary": "Commit a revision of a file from blocks the account holds",
            "description": "`blocks`: ids in order; `size`: their total length; "
            "`content_hash`: SHA-256 of the content (checked by reading the blocks back); "
            "`base_rev`: the revision the change started from, null to create. A stale "
            "`base_rev` (or null where a file exists) answers 409 with "
            "`error.details.current_rev`; blocks not held answer 400 with "
            "`error.details.missing`.",
            "parameters": [{"name": "If-Match", "in": "header", "schema": {"type": "string"}}],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": COMMIT_BODY}},
            },
            "responses": {
                "200": _json(NODE_REF, "a new revision of an existing file"),
                "201": _json(NODE_REF, "created"),
                "403": _err("not allowed (the root, or missing rights)"),
                "409": _err("stale base_rev, a file or folder in the way, or no parent folder"),
                "412": _err("If-Match does not match"),
                "413": _err("over the file size limit"),
                "423": _err("locked: send the lock token (If: (<token>) or Lock-Token)"),
                "507": _err("over quota or out of disk"),
                **ERRORS,
            },
        }
    },
}

__all__ = ["PATHS"]
