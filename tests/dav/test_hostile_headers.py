"""Header shapes that used to be accepted loosely (issue 16, items 9 and 10): a malformed ``If``
header is a 400 (never an unconditional write), an empty ``Destination`` is a 400 (not 502)."""

from __future__ import annotations

import pytest
import requests


@pytest.mark.parametrize(
    "header",
    ["garbage", "(<opaquelocktoken:x>", "()", "(Not)", "<http://h/a>", "(<t>) junk"],
)
def test_a_malformed_if_header_is_refused_and_writes_nothing(live_server, header):
    url = live_server.dav("alice") + "cond.txt"
    auth = live_server.auth("alice")
    assert requests.put(url, data=b"original", auth=auth).status_code == 201
    r = requests.put(url, data=b"overwritten", headers={"If": header}, auth=auth)
    assert r.status_code == 400
    assert requests.get(url, auth=auth).content == b"original"


def test_well_formed_if_headers_still_work(live_server):
    url = live_server.dav("alice") + "cond.txt"
    auth = live_server.auth("alice")
    etag = requests.put(url, data=b"v1", auth=auth).headers["ETag"]
    ok = requests.put(url, data=b"v2", headers={"If": f"([{etag}])"}, auth=auth)
    assert ok.status_code == 204
    stale = requests.put(url, data=b"v3", headers={"If": f"([{etag}])"}, auth=auth)
    assert stale.status_code == 412
    tagged = requests.put(
        url, data=b"v4", headers={"If": f"<{url}> (Not <DAV:no-lock>)"}, auth=auth
    )
    assert tagged.status_code == 204


@pytest.mark.parametrize("method", ["MOVE", "COPY"])
@pytest.mark.parametrize("destination", [""])
def test_an_empty_destination_is_a_400(live_server, method, destination):
    url = live_server.dav("alice") + "src.txt"
    auth = live_server.auth("alice")
    requests.put(url, data=b"x", auth=auth)
    r = requests.request(method, url, headers={"Destination": destination}, auth=auth)
    assert r.status_code == 400
    assert requests.get(url, auth=auth).content == b"x"
