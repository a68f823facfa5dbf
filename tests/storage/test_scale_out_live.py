"""``config/scale-out.yaml`` as shipped, pointed at the test PostgreSQL and SeaweedFS: two
``davdrive serve`` processes share the metadata and the bucket; a file written through one is
read through the other, its blocks in the bucket and nowhere on local disk."""

from __future__ import annotations

import os
from pathlib import Path

import requests
import yaml

SCALE_OUT = Path(__file__).resolve().parents[2] / "config" / "scale-out.yaml"


def test_scale_out_config_runs_two_processes_on_postgresql_and_s3(
    s3_env, s3_prefix, pg_url, tmp_path, monkeypatch, live_server_factory
):
    config = yaml.safe_load(SCALE_OUT.read_text())
    data = tmp_path / "node"
    config.update(
        data_dir=str(data),
        database_url=pg_url,
        bus_url="postgresql://",  # LISTEN/NOTIFY on the same database
        blocks_url=s3_env.url(s3_prefix, region="us-east-1", timeout="10"),
        master_key_file=str(tmp_path / "master.key"),
        inline_max=0,
        metrics="off",
    )
    path = tmp_path / "scale-out.yaml"
    path.write_text(yaml.safe_dump(config))
    monkeypatch.setenv("DAVDRIVE_CONFIG", str(path))  # keys: AWS_* in the environment

    first = live_server_factory(data_dir=data)
    second = live_server_factory(data_dir=data, create_users=False)
    assert first.port != second.port

    body = os.urandom(700 << 10)
    r = requests.put(first.dav("alice") + "shared.bin", data=body, auth=first.auth("alice"))
    assert r.status_code in (201, 204), r.text
    r = requests.get(second.dav("alice") + "shared.bin", auth=second.auth("alice"), timeout=30)
    assert r.status_code == 200 and r.content == body
    assert s3_env.keys(s3_prefix), "no block reached the bucket"
    assert not (data / "blocks").exists()
