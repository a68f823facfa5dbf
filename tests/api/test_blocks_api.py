"""The block API of delta sync against the real server: chunk → check → put the missing
blocks → commit; a 100-byte change in a 20 MiB file uploads a few blocks only; the first
writer wins on base_rev; blocks are read only through files the caller may read."""

from __future__ import annotations

import hashlib
import random
import threading

import jsonschema
import pytest
import requests
from blake3 import blake3

from davdrive.blockstore.chunker import Chunker
from davdrive.protocol import CHUNK_PARAMS, MAX_SIZE

MiB = 1 << 20


@pytest.fixture
def alice(live_server):
    s = requests.Session()
    s.auth = live_server.auth("alice")
    s.base = f"{live_server.url}/api/v1"  # type: ignore[attr-defined]
    return s


@pytest.fixture
def bob(live_server):
    s = requests.Session()
    s.auth = live_server.auth("bob")
    s.base = f"{live_server.url}/api/v1"  # type: ignore[attr-defined]
    return s


def url(s, path: str) -> str:
    return f"{s.base}{path}"


def conforms(s, resp: requests.Response, path: str, method: str) -> None:
    """The JSON body matches what /api/v1/openapi.json publishes for that operation."""
    doc = s.get(url(s, "/openapi.json")).json()
    schema = doc["paths"][path][method]["responses"][str(resp.status_code)]["content"]
    schema = schema["application/json"]["schema"]
    jsonschema.validate(resp.json(), {**schema, "components": doc["components"]})


def chunk(data: bytes) -> list[tuple[str, bytes]]:
    """(id, block) as a sync client cuts them (the published parameters)."""
    chunker = Chunker()
    blocks = [*chunker.feed(data), *chunker.finish()]
    return [(blake3(b).hexdigest(), b) for b in blocks]


def sync_up(s, path: str, data: bytes, base_rev: str | None) -> tuple[requests.Response, int]:
    """The client's delta flow: check, put what is missing, commit; (commit answer, bytes
    sent in PUTs)."""
    blocks = chunk(data)
    check = s.post(url(s, "/blocks/check"), json={"hashes": [h for h, _ in blocks]})
    assert check.status_code == 200, check.text
    conforms(s, check, "/api/v1/blocks/check", "post")
    missing = set(check.json()["missing"])
    sent = 0
    for h, b in blocks:
        if h in missing:
            put = s.put(
                url(s, f"/blocks/{h}"),
                data=b,
                headers={"Content-Type": "application/octet-stream"},
            )
            assert put.status_code == 201, put.text
            conforms(s, put, "/api/v1/blocks/{id}", "put")
            missing.discard(h)
            sent += len(b)
    commit = s.post(
        url(s, "/files/commit"),
        json={
            "path": path,
            "blocks": [h for h, _ in blocks],
            "size": len(data),
            "mtime": 1_700_000_000,
            "content_hash": hashlib.sha256(data).hexdigest(),
            "base_rev": base_rev,
        },
    )
    return commit, sent


def test_capabilities_publish_the_block_api_limits(alice):
    caps = requests.get(url(alice, "/capabilities")).json()
    assert caps["chunking"] == CHUNK_PARAMS
    assert caps["blocks"]["max_check_hashes"] == 10_000
    assert caps["blocks"]["max_block_size"] == MAX_SIZE
    assert caps["blocks"]["staged_grace_seconds"] == 24 * 3600


def test_delta_sync_uploads_only_the_changed_blocks(alice, live_server):
    rng = random.Random(11)
    v1 = rng.randbytes(20 * MiB)
    cursor = alice.get(url(alice, "/changes/latest")).json()["cursor"]
    created, sent = sync_up(alice, "/big.bin", v1, None)
    assert created.status_code == 201, created.text
    conforms(alice, created, "/api/v1/files/commit", "post")
    node = created.json()
    assert node["size"] == len(v1) and node["content_hash"] == hashlib.sha256(v1).hexdigest()
    assert sent == len(v1)
    feed = alice.get(url(alice, "/changes"), params={"cursor": cursor}).json()
    assert [(c["kind"], c["path"]) for c in feed["changes"]] == [("created", "/big.bin")]

    # 100 bytes change in the middle: a block or two travel, not the file
    v2 = bytearray(v1)
    v2[10 * MiB : 10 * MiB + 100] = rng.randbytes(100)
    v2 = bytes(v2)
    missing = alice.post(
        url(alice, "/blocks/check"), json={"hashes": [h for h, _ in chunk(v2)]}
    ).json()["missing"]
    assert 1 <= len(missing) <= 3
    result: dict[str, requests.Response] = {}
    poll = threading.Thread(
        target=lambda: result.setdefault(
            "r",
            alice.get(url(alice, "/longpoll"), params={"cursor": feed["cursor"], "timeout": 30}),
        )
    )
    poll.start()
    updated, sent = sync_up(alice, "/big.bin", v2, node["rev"])
    assert updated.status_code == 200, updated.text
    conforms(alice, updated, "/api/v1/files/commit", "post")
    assert sent < len(v2) // 4, f"{sent} bytes sent for a 100-byte change"
    assert updated.json()["rev"] != node["rev"]
    poll.join(15)
    assert result["r"].json() == {"changes": True}  # the long-poll saw the commit
    dav = requests.get(live_server.dav("alice") + "big.bin", auth=live_server.auth("alice"))
    assert dav.status_code == 200 and dav.content == v2

    # a second writer from the old revision loses, and learns the current one
    stale, _ = sync_up(alice, "/big.bin", v1, node["rev"])
    assert stale.status_code == 409
    conforms(alice, stale, "/api/v1/files/commit", "post")
    assert stale.json()["error"]["details"]["current_rev"] == updated.json()["rev"]
    exists, _ = sync_up(alice, "/big.bin", v1, None)
    assert exists.status_code == 409
    assert exists.json()["error"]["details"]["current_rev"] == updated.json()["rev"]


