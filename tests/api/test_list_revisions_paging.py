"""``GET /api/v1/files/list_revisions`` pages with ``limit`` and an opaque ``cursor``."""

from __future__ import annotations

import jsonschema
import requests


def test_list_revisions_pages_newest_first_with_an_opaque_cursor(live_server):
    s = requests.Session()
    s.auth = live_server.auth("alice")
    base = f"{live_server.url}/api/v1"
    for n in range(5):
        r = s.post(f"{base}/files/upload", params={"path": "/doc.txt"}, data=f"v{n}".encode())
        assert r.status_code in (200, 201)
    everything = s.get(f"{base}/files/list_revisions", params={"path": "/doc.txt"}).json()
    assert everything["has_more"] is False and everything["cursor"] is None
    assert [r["size"] for r in everything["revisions"]] == [2] * 5
    all_revs = [r["rev"] for r in everything["revisions"]]

    doc = s.get(f"{base}/openapi.json").json()
    schema = doc["paths"]["/api/v1/files/list_revisions"]["get"]["responses"]["200"]
    schema = schema["content"]["application/json"]["schema"]

    pages, cursor = [], None
    while True:
        params = {"path": "/doc.txt", "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = s.get(f"{base}/files/list_revisions", params=params)
        assert page.status_code == 200
        body = page.json()
        jsonschema.validate(body, {**schema, "components": doc["components"]})
        assert body["path"] == "/doc.txt"
        pages.append([r["rev"] for r in body["revisions"]])
        if not body["has_more"]:
            assert body["cursor"] is None
            break
        cursor = body["cursor"]
        assert isinstance(cursor, str) and cursor not in all_revs  # opaque, not a bare id
    assert pages == [all_revs[0:2], all_revs[2:4], all_revs[4:5]]
    assert sum(r["current"] for r in everything["revisions"]) == 1
    assert everything["revisions"][0]["current"]

    exact = s.get(f"{base}/files/list_revisions", params={"path": "/doc.txt", "limit": 5}).json()
    assert exact["has_more"] is False and exact["cursor"] is None and len(exact["revisions"]) == 5

    for bad in ("nonsense", "cmV2Ong", "%%%"):
        r = s.get(f"{base}/files/list_revisions", params={"path": "/doc.txt", "cursor": bad})
        assert r.status_code == 400 and r.json()["error"]["code"] == "bad_request", bad
