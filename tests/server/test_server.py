"""The real ``davdrive serve`` subprocess: routing, first start, shutdown, memory, TLS."""

from __future__ import annotations

import base64
import datetime
import ipaddress
import os
import shutil
import socket
import stat
import subprocess
import time
import warnings
from pathlib import Path

import pytest
import requests

from davdrive.app import build_app
from davdrive.config import load_config
from tests.conftest import unavailable
from tests.live import run_cli

MiB = 1 << 20


def test_healthz_answers_without_authentication(live_server):
    r = requests.get(f"{live_server.url}/healthz", timeout=5)
    assert r.status_code == 200
    assert r.text.strip() == "ok"
    assert "WWW-Authenticate" not in r.headers


def test_options_root_advertises_dav_class_2(live_server):
    r = requests.options(f"{live_server.url}/", timeout=5)
    assert r.status_code == 200
    classes = [c.strip() for c in r.headers["DAV"].split(",")]
    assert "1" in classes and "2" in classes
    assert r.headers["MS-Author-Via"] == "DAV"
    assert "PROPFIND" in r.headers["Allow"]


def test_unknown_paths_are_404(live_server):
    assert requests.get(f"{live_server.url}/nope", timeout=5).status_code == 404
    r = requests.get(f"{live_server.url}/api/nope", timeout=5)
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"


def test_dav_requires_authentication(live_server):
    r = requests.request("PROPFIND", live_server.dav("alice"), headers={"Depth": "0"}, timeout=5)
    assert r.status_code == 401 and "Basic" in r.headers["WWW-Authenticate"]
    ok = requests.request(
        "PROPFIND",
        live_server.dav("alice"),
        headers={"Depth": "0"},
        auth=live_server.auth("alice"),
        timeout=10,
    )
    assert ok.status_code == 207


def test_first_start_creates_admin_with_private_password_file(live_server_factory):
    srv = live_server_factory(create_users=False)
    pw_file = srv.data_dir / "initial-admin-password"
    assert stat.S_IMODE(pw_file.stat().st_mode) == 0o600
    password = pw_file.read_text().strip()
    assert len(password) >= 16
    assert password in srv.stdout()  # printed once on the first start
    assert "listening on http://127.0.0.1:" in srv.stderr()

    # a restart with a user present neither creates nor prints a new password
    srv.restart()
    assert srv.stdout().count(password) == 1
    assert pw_file.read_text().strip() == password

    assert srv.stop() == 0
    app = build_app(load_config(data_dir=srv.data_dir))
    try:
        p = app.accounts.authenticate("admin", password)
        assert p.login == "admin" and p.is_admin and p.device_id is None
        assert [u.login for u in app.accounts.list_users()] == ["admin"]
    finally:
        app.close()


def test_printed_admin_password_logs_in_over_http(live_server_factory):
    srv = live_server_factory(create_users=False)
    password = (srv.data_dir / "initial-admin-password").read_text().strip()
    r = requests.request(
        "PROPFIND",
        srv.dav("admin"),
        headers={"Depth": "0"},
        auth=("admin", password),
        timeout=10,
    )
    assert r.status_code == 207
    bad = requests.request(
        "PROPFIND", srv.dav("admin"), headers={"Depth": "0"}, auth=("admin", "x"), timeout=10
    )
    assert bad.status_code == 401


def test_sigterm_exits_zero_promptly(live_server):
    # an idle keep-alive connection must not hold the shutdown up
    s = requests.Session()
    assert s.get(f"{live_server.url}/healthz", timeout=5).status_code == 200
    t0 = time.monotonic()
    assert live_server.stop(timeout=20) == 0
    assert time.monotonic() - t0 < 10
    assert "stopped" in live_server.stderr()


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _stream_put(
    port: int, path: str, size: int, *, declared: int | None = None, headers: str = ""
) -> bytes:
    """Send a PUT declaring ``declared`` (default ``size``) bytes and stream up to ``size`` of
    them until the server stops reading; return whatever the server answered."""
    piece = os.urandom(MiB)
    head = (
        f"PUT {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{headers}"
        f"Content-Length: {declared or size}\r\nContent-Type: application/octet-stream\r\n\r\n"
    ).encode()
    answer = b""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head)
        sent = 0
        try:
            while sent < size:
                n = min(len(piece), size - sent)
                sock.sendall(piece[:n])
                sent += n
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered early and closed: exactly what should happen
        try:
            sock.shutdown(socket.SHUT_WR)
            while chunk := sock.recv(65536):
                answer += chunk
        except OSError:
            pass
    return answer