def test_bad_input_and_missing_blocks(alice):
    block = b"x" * 1000
    h = blake3(block).hexdigest()
    for body in ({"hashes": ["nothex"]}, {"hashes": [h.upper()]}, {"hashes": [h] * 10_001}, {}):
        r = alice.post(url(alice, "/blocks/check"), json=body)
        assert r.status_code == 400, body
        conforms(alice, r, "/api/v1/blocks/check", "post")
    wrong = alice.put(url(alice, f"/blocks/{blake3(b'other').hexdigest()}"), data=block)
    assert wrong.status_code == 400
    too_big = b"\0" * (MAX_SIZE + 1)
    r = alice.put(url(alice, f"/blocks/{blake3(too_big).hexdigest()}"), data=too_big)
    assert r.status_code == 413
    assert alice.put(url(alice, f"/blocks/{h}"), data=block).status_code == 201
    again = alice.put(url(alice, f"/blocks/{h}"), data=block)
    assert again.status_code == 200 and again.json()["stored"] is False
    ghost = blake3(b"never sent").hexdigest()
    body = {
        "path": "/f.txt",
        "blocks": [h, ghost],
        "size": 2000,
        "content_hash": hashlib.sha256(block * 2).hexdigest(),
        "base_rev": None,
    }
    r = alice.post(url(alice, "/files/commit"), json=body)
    assert r.status_code == 400 and r.json()["error"]["details"]["missing"] == [ghost]
    conforms(alice, r, "/api/v1/files/commit", "post")
    body["blocks"] = [h]
    assert alice.post(url(alice, "/files/commit"), json=body).status_code == 400  # size
    body["size"] = 1000
    assert alice.post(url(alice, "/files/commit"), json=body).status_code == 400  # hash
    body["content_hash"] = hashlib.sha256(block).hexdigest()
    del body["base_rev"]
    assert alice.post(url(alice, "/files/commit"), json=body).status_code == 400
    body["base_rev"] = None
    ok = alice.post(url(alice, "/files/commit"), json=body)
    assert ok.status_code == 201 and ok.json()["size"] == 1000


def test_blocks_are_read_only_through_readable_files(alice, bob, live_server):
    data = random.Random(5).randbytes(3 * MiB)
    created, _ = sync_up(alice, "/mine.bin", data, None)
    assert created.status_code == 201
    first_id, first = chunk(data)[0]
    got = alice.get(url(alice, f"/blocks/{first_id}"))
    assert got.status_code == 200 and got.content == first
    unknown = bob.get(url(bob, f"/blocks/{blake3(b'nobody').hexdigest()}"))
    theirs = bob.get(url(bob, f"/blocks/{first_id}"))
    assert theirs.status_code == unknown.status_code == 404
    assert theirs.json()["error"]["code"] == unknown.json()["error"]["code"]
    # shared with bob: readable through the share
    alice.post(url(alice, "/files/create_folder"), json={"path": "/team"})
    shared, _ = sync_up(alice, "/team/s.bin", data[::-1], None)
    assert shared.status_code == 201
    sid, sblock = chunk(data[::-1])[0]
    assert bob.get(url(bob, f"/blocks/{sid}")).status_code == 404
    r = alice.post(url(alice, "/shares"), json={"path": "/team", "user": "bob"})
    assert r.status_code in (200, 201), r.text
    got = bob.get(url(bob, f"/blocks/{sid}"))
    assert got.status_code == 200 and got.content == sblock
    assert bob.get(url(bob, f"/blocks/{first_id}")).status_code == 404
