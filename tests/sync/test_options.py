"""``--remote-path``, LOCAL_DIR defaulting to the current directory, kept mtimes, special files,
exit codes, and the delete guard's thresholds from ``config.json``."""

from __future__ import annotations

import json
import os
import subprocess

import requests

from tests.sync.conftest import CLIENT, Device, server_tree


def test_remote_path_syncs_one_folder_and_local_dir_defaults_to_cwd(live_server, tmp_path):
    r = requests.put(
        live_server.dav("alice") + "outside.txt", data=b"not synced", auth=live_server.auth("alice")
    )
    assert r.status_code in (200, 201, 204)
    w = Device(live_server, tmp_path / "w", "W")
    w.init("--remote-path", "/Work")  # created on the server when missing
    w.write("plan/report.txt", "in Work")
    done = subprocess.run([*CLIENT, "once"], cwd=w.root, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    remote = server_tree(live_server)
    assert remote["Work/plan/report.txt"] == b"in Work" and "plan" not in remote
    assert "outside.txt" not in w.tree()
    status = subprocess.run([*CLIENT, "status"], cwd=w.root, capture_output=True, text=True)
    assert "remote:   /Work" in status.stdout and "synced:   1 files, 1 folders" in status.stdout

    v = Device(live_server, tmp_path / "v", "V")
    v.init("--remote-path", "Work/")
    v.once()
    assert v.tree() == {"plan": None, "plan/report.txt": b"in Work"}


def test_mtimes_are_kept_and_special_files_are_skipped(devices, live_server):
    a, b = devices("A"), devices("B")
    a.write("old.txt", "written long ago")
    os.utime(a.path("old.txt"), (1_600_000_000, 1_600_000_000))
    os.mkfifo(a.path("pipe"))  # reading it would block: it must not be opened
    out = a.once()
    assert "skipping pipe: not a regular file" in out.stderr
    assert set(server_tree(live_server)) == {"old.txt"}
    b.once()
    assert b.path("old.txt").stat().st_mtime == 1_600_000_000


def test_exit_codes(live_server, tmp_path):
    never = Device(live_server, tmp_path / "never", "N")
    never.root.mkdir()
    assert never.once(check=False).returncode == 2  # not set up
    d = Device(live_server, tmp_path / "d", "D")
    d.init()
    d.write("x.txt", "x")
    assert d.once(check=False).returncode == 0
    live_server.stop()
    down = d.cli("once", str(d.root), check=False, timeout=300)
    assert down.returncode == 1 and "not in sync" in down.stderr


def test_guard_thresholds_come_from_config_json(devices, live_server):
    a = devices("A")
    for i in range(20):
        a.write(f"f{i:02}.txt", f"file {i}")
    a.once()
    cfg_path = a.root / ".davdrive-sync" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    assert (cfg["guard_ratio"], cfg["guard_min"], cfg["guard_max"]) == (0.5, 5, 1000)
    cfg["guard_max"] = 3  # stands in for the default 1,000 of a big tree
    cfg_path.write_text(json.dumps(cfg))
    for i in range(4):  # 4 of 20: under the ratio and the minimum, over guard_max
        a.path(f"f{i:02}.txt").unlink()
    stopped = a.once(check=False)
    assert stopped.returncode == 3 and "would delete 4 of 20" in stopped.stderr
    assert len(server_tree(live_server)) == 20
    a.once("--force")
    assert len(server_tree(live_server)) == 16
