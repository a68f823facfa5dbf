"""Scale-out: two real ``davdrive serve`` processes on one PostgreSQL database and one data
directory; a write through one wakes a long-poll held by the other (LISTEN/NOTIFY)."""

from __future__ import annotations

import threading
import time

import requests

from tests.live import run_cli


def test_a_write_through_one_process_wakes_a_long_poll_on_the_other(
    live_server_factory, pg_url, tmp_path
):
    cfg = tmp_path / "scale-out.yaml"
    cfg.write_text(f'database_url: "{pg_url}"\nbus_url: "postgresql://"\n')
    data = tmp_path / "shared" / "data"
    run_cli(data, "--config", str(cfg), "init")
    run_cli(data, "--config", str(cfg), "user", "add", "alice", "--password-stdin",
            input="alice-pw\n")  # fmt: skip
    a, b = (
        live_server_factory(create_users=False, data_dir=data, extra_args=("--config", str(cfg)))
        for _ in range(2)
    )
    auth = ("alice", "alice-pw")
    cursor = requests.get(f"{b.url}/api/v1/changes/latest", auth=auth, timeout=10).json()["cursor"]
    result: dict[str, object] = {}

    def poll() -> None:
        r = requests.get(f"{b.url}/api/v1/longpoll", params={"cursor": cursor, "timeout": 30},
                         auth=auth, timeout=40)  # fmt: skip
        result["body"], result["at"] = r.json(), time.monotonic()

    t = threading.Thread(target=poll)
    t.start()
    time.sleep(1.0)
    assert t.is_alive(), "the long-poll answered before any write"
    wrote = time.monotonic()
    put = requests.put(f"{a.url}/dav/alice/from-a.txt", data=b"written via a", auth=auth,
                       timeout=10)  # fmt: skip
    assert put.status_code == 201
    t.join(10)
    assert result["body"] == {"changes": True}
    assert result["at"] - wrote < 2.0  # NOTIFY, not the 30 s timeout
    # the other process serves the same metadata and blocks at once
    got = requests.get(f"{b.url}/dav/alice/from-a.txt", auth=auth, timeout=10)
    assert got.status_code == 200 and got.content == b"written via a"
    feed = requests.get(f"{b.url}/api/v1/changes", params={"cursor": cursor}, auth=auth,
                        timeout=10).json()  # fmt: skip
    assert [c["path"] for c in feed["changes"]] == ["/from-a.txt"]
