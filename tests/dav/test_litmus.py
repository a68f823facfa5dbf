"""litmus (the neon WebDAV conformance suite), every suite, against a real server."""

from __future__ import annotations

import re
import subprocess

from tests.conftest import require_tool

SUITES = {"basic": 16, "copymove": 13, "props": 30, "locks": 41, "http": 4}


def test_litmus_all_suites_pass(any_server, tmp_path):
    litmus = require_tool("litmus")
    out = subprocess.run(
        [litmus, any_server.dav("alice"), "alice", "alice-pw"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    ).stdout
    summaries = {
        m["suite"]: (int(m["run"]), int(m["passed"]), int(m["failed"]))
        for m in re.finditer(
            r"summary for `(?P<suite>\w+)': of (?P<run>\d+) tests run: "
            r"(?P<passed>\d+) passed, (?P<failed>\d+) failed",
            out,
        )
    }
    assert set(summaries) == set(SUITES), out[-3000:]
    for suite, expected in SUITES.items():
        run, passed, failed = summaries[suite]
        assert failed == 0 and passed == run == expected, (suite, out[-3000:])
    # litmus prints WARNING lines for tolerated deviations; we have none today.
    assert "WARNING" not in out, out
