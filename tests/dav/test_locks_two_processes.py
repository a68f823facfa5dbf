"""Scale-out (issue 16, item 5): an exclusive LOCK is granted once, whichever of two server
processes on one PostgreSQL database the concurrent requests reach."""

from __future__ import annotations

import threading

import requests

from tests.live import run_cli

LOCK_BODY = (
    b'<?xml version="1.0" encoding="utf-8"?><D:lockinfo xmlns:D="DAV:">'
    b"<D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype>"
    b"<D:owner>racer</D:owner></D:lockinfo>"
)


def test_concurrent_exclusive_locks_across_two_processes(live_server_factory, pg_url, tmp_path):
    cfg = tmp_path / "scale-out.yaml"
    cfg.write_text(f'database_url: "{pg_url}"\nbus_url: "postgresql://"\n')
    data = tmp_path / "shared" / "data"
    run_cli(data, "--config", str(cfg), "init")
    run_cli(data, "--config", str(cfg), "user", "add", "alice", "--password-stdin",
            input="alice-pw\n")  # fmt: skip
    servers = [
        live_server_factory(create_users=False, data_dir=data, extra_args=("--config", str(cfg)))
        for _ in range(2)
    ]
    auth = ("alice", "alice-pw")
    for round_ in range(6):
        name = f"race-{round_}.txt"
        existing = round_ % 2 == 0  # half the rounds lock an existing file, half a new name
        if existing:
            put = requests.put(f"{servers[0].url}/dav/alice/{name}", data=b"x", auth=auth)
            assert put.status_code == 201
        barrier = threading.Barrier(8)
        codes: list[int] = []

        def lock(
            i: int,
            name: str = name,
            barrier: threading.Barrier = barrier,
            codes: list[int] = codes,
        ) -> None:
            barrier.wait()
            r = requests.request(
                "LOCK",
                f"{servers[i % 2].url}/dav/alice/{name}",
                data=LOCK_BODY,
                headers={"Timeout": "Second-60", "Depth": "0"},
                auth=auth,
                timeout=30,
            )
            codes.append(r.status_code)

        threads = [threading.Thread(target=lock, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        granted = [c for c in codes if c in (200, 201)]
        assert len(granted) == 1, (round_, sorted(codes))
        assert all(c == 423 for c in codes if c not in (200, 201)), sorted(codes)