def _basic(login: str, password: str) -> str:
    token = base64.b64encode(f"{login}:{password}".encode()).decode()
    return f"Authorization: Basic {token}\r\n"


# (case, path, extra headers, declared length or None, expected early answer)
REFUSED_PUTS = [
    ("unauthenticated", "/dav/alice/big.bin", "", None, 401),
    ("outside /dav", "/nope/big.bin", "", None, 404),
    ("stale If-Match", "/dav/alice/exists.bin", 'If-Match: "stale"\r\n', None, 412),
    ("over the file limit", "/dav/alice/huge.bin", "", 11 * 10**9, 413),
    ("over quota", "/dav/bob/big.bin", "", None, 507),
]


@pytest.mark.parametrize(
    ("path", "headers", "declared", "status"),
    [case[1:] for case in REFUSED_PUTS],
    ids=[case[0] for case in REFUSED_PUTS],
)
def test_refused_1gib_put_does_not_grow_rss(live_server, path, headers, declared, status):
    """A PUT answered before its body is read (401, 404, 412, 413, 507) must not make the
    server buffer the body: cheroot alone would read the rest into RAM at once."""
    if "/alice/" in path and status != 401:
        headers += _basic(*live_server.auth("alice"))
        requests.put(live_server.dav("alice") + "exists.bin", data=b"v1",
                      auth=live_server.auth("alice"), timeout=10)  # fmt: skip
    if "/bob/" in path:
        headers += _basic(*live_server.auth("bob"))
        run_cli(live_server.data_dir, "user", "quota", "bob", "1MB")
    # warm up the code paths (imports, first allocations) before measuring
    _stream_put(live_server.port, path, 2 * MiB, declared=declared, headers=headers)
    before = rss_kib(live_server.pid)
    answer = _stream_put(live_server.port, path, 1 << 30, declared=declared, headers=headers)
    time.sleep(0.3)
    after = rss_kib(live_server.pid)
    assert (after - before) < 50 * 1024, f"RSS grew by {(after - before) / 1024:.0f} MiB"
    # the lingering close lets the client read the early answer instead of a reset
    assert int(answer.split(b" ", 2)[1]) == status, answer[:200]
    # the server is still healthy and nothing was stored
    assert requests.get(f"{live_server.url}/healthz", timeout=5).status_code == 200
    login = path.split("/")[2] if path.startswith("/dav/") else "alice"
    listing = requests.request("PROPFIND", live_server.dav(login), headers={"Depth": "1"},
                               auth=live_server.auth(login), timeout=10).text  # fmt: skip
    assert "big.bin" not in listing and "huge.bin" not in listing


def _self_signed(tmp: Path) -> tuple[str, str]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    os.chmod(key_path, 0o600)
    return str(cert_path), str(key_path)


def test_tls_healthz_and_authenticated_dav(live_server_factory, tmp_path):
    cert, key = _self_signed(tmp_path)
    srv = live_server_factory(tls=(cert, key))
    assert srv.url.startswith("https://")
    r = requests.get(f"{srv.url}/healthz", verify=cert, timeout=5)
    assert r.status_code == 200 and r.text.strip() == "ok"
    assert "listening on https://" in srv.stderr()
    dav = requests.Session()
    dav.auth = srv.auth("alice")
    body, url = os.urandom(3 * MiB), srv.dav("alice") + "over-tls.bin"
    assert dav.put(url, data=body, verify=cert, timeout=30).status_code == 201
    assert dav.get(url, verify=cert, timeout=30).content == body
    listing = dav.request(
        "PROPFIND", srv.dav("alice"), headers={"Depth": "1"}, verify=cert, timeout=10
    )
    assert listing.status_code == 207 and "over-tls.bin" in listing.text
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(requests.exceptions.ConnectionError):
            # plain HTTP on the TLS port gets no HTTP answer
            requests.get(srv.url.replace("https://", "http://") + "/healthz", timeout=5)


