"""``POST /api/v1/files/archive {"path"}`` against a real server: archive now to a cold
directory (the file reads back transparently over the API and WebDAV), the answer matches the
published schema, and a server without a cold tier answers 409."""

from __future__ import annotations

import os
from pathlib import Path

import jsonschema
import requests


def cold_keys(root: Path) -> set[str]:
    return {p.name for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")}


def conforms(base: str, resp: requests.Response) -> None:
    doc = requests.get(f"{base}/openapi.json", timeout=30).json()
    op = doc["paths"]["/api/v1/files/archive"]["post"]
    schema = op["responses"][str(resp.status_code)]["content"]["application/json"]["schema"]
    jsonschema.validate(resp.json(), {**schema, "components": doc["components"]})


def test_archive_now_over_the_api(tmp_path, monkeypatch, live_server_factory):
    cold = tmp_path / "cold"
    config = tmp_path / "davdrive.yaml"
    config.write_text(f"archive: {{url: 'file://{cold}'}}\ninline_max: 0\n")
    monkeypatch.setenv("DAVDRIVE_CONFIG", str(config))
    srv = live_server_factory()
    auth = srv.auth("alice")
    base = f"{srv.url}/api/v1"
    data = os.urandom(200 << 10)
    r = requests.put(srv.dav("alice") + "a.bin", data=data, auth=auth, timeout=30)
    assert r.status_code in (201, 204)

    r = requests.post(f"{base}/files/archive", json={"path": "/a.bin"}, auth=auth, timeout=30)
    assert r.status_code == 200, r.text
    conforms(base, r)
    body = r.json()
    assert (body["path"], body["blocks"], body["failed"]) == ("/a.bin", 1, 0)
    assert body["tier"].startswith("cold store file:") and body["bytes"] > 0
    assert len(cold_keys(cold)) == 1
    r = requests.get(f"{base}/files/download", params={"path": "/a.bin"}, auth=auth, timeout=30)
    assert r.status_code == 200 and r.content == data
    r = requests.get(srv.dav("alice") + "a.bin", auth=auth, timeout=30)
    assert r.status_code == 200 and r.content == data

    r = requests.post(f"{base}/files/archive", json={"path": "/nope"}, auth=auth, timeout=30)
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = requests.post(f"{base}/files/archive", json={}, auth=auth, timeout=30)
    assert r.status_code == 400


def test_archive_is_409_without_a_cold_tier(live_server):
    auth = live_server.auth("alice")
    base = f"{live_server.url}/api/v1"
    requests.put(live_server.dav("alice") + "a.bin", data=b"x" * 100, auth=auth, timeout=30)
    r = requests.post(f"{base}/files/archive", json={"path": "/a.bin"}, auth=auth, timeout=30)
    assert r.status_code == 409
    assert "archive is off" in r.json()["error"]["message"]
