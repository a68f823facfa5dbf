"""A commit the server refuses because a block went missing between ``blocks/check`` and
``files/commit`` (staging expired, a purge collected it) is retried in place: the client sends
the blocks the server names and commits again, in the same pass."""

from __future__ import annotations

import os

from davdrive_sync.cli import open_engine
from tests.sync.conftest import server_tree


def test_blocks_gone_before_the_commit_are_sent_again_in_the_same_pass(devices, live_server):
    a = devices("A")
    data = os.urandom(3 << 20)  # a few blocks
    a.write("big.bin", data)
    eng = open_engine(a.root)
    real = eng.remote.blocks_missing
    asked: list[int] = []

    def held_says_the_server(ids: list[str], batch: int | None = None) -> set[str]:
        # The check answers "all held", as when the blocks vanish right after it.
        asked.append(len(real(ids, batch)))
        return set()

    eng.remote.blocks_missing = held_says_the_server  # type: ignore[method-assign]
    try:
        stats = eng.sync()
    finally:
        eng.state.close()
    assert asked and asked[0] >= 1  # the server did not hold them
    assert stats.uploaded == 1 and stats.bytes_up == len(data)
    assert server_tree(live_server)["big.bin"] == data
