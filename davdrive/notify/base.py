"""The bus interface and the in-process implementation (the embedded default)."""

from __future__ import annotations

import threading
from collections.abc import Callable


class Subscription:
    """One waiter's interest in an account's journal passing ``after_seq`` (``Bus.subscribe``).

    ``callback(True)`` runs once, on the delivering thread and outside the bus lock, when a
    change past ``after_seq`` is announced; ``callback(False)`` when the bus closes.
    """

    __slots__ = ("account_id", "after_seq", "callback")

    def __init__(self, account_id: int, after_seq: int, callback: Callable[[bool], None]) -> None:
        self.account_id = account_id
        self.after_seq = after_seq
        self.callback = callback


class Bus:
    """Publish "account A's journal reached seq N" after commit; wait for it elsewhere.

    The journal in SQL stays the source of truth: a waiter re-reads it after waking, so a lost
    or duplicated notification costs latency, never correctness.
    """

    # True when only this process's own commits can announce changes, so a wake-up needs no
    # second look at the journal; a bus fed from outside (NOTIFY) sets it False.
    authoritative = True

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._latest: dict[int, int] = {}
        # The subscriptions of each account with waiters, so a write wakes that account's
        # long-polls only. Each waiter sleeps on a lock of its own (``wait``): a write that
        # wakes a thousand polls releases a thousand locks, and no woken thread queues for a
        # shared one (the old single condition made them file through the bus lock one by one).
        self._waiting: dict[int, dict[Subscription, None]] = {}
        self._closed = False

    def publish(self, account_id: int, seq: int) -> None:
        """Announce a committed change (called after the transaction commits)."""
        self._deliver(account_id, seq)

    def _deliver(self, account_id: int, seq: int) -> None:
        """Wake this process's waiters for ``account_id`` whose cursor ``seq`` passes."""
        with self._lock:
            if seq > self._latest.get(account_id, 0):
                self._latest[account_id] = seq
            subs = self._waiting.get(account_id)
            if not subs:
                return
            due = [s for s in subs if s.after_seq < seq]
            for s in due:
                del subs[s]
            if not subs:
                del self._waiting[account_id]
        for s in due:
            s.callback(True)

    def subscribe(
        self, account_id: int, after_seq: int, callback: Callable[[bool], None]
    ) -> Subscription | None:
        """Call ``callback`` once when a change past ``after_seq`` is announced for the account
        (True) or the bus closes (False). None, and no call, when one was announced already
        (or the bus is closed: then the caller asks the journal)."""
        with self._lock:
            if self._closed or self._latest.get(account_id, 0) > after_seq:
                return None
            sub = Subscription(account_id, after_seq, callback)
            self._waiting.setdefault(account_id, {})[sub] = None
            return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """Forget ``sub`` (harmless when it was delivered already)."""
        with self._lock:
            subs = self._waiting.get(sub.account_id)
            if subs is not None and subs.pop(sub, 0) is None and not subs:
                del self._waiting[sub.account_id]

    def wait(self, account_id: int, after_seq: int, timeout: float) -> bool:
        """Block until a change past ``after_seq`` is announced for the account, the timeout
        passes (False) or the bus closes (False). Costs no CPU while waiting."""
        woken = threading.Lock()
        woken.acquire()
        outcome: list[bool] = []

        def wake(changed: bool) -> None:
            outcome.append(changed)
            woken.release()

        sub = self.subscribe(account_id, after_seq, wake)
        if sub is None:
            with self._lock:
                return not self._closed
        try:
            if woken.acquire(timeout=max(0.0, timeout)):
                return outcome[0]
            return False
        finally:
            self.unsubscribe(sub)

    def close(self) -> None:
        """Release every waiter (shutdown)."""
        with self._lock:
            self._closed = True
            subs = [s for by_account in self._waiting.values() for s in by_account]
            self._waiting.clear()
        for s in subs:
            s.callback(False)
