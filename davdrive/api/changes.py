"""``/changes`` (offline queue replay) and ``/longpoll`` (Dropbox-style wait for changes).

A parked long-poll is answered by one answering thread, not by its own worker: when a write
wakes a thousand polls of one account, that thread writes the thousand pre-rendered answers
(``{"changes":true}``, the same bytes for every poll it confirms) straight through each
request's WSGI ``start_response``/``write``, one after the other, and only then lets the parked
workers go on to finish their requests (access log, metrics, keep-alive). The alternative — a
thousand workers waking at once, each building a Flask response — cost ~0.2 ms of GIL time per
answer, so the last answer of a herd left 200-300 ms after the first. A poll whose answer is
anything else (timeout, shutdown, a wake-up before its worker parked) is answered by its own
worker, as before.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterable
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from davdrive.api.util import drive, int_arg, principal, rfc3339
from davdrive.service.changes import Changes, Watch

bp = Blueprint("changes", __name__)
MAX_TIMEOUT = 120
BACKOFF = 10
log = logging.getLogger(__name__)


def _feed() -> Changes:
    return Changes(drive())


@bp.get("/changes/latest")
def latest() -> Any:
    return jsonify({"cursor": _feed().latest(principal())})


@bp.get("/changes")
def changes() -> Any:
    cursor = request.args.get("cursor", "0")
    limit = int_arg(request.args.get("limit"), "limit", default=500, lo=1, hi=2000)
    feed = _feed()
    items, nxt, more = feed.since(principal(), cursor, limit=limit)
    feed.remember(principal(), nxt)
    return jsonify(
        {
            "changes": [
                {
                    "id": c.id,
                    "kind": c.kind,
                    "path": c.path,
                    "from_path": c.from_path,
                    "rev": c.rev,
                    "is_dir": c.is_dir,
                    "at": rfc3339(c.at),
                    "device": c.device,
                }
                for c in items
            ],
            "cursor": nxt,
            "has_more": more,
        }
    )


# The long-poll's two answers, rendered once (byte for byte what ``jsonify`` gives).
ANSWER = {True: b'{"changes":true}\n', False: b'{"changes":false}\n'}
HEADERS = {
    changed: [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    for changed, body in ANSWER.items()
}

# Where a parked poll stands; its ``mutex`` guards every move between them.
WAITING = 0  # parked (or about to park), no answer yet
WOKEN = 1  # woken before its worker parked: the worker answers
ANSWERING = 2  # the answering thread is writing its answer
ANSWERED = 3  # answered by the answering thread
OWN = 4  # its worker answers it (timeout, shutdown)


class _Poll:
    """One parked long-poll: the handshake between its worker and the answering thread."""

    __slots__ = ("done", "error", "mutex", "start_response", "state", "watch")

    def __init__(self) -> None:
        self.mutex = threading.Lock()
        self.done = threading.Lock()  # held until the worker may go on
        self.done.acquire()
        self.state = WAITING
        self.start_response: Callable[..., Any] | None = None
        self.watch: Watch | None = None
        self.error: BaseException | None = None

    def wake(self, changed: bool) -> None:
        """The bus callback (on the delivering thread: kept short)."""
        if changed:
            ANSWERER.submit(self)
            return
        with self.mutex:  # the bus is closing: the worker answers from the journal
            if self.state != WAITING:
                return
            self.state = OWN
            parked = self.start_response is not None
        if parked:
            self.done.release()

    def claim(self) -> bool:
        """For the answering thread: True when it is to write this poll's answer."""
        with self.mutex:
            if self.state != WAITING:
                return False
            if self.start_response is None:
                self.state = WOKEN
                return False
            self.state = ANSWERING
            return True

    def send(self, changed: bool) -> None:
        """Write the answer through the request's own WSGI callables (answering thread)."""
        try:
            assert self.start_response is not None
            write = self.start_response("200 OK", list(HEADERS[changed]))
            write(ANSWER[changed])
        except Exception as exc:  # noqa: BLE001 - the client went away; its worker reports it
            self.error = exc
        finally:
            with self.mutex:
                self.state = ANSWERED
            self.done.release()


class _Answerer:
    """The thread that answers woken polls in batches (see the module docstring)."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[_Poll] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def submit(self, poll: _Poll) -> None:
        self._queue.put(poll)
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._run, name="davdrive-longpoll", daemon=True
                    )
                    self._thread.start()

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            try:
                while True:
                    batch.append(self._queue.get_nowait())
            except queue.Empty:
                pass
            try:
                self._answer(batch)
            except Exception:  # noqa: BLE001 - never lose the thread; the workers time out
                log.exception("answering %d long-polls failed", len(batch))
                for poll in batch:
                    with poll.mutex:
                        if poll.state in (WAITING, ANSWERING):
                            poll.state = OWN
                            poll.done.release()

    @staticmethod
    def _answer(batch: list[_Poll]) -> None:
        claimed = [p for p in batch if p.claim()]
        if not claimed:
            return
        watches = [p.watch for p in claimed]
        # One journal query for the whole batch when the bus is not authoritative, none when it
        # is; then every answer is one of two pre-rendered bodies.
        verdicts = watches[0].feed.confirm_many(watches)  # type: ignore[union-attr,arg-type]
        for poll, changed in zip(claimed, verdicts, strict=True):
            poll.send(changed)


ANSWERER = _Answerer()


class ParkedPoll(Response):
    """The answer of a parked long-poll: a WSGI response that waits (in its worker) until the
    answering thread has written it, or answers itself at the timeout."""

    def __init__(self, poll: _Poll, timeout: float, release: Callable[[], None]) -> None:
        super().__init__()
        self.poll = poll
        self.timeout = timeout
        self.release = release

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        poll = self.poll
        watch = poll.watch
        assert watch is not None
        try:
            with poll.mutex:
                if poll.state == WAITING and watch.live:
                    poll.start_response = start_response
                    parked = True
                else:
                    parked = False
            if parked and not poll.done.acquire(timeout=self.timeout):
                with poll.mutex:
                    if poll.state == WAITING:
                        poll.state = OWN
                if poll.state != OWN:
                    poll.done.acquire()  # the answering thread is writing ours
            if parked and poll.state == ANSWERED:
                if poll.error is not None:
                    log.debug("long-poll answer not delivered: %s", poll.error)
                return []
            # Our own answer: woken before we parked (the bus's word, confirmed as the
            # answering thread would), or the timeout or shutdown (the journal's word).
            if poll.state == WOKEN:
                changed = watch.feed.confirm_many([watch])[0]
            else:
                changed = watch.confirmed()
            start_response("200 OK", list(HEADERS[changed]))
            return [ANSWER[changed]]
        finally:
            watch.cancel()
            self.release()


@bp.get("/longpoll")
def longpoll() -> Any:
    cursor = request.args.get("cursor", "")
    timeout = int_arg(request.args.get("timeout"), "timeout", default=30, lo=1, hi=MAX_TIMEOUT)
    slots = current_app.config["longpoll_slots"]
    if not slots.acquire(blocking=False):
        # Every long-poll slot is busy: answer now so WebDAV keeps its worker threads.
        return jsonify({"changes": False, "backoff": BACKOFF})
    poll = _Poll()
    try:
        poll.watch = _feed().watch(principal(), cursor, poll.wake)
    except BaseException:
        slots.release()
        raise
    if poll.watch is None:  # the journal is past the cursor already
        slots.release()
        return jsonify({"changes": True})
    return ParkedPoll(poll, timeout, slots.release)
