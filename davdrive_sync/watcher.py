"""``davdrive-sync run``: a pass whenever something changed, here (watchdog) or on the server
(long-poll), debounced; and a full pass every ``interval`` seconds as a safety net."""

from __future__ import annotations

import logging
import threading
import time

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from davdrive_sync.engine import Engine, GuardTripped, SyncError
from davdrive_sync.remote import Remote, RemoteError
from davdrive_sync.state import META_DIR

log = logging.getLogger(__name__)


class _Wake:
    """A flag with the time of the last event (for debouncing)."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.pending = True  # a first pass at start
        self.last = 0.0

    def poke(self) -> None:
        with self.cond:
            self.pending = True
            self.last = time.monotonic()
            self.cond.notify_all()


class _Handler(FileSystemEventHandler):
    def __init__(self, wake: _Wake) -> None:
        self.wake = wake

    def on_any_event(self, event: FileSystemEvent) -> None:
        paths = [str(event.src_path), str(getattr(event, "dest_path", "") or "")]
        if all(f"/{META_DIR}" in p or not p for p in paths):
            return
        if event.event_type in ("opened", "closed_no_write"):
            return
        self.wake.poke()


def _longpoll(remote: Remote, engine: Engine, wake: _Wake, stop: threading.Event) -> None:
    while not stop.is_set():
        cursor = engine.cursor
        if cursor is None:
            stop.wait(2)
            continue
        try:
            changed, backoff = remote.longpoll(cursor, timeout=60)
        except RemoteError as exc:
            log.debug("long-poll: %s", exc)
            stop.wait(10)
            continue
        if changed:
            wake.poke()
            stop.wait(1)  # the pass moves the cursor
        elif backoff:
            stop.wait(backoff)


def run_forever(
    engine: Engine,
    poll_remote: Remote,
    *,
    debounce: float = 1.0,
    interval: float = 300.0,
) -> None:
    """Pass, wait for an event (or ``interval``), let events settle for ``debounce``, repeat.

    ``poll_remote`` is a second connection for the long-poll (the engine's is busy with
    passes)."""
    wake = _Wake()
    observer = Observer()
    observer.schedule(_Handler(wake), str(engine.local), recursive=True)
    observer.start()
    stop = threading.Event()
    poller = threading.Thread(target=_longpoll, args=(poll_remote, engine, wake, stop), daemon=True)
    poller.start()
    log.info("watching %s (server %s)", engine.local, engine.cfg.url)
    last_pass = 0.0
    guard_said = ""
    try:
        while True:
            with wake.cond:
                deadline = last_pass + interval
                while not wake.pending and time.monotonic() < deadline:
                    wake.cond.wait(max(0.1, deadline - time.monotonic()))
                # quiet period: editors write in bursts
                while time.monotonic() - wake.last < debounce:
                    wake.cond.wait(debounce)
                wake.pending = False
            try:
                stats = engine.sync()
                guard_said = ""
                if stats.busy():
                    log.info("synced: %s", stats.summary())
            except GuardTripped as exc:
                if str(exc) != guard_said:
                    log.error("stopped: %s", exc)
                    guard_said = str(exc)
            except (SyncError, RemoteError, OSError) as exc:
                log.warning("pass failed (retrying soon): %s", exc)
                time.sleep(min(30.0, interval))
                wake.poke()
            last_pass = time.monotonic()
    finally:
        stop.set()
        observer.stop()
        observer.join(5)