def test_requests_client_gets_401_for_big_unauthenticated_put(live_server):
    r = requests.put(live_server.dav("alice") + "x.bin", data=os.urandom(20 * MiB), timeout=30)
    assert r.status_code == 401
    assert "Basic" in r.headers["WWW-Authenticate"]
    url = live_server.dav("alice") + "x.bin"
    ok = requests.put(url, data=b"small", auth=live_server.auth("alice"), timeout=30)
    assert ok.status_code in (201, 204)


def test_locks_and_dead_properties_survive_a_restart(live_server):
    """Locks and dead properties live in SQL: a restarted server still enforces the lock and
    still reports the property (Office keeps a lock across a server restart)."""
    s = requests.Session()
    s.auth = live_server.auth("alice")
    url = live_server.dav("alice") + "kept.docx"
    assert s.put(url, data=b"v1", timeout=10).status_code == 201
    lockinfo = (
        '<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/>'
        "</D:lockscope><D:locktype><D:write/></D:locktype><D:owner>me</D:owner></D:lockinfo>"
    )
    r = s.request("LOCK", url, data=lockinfo, headers={"Timeout": "Second-600"}, timeout=10)
    assert r.status_code == 200
    token = r.headers["Lock-Token"].strip("<>")
    patch = (
        '<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:x-test:">'
        "<D:set><D:prop><Z:color>teal</Z:color></D:prop></D:set></D:propertyupdate>"
    )
    r = s.request("PROPPATCH", url, data=patch, headers={"If": f"(<{token}>)"}, timeout=10)
    assert r.status_code == 207 and b"200 OK" in r.content
    live_server.restart()
    assert s.put(url, data=b"v2", timeout=10).status_code == 423
    find = (
        '<?xml version="1.0"?><D:propfind xmlns:D="DAV:" xmlns:Z="urn:x-test:"><D:prop>'
        "<Z:color/><D:lockdiscovery/></D:prop></D:propfind>"
    )
    r = s.request("PROPFIND", url, data=find, headers={"Depth": "0"}, timeout=10)
    assert r.status_code == 207 and b"teal" in r.content and token.encode() in r.content
    assert s.put(url, data=b"v2", headers={"If": f"(<{token}>)"}, timeout=10).status_code == 204
    r = s.request("UNLOCK", url, headers={"Lock-Token": f"<{token}>"}, timeout=10)
    assert r.status_code == 204
    assert s.get(url, timeout=10).content == b"v2"


def test_full_disk_answers_507_and_keeps_the_previous_version(live_server_factory, tmp_path):
    """Block storage on a 4 MiB filesystem: a PUT that fills it gets 507, the previous version
    stays current and readable, and the server keeps serving."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        unavailable("mounting a small tmpfs needs root")
    tiny = tmp_path / "tiny"
    tiny.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(tiny)],
                             capture_output=True, text=True)  # fmt: skip
    if mounted.returncode != 0:
        unavailable(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        cfg = tmp_path / "tiny.yaml"
        cfg.write_text(f'blocks_url: "file://{tiny / "blocks"}"\n')
        srv = live_server_factory(extra_args=("--config", str(cfg)))
        s = requests.Session()
        s.auth = srv.auth("alice")
        url = srv.dav("alice") + "doc.bin"
        v1 = os.urandom(100_000)
        assert s.put(url, data=v1, timeout=30).status_code == 201
        r = s.put(url, data=os.urandom(8 * MiB), timeout=60)
        assert r.status_code == 507, r.status_code
        assert s.get(url, timeout=10).content == v1
        api = s.get(f"{srv.url}/api/v1/files/metadata", params={"path": "/doc.bin"}, timeout=10)
        assert api.json()["size"] == len(v1)
        assert requests.get(f"{srv.url}/healthz", timeout=5).status_code == 200
        srv.stop()
    finally:
        subprocess.run(["umount", "-l", str(tiny)], check=False)
