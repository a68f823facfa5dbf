"""Master key file, wrapping of account keys, rotation."""

from __future__ import annotations

import base64
import os

import pytest

from davdrive.blockstore.keys import ENV_MASTER_KEY, AccountKeys, KeyRing, new_data_key
from davdrive.errors import IntegrityError


def test_key_file_created_private_and_reloaded(tmp_path):
    path = tmp_path / "master.key"
    ring = KeyRing.load_or_create(path, env={})
    assert path.stat().st_mode & 0o777 == 0o600
    again = KeyRing.load_or_create(path, env={})
    assert again.current_id == ring.current_id
    kid, wrapped = ring.wrap(b"k" * 32, b"ctx")
    assert again.unwrap(kid, wrapped, b"ctx") == b"k" * 32


def test_world_readable_key_file_is_refused(tmp_path):
    path = tmp_path / "master.key"
    KeyRing.load_or_create(path, env={})
    os.chmod(path, 0o644)
    with pytest.raises(PermissionError):
        KeyRing.load_or_create(path, env={})


def test_wrapped_key_is_bound_to_its_context(tmp_path):
    ring = KeyRing.load_or_create(tmp_path / "k", env={})
    kid, wrapped = ring.wrap(new_data_key(), b"user 1")
    with pytest.raises(IntegrityError):
        ring.unwrap(kid, wrapped, b"user 2")


def test_rotation_keeps_old_wraps_readable(tmp_path):
    path = tmp_path / "k"
    ring = KeyRing.load_or_create(path, env={})
    old_id, wrapped = ring.wrap(b"d" * 32, b"c")
    new_id = ring.rotate()
    assert new_id != old_id and ring.current_id == new_id
    reloaded = KeyRing.load_or_create(path, env={})
    assert reloaded.current_id == new_id
    assert reloaded.unwrap(old_id, wrapped, b"c") == b"d" * 32
    reloaded.retire(old_id)
    with pytest.raises(IntegrityError):
        KeyRing.load_or_create(path, env={}).unwrap(old_id, wrapped, b"c")


def test_env_key_becomes_current(tmp_path):
    key = os.urandom(32)
    ring = KeyRing.load_or_create(
        tmp_path / "k", env={ENV_MASTER_KEY: base64.b64encode(key).decode()}
    )
    assert not (tmp_path / "k").exists()
    kid, wrapped = ring.wrap(b"x" * 32, b"c")
    assert ring.unwrap(kid, wrapped, b"c") == b"x" * 32
    with pytest.raises(ValueError):
        KeyRing.load_or_create(tmp_path / "k", env={ENV_MASTER_KEY: "bm90IGEga2V5"})


def test_object_keys_differ_per_account():
    a = AccountKeys.from_data_key(new_data_key(), 1)
    b = AccountKeys.from_data_key(new_data_key(), 1)
    h = "00" * 32
    assert a.object_key(h) != b.object_key(h)
    assert a.object_key(h) == a.object_key(h)
    assert "enc_key" not in repr(a)


def test_unwrap_of_a_key_rotated_in_another_process_rereads_the_key_file(tmp_path):
    path = tmp_path / "master.key"
    server = KeyRing.load_or_create(path, env={})  # a running server
    old_id = server.current_id
    cli = KeyRing.load_or_create(path, env={})  # `davdrive key rotate` in another process
    new_id = cli.rotate()
    kid, wrapped = cli.wrap(b"a" * 32, b"user 7")  # the account rewrapped under the new key
    assert kid == new_id
    assert server.unwrap(kid, wrapped, b"user 7") == b"a" * 32
    assert server.current_id == new_id and server.ids == [new_id, old_id]
    assert server.wrap(b"b" * 32, b"user 8")[0] == new_id  # new wraps use the newest key
    with pytest.raises(IntegrityError):
        server.unwrap("0" * 16, wrapped, b"user 7")  # still unknown after a re-read


def test_wrap_uses_a_key_added_by_another_process(tmp_path):
    path = tmp_path / "master.key"
    server = KeyRing.load_or_create(path, env={})
    new_id = KeyRing.load_or_create(path, env={}).rotate()
    kid, wrapped = server.wrap(b"c" * 32, b"ctx")
    assert kid == new_id
    assert KeyRing.load_or_create(path, env={}).unwrap(kid, wrapped, b"ctx") == b"c" * 32


def test_rotation_keeps_keys_another_process_added(tmp_path):
    path = tmp_path / "master.key"
    a = KeyRing.load_or_create(path, env={})
    b = KeyRing.load_or_create(path, env={})
    first = a.current_id
    second = a.rotate()
    third = b.rotate()  # b never saw `second`: it must not drop it from the file
    assert KeyRing.load_or_create(path, env={}).ids == [third, second, first]


def test_concurrent_unwraps_after_a_rotation_elsewhere(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    path = tmp_path / "master.key"
    server = KeyRing.load_or_create(path, env={})
    cli = KeyRing.load_or_create(path, env={})
    cli.rotate()
    wrapped = [cli.wrap(bytes([i]) * 32, str(i).encode()) for i in range(64)]
    with ThreadPoolExecutor(16) as pool:
        got = list(pool.map(lambda i: server.unwrap(*wrapped[i], str(i).encode()), range(64)))
    assert got == [bytes([i]) * 32 for i in range(64)]
