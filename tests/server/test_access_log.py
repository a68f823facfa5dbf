"""The access log and the error log of a real ``davdrive serve`` (issue 9, item 10)."""

from __future__ import annotations

import base64
import os
import re
import socket
import struct
import time
from pathlib import Path

import pytest
import requests

from davdrive.server.access_log import log_target, scrub_query

LINE = re.compile(
    r"^(?P<time>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d) (?P<addr>\S+) (?P<login>\S+) "
    r"(?P<method>[A-Z]+) (?P<target>\S+) (?P<status>\d{3}) (?P<bytes>\d+) (?P<ms>\d+\.\d)ms$"
)


def _lines(text: str) -> list[dict[str, str]]:
    out = []
    for line in text.splitlines():
        m = LINE.match(line)
        assert m, f"not an access-log line: {line!r}"
        out.append(m.groupdict())
    return out


def _config(tmp_path: Path, **values: str) -> tuple[str, ...]:
    cfg = tmp_path / "log.yaml"
    cfg.write_text("".join(f"{k}: {v}\n" for k, v in values.items()))
    return ("--config", str(cfg))


def _wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_one_line_per_request_to_a_file_and_no_secret_anywhere(live_server_factory, tmp_path):
    log = tmp_path / "access.log"
    # DEBUG: the most a server ever writes; still no credential may appear
    srv = live_server_factory(extra_args=_config(tmp_path, access_log=str(log), log_level="DEBUG"))
    out = srv.cli("device", "add", "alice", "phone").stdout
    app_pw = out.split("app password: ")[1].split()[0]
    token = out.split("token: ")[1].split()[0]
    alice = srv.auth("alice")

    assert requests.get(f"{srv.url}/healthz", timeout=5).status_code == 200
    body = b"hello access log"
    put = requests.put(srv.dav("alice") + "a%20b.txt", data=body, auth=alice, timeout=10)
    assert put.status_code == 201
    got = requests.get(srv.dav("alice") + "a%20b.txt", auth=("alice", app_pw), timeout=10)
    assert got.content == body
    bad = requests.request("PROPFIND", srv.dav("alice"), auth=("alice", "wrong-Secret-1"),
                           timeout=10)  # fmt: skip
    assert bad.status_code == 401
    meta = requests.get(
        f"{srv.url}/api/v1/files/metadata",
        params={"path": "/a b.txt", "token": "Query-Secret-2", "access_token": "Query-Secret-3"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert meta.status_code == 200
    denied = requests.get(
        f"{srv.url}/api/v1/files/list",
        params={"path": "/"},
        headers={"Authorization": "Bearer Not-A-Token-4"},
        timeout=10,
    )
    assert denied.status_code == 401
    assert srv.stop() == 0

    lines = _lines(log.read_text())
    probes = [x for x in lines if x["target"] == "/healthz"]  # readiness probes, then ours
    assert probes and all(x["status"] == "200" and x["bytes"] == "3" for x in probes)
    lines = [x for x in lines if x["target"] != "/healthz"]
    assert [(x["login"], x["method"], x["status"]) for x in lines] == [
        ("alice", "PUT", "201"),
        ("alice", "GET", "200"),
        ("-", "PROPFIND", "401"),
        ("alice", "GET", "200"),
        ("-", "GET", "401"),
    ]
    assert [x["target"] for x in lines[:3]] == ["/dav/alice/a%20b.txt"] * 2 + ["/dav/alice/"]
    assert lines[1]["bytes"] == str(len(body))
    assert lines[3]["bytes"] == str(len(meta.content))
    assert lines[3]["target"] == (
        "/api/v1/files/metadata?path=%2Fa+b.txt&token=***&access_token=***"
    )
    assert all(x["addr"] == "127.0.0.1" and float(x["ms"]) >= 0 for x in lines)

    everything = log.read_text() + srv.stdout() + srv.stderr()
    assert "DEBUG" in srv.stderr()  # the log level took effect
    basic = base64.b64encode(b"alice:alice-pw").decode()
    for secret in ("alice-pw", app_pw, token, "wrong-Secret-1", "Query-Secret-2",
                   "Query-Secret-3", "Not-A-Token-4", basic):  # fmt: skip
        assert secret not in everything, f"{secret!r} was logged"


def test_stdout_by_default_and_off(live_server_factory, tmp_path):
    on = live_server_factory()
    requests.get(f"{on.url}/healthz", timeout=5)
    _wait_for(lambda: "GET /healthz 200" in on.stdout())
    # readiness probes are requests too; every stdout line is an access-log line
    assert all(x["target"] == "/healthz" for x in _lines(on.stdout()))

    off = live_server_factory(extra_args=_config(tmp_path, access_log="off"))
    requests.get(f"{off.url}/healthz", timeout=5)
    assert off.stop() == 0
    assert off.stdout() == ""


def _cut_off(port: int, method: str, path: str, *, reset: bool) -> None:
    """Declare 5 MB, send 1 MB, then close (FIN) or abort (RST) the connection."""
    token = base64.b64encode(b"alice:alice-pw").decode()
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic {token}\r\n"
        "Content-Length: 5000000\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head + os.urandom(1_000_000))
        time.sleep(0.3)
        if reset:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


@pytest.mark.parametrize("reset", [False, True], ids=["fin", "rst"])
def test_a_client_that_disconnects_mid_upload_is_one_warning(live_server, reset):
    uploads = [
        ("PUT", "/dav/alice/cut.bin"),
        ("POST", "/api/v1/files/upload?path=/cut.bin"),
    ]
    for method, path in uploads:
        _cut_off(live_server.port, method, path, reset=reset)
    _wait_for(lambda: live_server.stderr().count("disconnected during") == len(uploads))
    _wait_for(lambda: len(_lines(live_server.stdout())) >= len(uploads) + 1)
    # nothing was stored, and the server is fine
    listing = requests.request("PROPFIND", live_server.dav("alice"), headers={"Depth": "1"},
                               auth=live_server.auth("alice"), timeout=10)  # fmt: skip
    assert listing.status_code == 207 and "cut.bin" not in listing.text
    assert live_server.stop() == 0
    err = live_server.stderr()
    warnings = [line for line in err.splitlines() if "disconnected during" in line]
    assert len(warnings) == 2
    for (method, path), line in zip(uploads, warnings, strict=True):
        assert " WARNING davdrive.server: client 127.0.0.1 (alice) disconnected during " in line
        assert f"{method} {path} after " in line and " of 5000000 body bytes" in line
    assert "Traceback" not in err and " ERROR " not in err, err


def test_a_5xx_is_logged_at_error_with_its_traceback(live_server):
    """A damaged block makes WebDAV's GET fail inside WsgiDAV: its traceback reaches the log
    (WsgiDAV's logger does not propagate by default, so it used to vanish)."""
    s = requests.Session()
    s.auth = live_server.auth("alice")
    # larger than INLINE_MAX: its block is an object in the blocks folder, not a database row
    assert s.put(live_server.dav("alice") + "x.bin", data=b"x" * 100_000, timeout=10).ok
    for f in (live_server.data_dir / "blocks").rglob("*"):
        if f.is_file():
            raw = bytearray(f.read_bytes())
            raw[-1] ^= 0xFF
            f.write_bytes(bytes(raw))
    r = s.get(live_server.dav("alice") + "x.bin", timeout=10)
    assert r.status_code == 500
    _wait_for(lambda: "Traceback" in live_server.stderr())
    err = live_server.stderr()
    assert " ERROR wsgidav" in err and "IntegrityError" in err
    _wait_for(lambda: " 500 " in live_server.stdout())
    (line,) = [x for x in _lines(live_server.stdout()) if x["status"] == "500"]
    assert line["login"] == "alice" and line["target"] == "/dav/alice/x.bin"


def test_log_target_scrubs_secrets():
    assert scrub_query("path=/a&token=abc&Password=x&limit=3&X-Amz-Signature=s&key") == (
        "path=/a&token=***&Password=***&limit=3&X-Amz-Signature=***&key"
    )
    env = {"REQUEST_URI": "/s/abcdefghij/file.txt?sig=1", "PATH_INFO": "ignored"}
    assert log_target(env) == "/s/abcd***/file.txt?sig=***"
    assert log_target({"PATH_INFO": "/dav/a b/\xc3\xa9", "QUERY_STRING": ""}) == (
        "/dav/a%20b/%C3%A9"
    )


# -- the middleware in-process -------------------------------------------------------------------
def _call(app, environ: dict | None = None):
    """Run ``AccessLog(app)`` like a server: (status, body, raised exception or None)."""
    import io
    import logging

    from davdrive.server.access_log import AccessLog

    stream = io.StringIO()
    access = logging.getLogger("test.access")
    access.handlers[:] = [logging.StreamHandler(stream)]
    access.propagate = False
    access.setLevel(logging.INFO)
    env = {"REQUEST_METHOD": "GET", "PATH_INFO": "/x", "REMOTE_ADDR": "10.0.0.1",
           "wsgi.input": io.BytesIO(b""), **(environ or {})}  # fmt: skip
    seen: list[str] = []

    def start_response(status, headers, exc_info=None):
        if seen and exc_info is None:
            raise RuntimeError("start_response called twice")
        seen.append(status)
        return lambda data: None

    result = AccessLog(app, access)(env, start_response)
    body, error = b"", None
    try:
        for chunk in result:
            body += chunk
    except Exception as exc:  # noqa: BLE001
        error = exc
    finally:
        result.close()
    return seen[-1], body, error, stream.getvalue()


def test_middleware_turns_an_early_exception_into_a_logged_500(caplog):
    def app(environ, start_response):
        start_response("200 OK", [])
        raise KeyError("boom")
        yield b""  # pragma: no cover

    status, body, error, access = _call(app)
    assert status.startswith("500") and error is None and body
    (record,) = [r for r in caplog.records if r.levelname == "ERROR"]
    assert record.exc_info and "GET /x failed" in record.getMessage()
    assert " 10.0.0.1 - GET /x 500 " in access

    def eager(environ, start_response):
        raise KeyError("at once")

    caplog.clear()
    status, body, error, access = _call(eager)
    assert status.startswith("500") and error is None and body
    assert [r.levelname for r in caplog.records] == ["ERROR"] and caplog.records[0].exc_info


def test_middleware_drops_the_connection_when_the_body_fails_midway(caplog):
    from davdrive.server.access_log import ResponseAborted

    def app(environ, start_response):
        start_response("200 OK", [("Content-Length", "10")])
        yield b"12345"
        raise OSError("disk gone")

    status, body, error, access = _call(app)
    assert status.startswith("200") and body == b"12345"
    assert isinstance(error, ResponseAborted)
    (record,) = [r for r in caplog.records if r.levelname == "ERROR"]
    assert record.exc_info and "aborted after 5 bytes" in record.getMessage()
    assert " GET /x 200 5 " in access


def test_middleware_logs_a_handled_5xx_with_its_message_and_507_as_warning(caplog):
    def failing(code: str, message: bytes):
        def app(environ, start_response):
            start_response(code, [("Content-Type", "application/json")])
            return [message]

        return app

    _call(failing("500 Internal Server Error", b'{"error": {"message": "block x damaged"}}'))
    _call(failing("507 Insufficient Storage", b'{"error": {"message": "over quota"}}'))
    _call(failing("404 Not Found", b"no"))
    got = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "davdrive.server"]
    assert got == [
        ("ERROR", 'GET /x answered 500 Internal Server Error: {"error": {"message": '
                  '"block x damaged"}}'),
        ("WARNING", 'GET /x answered 507 Insufficient Storage: {"error": {"message": '
                    '"over quota"}}'),
    ]  # fmt: skip


def test_middleware_reports_a_short_request_body_once(caplog):
    import io

    def app(environ, start_response):
        while environ["wsgi.input"].read(4):
            pass
        start_response("400 Bad Request", [])
        return [b"incomplete"]

    env = {"REQUEST_METHOD": "PUT", "CONTENT_LENGTH": "100", "wsgi.input": io.BytesIO(b"x" * 10)}
    status, _body, _error, access = _call(app, env)
    assert status.startswith("400")
    (record,) = caplog.records
    assert record.levelname == "WARNING"
    assert record.getMessage() == (
        "client 10.0.0.1 (-) disconnected during PUT /x after 10 of 100 body bytes; answered 400"
    )
    assert " PUT /x 400 10 " in access
