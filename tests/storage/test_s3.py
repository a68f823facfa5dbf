"""What only the S3 backend does: the capability probe, conditional create vs HEAD-then-PUT,
SigV4, URLs, and a store that goes down (clear error, nothing half-written). SeaweedFS from
tests/storage/conftest.py; the conformance suite itself is in test_backends.py."""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
import types

import obstore
import pytest

from davdrive.errors import NotFound, StoreUnavailable
from davdrive.storage import s3 as s3mod
from davdrive.storage.registry import open_backend
from davdrive.storage.s3 import S3Backend

KEY_A = "ab" * 32
KEY_B = "cd" * 32


def make(seaweed, prefix, **kw) -> S3Backend:
    kw.setdefault("access_key", seaweed.access_key)
    kw.setdefault("secret_key", seaweed.secret_key)
    kw.setdefault("endpoint", seaweed.endpoint)
    return S3Backend(seaweed.bucket, prefix, **kw)


@pytest.fixture
def put_calls(monkeypatch):
    """Every ``obstore.put`` as (key, mode), still done for real."""
    calls: list[tuple[str, str | None]] = []
    real = obstore.put

    def spy(store, path, data, **kw):
        calls.append((path, kw.get("mode")))
        return real(store, path, data, **kw)

    monkeypatch.setattr(obstore, "put", spy)
    return calls


def test_probe_finds_conditional_create_and_leaves_nothing(seaweed, s3_prefix):
    b = make(seaweed, s3_prefix)
    assert b.conditional_create is True  # SeaweedFS answers a second create with 412
    assert seaweed.keys(s3_prefix) == {}  # the probe object is gone


def test_probe_sees_a_store_that_ignores_the_condition(seaweed, s3_prefix, monkeypatch):
    real = obstore.put

    def ignoring(store, path, data, **kw):
        kw.pop("mode", None)  # as a store that does not know If-None-Match
        return real(store, path, data, **kw)

    monkeypatch.setattr(obstore, "put", ignoring)
    b = make(seaweed, s3_prefix)
    assert b.conditional_create is False
    assert seaweed.keys(s3_prefix) == {}


def test_conditional_create_keeps_a_fresh_object(seaweed, s3_prefix, put_calls):
    b = make(seaweed, s3_prefix)
    put_calls.clear()
    b.put(KEY_A, b"first")
    b.put(KEY_A, b"second")  # same key = same block: refused by the store, success for us
    assert b.get(KEY_A) == b"first"
    assert put_calls == [(KEY_A, "create"), (KEY_A, "create")]


def test_an_old_object_is_rewritten(seaweed, s3_prefix, monkeypatch, put_calls):
    """Past ``refresh_after`` an existing object is replaced: fsck's orphan grace sees it young
    again, and a copy fsck found damaged is repaired by the next upload of its block."""
    b = make(seaweed, s3_prefix)
    b.put(KEY_A, b"damaged")
    later = time.time() + 2 * s3mod.REFRESH_AFTER
    monkeypatch.setattr(s3mod, "time", types.SimpleNamespace(time=lambda: later))
    put_calls.clear()
    b.put(KEY_A, b"good")
    assert b.get(KEY_A) == b"good"
    assert put_calls == [(KEY_A, "create"), (KEY_A, None)]


def test_head_then_put_when_forced(seaweed, s3_prefix, put_calls):
    b = make(seaweed, s3_prefix, conditional=False)
    put_calls.clear()
    b.put(KEY_A, b"first")
    b.put(KEY_A, b"second")  # HEAD finds it (fresh): no PUT at all
    b.put(KEY_B, b"other")
    assert put_calls == [(KEY_A, None), (KEY_B, None)]
    assert b.get(KEY_A) == b"first"
    assert {o.key: o.size for o in b.list()} == {KEY_A: 5, KEY_B: 5}


def test_list_skips_what_is_not_a_block(seaweed, s3_prefix):
    b = make(seaweed, s3_prefix)
    b.put(KEY_A, b"x")
    client = seaweed.client()
    client.put_object(Bucket=seaweed.bucket, Key=f"{s3_prefix}/README", Body=b"hi")
    client.put_object(Bucket=seaweed.bucket, Key=f"{s3_prefix}/sub/{KEY_B}", Body=b"hi")
    client.put_object(Bucket=seaweed.bucket, Key=f"{s3_prefix}x/{KEY_B}", Body=b"other prefix")
    assert [o.key for o in b.list()] == [KEY_A]
    assert abs(next(iter(b.list())).mtime - time.time()) < 120
    assert list(b.leftovers()) == []


def test_open_backend_s3_url_with_credentials_from_the_environment(s3_env, s3_prefix):
    b = open_backend(s3_env.url(s3_prefix, region="us-east-1", timeout="5"))
    assert isinstance(b, S3Backend)
    assert (b.bucket, b.prefix, b.timeout, b.conditional_create) == (
        s3_env.bucket,
        s3_prefix,
        5.0,
        True,
    )
    b.put(KEY_A, b"via url")
    assert s3_env.keys(s3_prefix) == {KEY_A: 7}
    forced = open_backend(s3_env.url(s3_prefix, conditional="off"))
    assert forced.conditional_create is False
    assert forced.get(KEY_A) == b"via url"


@pytest.mark.parametrize(
    "query",
    [
        "endpoint=http://x&colour=blue",
        "endpoint=http://x&timeout=soon",
        "endpoint=ftp://x",
        "endpoint=http://x&conditional=maybe",
        "endpoint=http://x&timeout=0",
    ],
)
def test_bad_s3_urls_are_refused(query):
    with pytest.raises(ValueError):
        open_backend(f"s3://bucket/p?{query}")
    with pytest.raises(ValueError):
        open_backend("s3:///prefix-without-bucket")


