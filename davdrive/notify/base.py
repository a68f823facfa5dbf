"""The bus interface and the in-process implementation (the embedded default)."""

from __future__ import annotations

import threading
import time


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
        # One condition per account with waiters (all on the one lock), so a write wakes that
        # account's long-polls only, not every waiting thread of the process.
        self._waiting: dict[int, tuple[threading.Condition, int]] = {}
        self._closed = False

    def publish(self, account_id: int, seq: int) -> None:
        """Announce a committed change (called after the transaction commits)."""
        self._deliver(account_id, seq)

    def _deliver(self, account_id: int, seq: int) -> None:
        """Wake this process's waiters for ``account_id``."""
        with self._lock:
            if seq > self._latest.get(account_id, 0):
                self._latest[account_id] = seq
            entry = self._waiting.get(account_id)
            if entry is not None:
                entry[0].notify_all()

    def wait(self, account_id: int, after_seq: int, timeout: float) -> bool:
        """Block until a change past ``after_seq`` is announced for the account, the timeout
        passes (False) or the bus closes (False). Costs no CPU while waiting."""
        deadline = time.monotonic() + timeout
        with self._lock:
            cond, count = self._waiting.get(account_id) or (threading.Condition(self._lock), 0)
            self._waiting[account_id] = (cond, count + 1)
            try:
                while self._latest.get(account_id, 0) <= after_seq:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or self._closed:
                        return False
                    cond.wait(remaining)
                return True
            finally:
                cond, count = self._waiting[account_id]
                if count > 1:
                    self._waiting[account_id] = (cond, count - 1)
                else:
                    del self._waiting[account_id]

    def close(self) -> None:
        """Release every waiter (shutdown)."""
        with self._lock:
            self._closed = True
            for cond, _count in self._waiting.values():
                cond.notify_all()
