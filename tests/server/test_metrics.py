"""``GET /metrics`` of a real ``davdrive serve`` and ``davdrive notify`` (issue 15): the
Prometheus page as prometheus_client's own parser reads it, and the ``metrics`` switch."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from davdrive.config import load_config
from tests.live import LiveServer, free_port

ADMIN = ("root", "root-pw")


def _config(tmp_path: Path, **values: str) -> tuple[str, ...]:
    cfg = tmp_path / "metrics.yaml"
    cfg.write_text("".join(f"{k}: {v}\n" for k, v in values.items()))
    return ("--config", str(cfg))


def _samples(text: str) -> dict[tuple[str, frozenset], float]:
    """``{(sample name, labels): value}`` of a Prometheus text page."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def _value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def _sum(samples: dict, name: str, **labels: str) -> float:
    """The sum over every sample of ``name`` whose labels include ``labels``."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= ls)


def _scrape(srv: LiveServer, auth: tuple[str, str] | None = None) -> dict:
    r = requests.get(f"{srv.url}/metrics", auth=auth, timeout=10)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return _samples(r.text)


def test_requests_latency_and_bytes_are_counted(live_server_factory, tmp_path):
    srv = live_server_factory(extra_args=_config(tmp_path, metrics="public"))
    alice = srv.auth("alice")
    before = _scrape(srv)

    body = b"x" * 10_000
    puts = 3
    for i in range(puts):
        r = requests.put(f"{srv.dav('alice')}f{i}.bin", data=body, auth=alice, timeout=10)
        assert r.status_code == 201
    got = requests.get(f"{srv.dav('alice')}f0.bin", auth=alice, timeout=10)
    assert got.content == body
    listing = requests.get(
        f"{srv.url}/api/v1/files/list", params={"path": "/"}, auth=alice, timeout=10
    )
    assert listing.status_code == 200
    assert requests.get(f"{srv.url}/api/v1/capabilities", timeout=10).status_code == 200
    missing = requests.get(f"{srv.dav('alice')}nothing-here", auth=alice, timeout=10)
    assert missing.status_code == 404
    tus = requests.post(
        f"{srv.url}/api/v1/uploads",
        params={"path": "/pending.bin"},
        headers={"Tus-Resumable": "1.0.0", "Upload-Length": "100"},
        auth=alice,
        timeout=10,
    )
    assert tus.status_code == 201, tus.text

    # A request is counted when its response is closed, which may be just after the client
    # has read it: scrape until the last one is in.
    deadline = time.monotonic() + 10
    while True:
        after = _scrape(srv)
        counted = _sum(after, "davdrive_http_requests_total", door="api", method="POST")
        if counted > _sum(before, "davdrive_http_requests_total", door="api", method="POST"):
            break
        assert time.monotonic() < deadline, "the POST was never counted"
        time.sleep(0.05)

    def grew(name: str, **labels: str) -> float:
        return _sum(after, name, **labels) - _sum(before, name, **labels)

    assert grew("davdrive_http_requests_total", door="dav", method="PUT", status="201") == puts
    assert grew("davdrive_http_requests_total", door="dav", method="GET", status="200") == 1
    assert grew("davdrive_http_requests_total", door="dav", method="GET", status="404") == 1
    assert grew("davdrive_http_requests_total", door="api", method="GET", status="200") == 2
    assert grew("davdrive_http_requests_total", door="api", method="POST", status="201") == 1
    # the first scrape is counted once it is answered, so the second one sees it
    assert _sum(after, "davdrive_http_requests_total", door="other", method="GET") >= 1
    assert grew("davdrive_http_request_duration_seconds_count", door="dav", method="PUT") == puts
    assert grew("davdrive_http_request_duration_seconds_sum", door="dav", method="PUT") > 0
    inf = _value(
        after, "davdrive_http_request_duration_seconds_bucket", door="dav", method="PUT", le="+Inf"
    )
    assert inf >= puts
    assert grew("davdrive_http_request_bytes_total", door="dav") >= puts * len(body)
    assert grew("davdrive_http_response_bytes_total", door="dav") >= len(body)
    assert grew("davdrive_http_response_bytes_total", door="api") > 0
    assert _sum(after, "davdrive_http_errors_total") == 0
    assert _value(after, "davdrive_upload_sessions") == 1
    assert _value(after, "davdrive_longpolls_parked") == 0
    # the first upkeep pass runs at start (it may still be running at the first scrape)
    deadline = time.monotonic() + 10
    while _value(after, "davdrive_job_runs_total", job="upkeep", outcome="ok") < 1:
        assert time.monotonic() < deadline, "no upkeep run counted"
        time.sleep(0.1)
        after = _scrape(srv)
    assert _value(after, "davdrive_job_duration_seconds_count", job="upkeep") >= 1
    for name in ("davdrive_blocks_written_total", "davdrive_blocks_deduped_total"):
        assert (name, frozenset()) in after
    assert _value(after, "davdrive_process_resident_memory_bytes") > 0


def test_parked_longpolls_are_a_gauge(live_server_factory, tmp_path):
    srv = live_server_factory(extra_args=_config(tmp_path, metrics="public"))
    alice = srv.auth("alice")
    cursor = requests.get(f"{srv.url}/api/v1/changes/latest", auth=alice, timeout=10).json()[
        "cursor"
    ]
    answers: list[int] = []

    def poll() -> None:
        r = requests.get(
            f"{srv.url}/api/v1/longpoll",
            params={"cursor": cursor, "timeout": 3},
            auth=alice,
            timeout=10,
        )
        answers.append(r.status_code)

    threads = [threading.Thread(target=poll) for _ in range(2)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 2.5  # the polls give up after 3 s
    while _value(_scrape(srv), "davdrive_longpolls_parked") != 2:
        assert time.monotonic() < deadline, "the parked polls were not counted"
        time.sleep(0.05)
    requests.put(f"{srv.dav('alice')}wake.txt", data=b"w", auth=alice, timeout=10)
    for t in threads:
        t.join(10)
    assert answers == [200, 200]

    def settled(text: str) -> tuple[float, float, float]:
        return (
            _value(text, "davdrive_longpolls_parked"),
            _sum(text, "davdrive_http_requests_total", door="notify", status="200"),
            _sum(text, "davdrive_http_request_duration_seconds_count", door="notify"),
        )

    # a client has its answer a moment before the worker closes the request and counts it
    deadline = time.monotonic() + 5
    while (got := settled(_scrape(srv))) != (0, 2, 2) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert got == (0, 2, 2), "parked, answered, timed"


def test_metrics_are_off_by_default(live_server):
    r = requests.get(f"{live_server.url}/metrics", timeout=10)
    assert r.status_code == 404
    r = requests.get(f"{live_server.url}/metrics", auth=live_server.auth("alice"), timeout=10)
    assert r.status_code == 404


def test_admin_mode_needs_an_admin_account(live_server_factory, tmp_path):
    srv = live_server_factory(extra_args=_config(tmp_path, metrics="admin"))
    srv.cli("user", "add", ADMIN[0], "--admin", "--password-stdin", input=ADMIN[1] + "\n")
    url = f"{srv.url}/metrics"

    anonymous = requests.get(url, timeout=10)
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"].startswith("Basic")
    assert "davdrive_" not in anonymous.text
    assert requests.get(url, auth=("alice", "wrong"), timeout=10).status_code == 401
    user = requests.get(url, auth=srv.auth("alice"), timeout=10)
    assert user.status_code == 403
    assert "davdrive_" not in user.text
    samples = _scrape(srv, auth=ADMIN)
    assert _sum(samples, "davdrive_http_requests_total", door="other", status="403") >= 1
    assert requests.post(url, auth=ADMIN, timeout=10).status_code == 405


def test_the_switch_is_validated(tmp_path):
    assert load_config().metrics == "off"
    cfg = tmp_path / "c.yaml"
    for written, mode in (("off", "off"), ("public", "public"), ("Admin", "admin")):
        cfg.write_text(f"metrics: {written}\n")
        assert load_config(cfg).metrics == mode
    cfg.write_text("metrics: yes\n")
    with pytest.raises(ValueError, match="metrics must be"):
        load_config(cfg)


def test_notify_process_serves_metrics(live_server_factory, tmp_path):
    srv = live_server_factory(start=False)
    port = free_port()
    cmd = [sys.executable, "-m", "davdrive.cli", "--data", str(srv.data_dir)]
    cmd += [*_config(tmp_path, metrics="public"), "notify", "--host", "127.0.0.1"]
    proc = subprocess.Popen(
        [*cmd, "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            try:
                if requests.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, "notify did not start"
            time.sleep(0.1)
        denied = requests.get(f"{base}/api/v1/longpoll", params={"cursor": 0}, timeout=10)
        assert denied.status_code == 401
        r = requests.get(f"{base}/metrics", timeout=10)
        assert r.status_code == 200
        samples = _samples(r.text)
        assert _sum(samples, "davdrive_http_requests_total", door="notify", status="401") == 1
        assert _sum(samples, "davdrive_http_requests_total", door="other", status="200") >= 1
        assert _value(samples, "davdrive_longpolls_parked") == 0
        assert _sum(samples, "davdrive_http_response_bytes_total", door="notify") > 0
    finally:
        proc.terminate()
        proc.wait(15)