def test_missing_client_libraries_name_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "obstore", None)
    monkeypatch.delitem(sys.modules, "davdrive.storage.s3")
    with pytest.raises(RuntimeError, match=r"pip install 'davdrive\[s3\]'"):
        open_backend("s3://bucket/p?endpoint=http://127.0.0.1:1")


def test_sigv4_wrong_or_no_credentials_are_a_clear_error(seaweed, s3_prefix, monkeypatch):
    with pytest.raises(StoreUnavailable, match="access denied") as info:
        make(seaweed, s3_prefix, secret_key="wrong", timeout=3)
    assert seaweed.endpoint in str(info.value)
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY", raising=False)
    with pytest.raises(StoreUnavailable, match="access denied"):  # unsigned: mini refuses
        make(seaweed, s3_prefix, access_key=None, secret_key=None, timeout=3)
    assert seaweed.keys(s3_prefix) == {}


def test_store_down_at_start_is_a_clear_error_and_quick():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there
    t0 = time.monotonic()
    with pytest.raises(StoreUnavailable) as info:
        S3Backend(
            "b", "p", endpoint=f"http://127.0.0.1:{port}", access_key="k", secret_key="s", timeout=2
        )
    assert time.monotonic() - t0 < 10
    msg = str(info.value)
    assert f"http://127.0.0.1:{port}" in msg and "probe" in msg
    assert "Debug source" not in msg and "\n" not in msg
    assert info.value.code == "store_unavailable"


class CuttableProxy:
    """TCP proxy to the store that can go down: ``cut`` forwards the first ``budget`` bytes of
    each new request upstream, then drops both sides (a store lost mid-upload); ``down`` drops
    every connection at once."""

    def __init__(self, target: int, budget: int = 64 << 10) -> None:
        self.target = target
        self.budget = budget
        self.mode = "up"
        self.conns: list[socket.socket] = []
        self.lock = threading.Lock()
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def set(self, mode: str) -> None:
        with self.lock:
            self.mode = mode
            conns, self.conns = self.conns, []
        for c in conns:  # pooled keep-alive connections go too
            _close(c)

    def close(self) -> None:
        self.set("closed")
        _close(self.server)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        if self.mode == "down":
            _close(client)
            return
        try:
            upstream = socket.create_connection(("127.0.0.1", self.target))
        except OSError:
            _close(client)
            return
        with self.lock:
            mode = self.mode
            self.conns += [client, upstream]
        if mode == "cut":
            client.settimeout(0.3)  # a small request ends sooner: cut it after a pause
            sent = 0
            try:
                while sent < self.budget:
                    data = client.recv(min(65536, self.budget - sent))
                    if not data:
                        break
                    upstream.sendall(data)
                    sent += len(data)
            except OSError:
                pass
            _close(client)
            _close(upstream)
            return
        threading.Thread(target=_pump, args=(upstream, client), daemon=True).start()
        _pump(client, upstream)


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    _close(src)
    _close(dst)


def _close(s: socket.socket) -> None:
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    s.close()


def test_store_lost_mid_write_is_a_clear_error_and_nothing_half_written(seaweed, s3_prefix):
    port = int(seaweed.endpoint.rsplit(":", 1)[1])
    proxy = CuttableProxy(port)
    try:
        via = f"http://127.0.0.1:{proxy.port}"
        b = make(seaweed, s3_prefix, endpoint=via, timeout=3)
        b.put(KEY_A, b"before")
        block = os.urandom(1 << 20)

        proxy.set("cut")  # each request dies after 64 KiB of its upload
        t0 = time.monotonic()
        with pytest.raises(StoreUnavailable) as info:
            b.put(KEY_B, block)
        assert time.monotonic() - t0 < 15
        assert via in str(info.value) and "put" in str(info.value)
        proxy.set("down")  # connections refused at once
        with pytest.raises(StoreUnavailable):  # down is not "missing"
            b.get(KEY_A)
        with pytest.raises(StoreUnavailable):
            b.exists(KEY_A)
        with pytest.raises(StoreUnavailable):
            list(b.list())

        # nothing of the cut upload in the bucket, no multipart upload pending
        assert seaweed.keys(s3_prefix) == {KEY_A: 6}
        uploads = seaweed.client().list_multipart_uploads(Bucket=seaweed.bucket, Prefix=s3_prefix)
        assert not uploads.get("Uploads")

        proxy.set("up")  # the store is back: the same backend works again
        b.put(KEY_B, block)
        assert b.get(KEY_B) == block
        assert seaweed.keys(s3_prefix) == {KEY_A: 6, KEY_B: 1 << 20}
    finally:
        proxy.close()


def test_missing_key_is_not_found_and_delete_of_missing_is_fine(seaweed, s3_prefix):
    b = make(seaweed, s3_prefix)
    with pytest.raises(NotFound):
        b.get(KEY_A)
    b.delete(KEY_A)
    assert not b.exists(KEY_A)


def test_control_client_reaches_the_same_bucket(seaweed, s3_prefix):
    b = make(seaweed, s3_prefix)
    b.put(KEY_A, b"12345")
    head = b.control_client().head_object(Bucket=seaweed.bucket, Key=f"{s3_prefix}/{KEY_A}")
    assert head["ContentLength"] == 5


def test_store_unavailable_is_503_over_the_api_and_webdav():
    from davdrive.api.errors import status_of as api_status
    from providers.errors import to_dav_error

    exc = StoreUnavailable("S3 store http://x (bucket 'b'): get failed: down", retry_after=30)
    assert api_status(exc) == 503
    dav = to_dav_error(exc)
    assert dav.value == 503
    assert ("Retry-After", "30") in (dav.add_headers or [])
