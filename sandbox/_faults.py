"""The injected-failure queue shared by the PSA sandboxes' `Faults` knobs."""

from __future__ import annotations

import threading


class FailureQueue:
    """`take_failure` and friends for a `Faults` dataclass that declares `_pending` and `_lock`.

    Not a dataclass itself, so the vendor's `Faults` keeps its own fields and their order.
    """

    _pending: list[int]
    _lock: threading.Lock

    def _queue_failures(self, n: int, status: int) -> None:
        with self._lock:
            self._pending.extend([status] * n)

    def take_failure(self) -> int | None:
        with self._lock:
            return self._pending.pop(0) if self._pending else None

    def _clear_failures(self) -> None:
        with self._lock:
            self._pending.clear()
