"""Stopping on SIGTERM (``kill``, ``systemctl stop``) and SIGINT (Ctrl-C), cleanly.

The first signal raises ``Stop`` in the main thread wherever it is: parked in a wait, in a
request, between two actions. What is in flight unwinds as after any error: a download's temp
file is removed by its ``finally``, queued block transfers are dropped and the ones in flight
(at most ``engine.PARALLEL`` blocks) finish, transfer threads stop retrying, and a state change
that had not committed is rolled back by SQLite. Every point the exception can hit is one
``kill -9`` could hit too, which the engine is built to survive (see "Crash safety" in
docs/SYNC.md); the signal adds the cleanup and the exit status. A second signal during that
cleanup ends the process at once.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from types import FrameType

from davdrive_sync.remote import Remote

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Stop(BaseException):
    """Raised by the first SIGTERM or SIGINT (a ``BaseException``, like ``KeyboardInterrupt``:
    no ``except Exception`` in the engine swallows it)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name


@contextlib.contextmanager
def stop_on_signals(*remotes: Remote) -> Iterator[None]:
    """While inside, SIGTERM and SIGINT raise ``Stop`` (once) and tell ``remotes`` to stop
    retrying. Main thread only (Python runs signal handlers there)."""
    fired = False

    def handler(signum: int, frame: FrameType | None) -> None:
        nonlocal fired
        for r in remotes:
            r.stopped = True
        if fired:
            os._exit(128 + signum)  # impatient: as safe as kill -9, without the cleanup
        fired = True
        raise Stop(signum)

    old = {s: signal.signal(s, handler) for s in SIGNALS}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
