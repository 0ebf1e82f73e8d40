"""Outbound deliveries (callbacks, webhooks) shared by the PSA sandboxes.

A vendor module keeps its own `Delivery` record, headers, retry schedule and threading; this
base holds the records, the in-flight count, the retry loop and the HTTP plumbing they share.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Generic, Protocol, TypeVar

import httpx


class DeliveryRecord(Protocol):
    """What the dispatcher reads and writes on a vendor's `Delivery` dataclass."""

    url: str
    body: bytes
    attempts: int
    status_code: int | None
    error: str | None
    dropped: bool
    done: bool


D = TypeVar("D", bound=DeliveryRecord)


def is_success(status: int | None) -> bool:
    return status is not None and 200 <= status < 300


class Dispatcher(Generic[D]):
    """Records deliveries, counts those in flight and posts them with a retry schedule.

    `noun` names the deliveries in the `wait_idle` timeout message ("callback", "webhook").
    `submit` (one daemon thread per delivery, named `thread_name`) suits vendors without ordering;
    a vendor that queues deliveries overrides it and calls `_begin`/`_finish` itself.
    """

    noun = "webhook"
    thread_name = "delivery"

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._records: list[D] = []
        self._in_flight = 0
        self._cond = threading.Condition()
        self._stopping = threading.Event()
        self._client: httpx.Client | None = None

    # -- HTTP --------------------------------------------------------------------------------------

    def _new_client(self) -> httpx.Client:
        return httpx.Client(timeout=self.timeout_s, follow_redirects=False)

    def _http(self) -> httpx.Client:
        """One client shared by all deliveries, closed by `close()`."""
        with self._cond:
            if self._client is None:
                self._client = self._new_client()
            return self._client

    def _response_error(self, response: httpx.Response) -> str | None:
        """What a delivery records as `error` for an answer (default: nothing)."""
        return None

    def _post(
        self, http: httpx.Client, url: str, body: bytes, headers: Mapping[str, str]
    ) -> tuple[int | None, str | None]:
        try:
            response = http.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}: {exc}"
        return response.status_code, self._response_error(response)

    def _attempt_until(
        self,
        delivery: D,
        send: Callable[[], tuple[int | None, str | None]],
        delays: Iterable[float],
        retry: Callable[[int | None], bool],
    ) -> bool:
        """Send until `retry` says no; wait each of `delays` in between. True when it gave up
        (schedule exhausted or the dispatcher closing) on an answer `retry` still wanted retried."""
        pending = iter(delays)
        while True:
            status, error = send()
            with self._cond:
                delivery.attempts += 1
                delivery.status_code = status
                delivery.error = error
            if not retry(status):
                return False
            delay = next(pending, None)
            if delay is None or self._stopping.wait(delay):
                return True

    # -- bookkeeping -------------------------------------------------------------------------------

    def record_dropped(self, delivery: D, reason: str) -> None:
        with self._cond:
            delivery.dropped = True
            delivery.done = True
            delivery.error = reason
            self._records.append(delivery)

    def _begin(self, delivery: D) -> None:
        """Under the lock: record a delivery and count it in flight."""
        self._records.append(delivery)
        self._in_flight += 1

    def _finish(self, delivery: D) -> None:
        with self._cond:
            delivery.done = True
            self._in_flight -= 1
            self._cond.notify_all()

    def submit(self, delivery: D) -> None:
        with self._cond:
            self._begin(delivery)
        threading.Thread(target=self._run, args=(delivery,), name=self.thread_name, daemon=True).start()

    def _run(self, delivery: D) -> None:
        try:
            self._deliver(delivery)
        finally:
            self._finish(delivery)

    def _deliver(self, delivery: D) -> None:
        raise NotImplementedError

    def snapshot(self) -> list[D]:
        with self._cond:
            return [self._copy(record) for record in self._records]

    @staticmethod
    def _copy(record: D) -> D:
        copied: D = dataclasses.replace(record)  # type: ignore[type-var]
        return copied

    def clear(self) -> None:
        with self._cond:
            self._records = [record for record in self._records if not record.done]

    def wait_idle(self, timeout: float) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: self._in_flight == 0, timeout):
                raise TimeoutError(f"{self._in_flight} {self.noun} deliveries still in flight after {timeout}s")

    def open(self) -> None:
        self._stopping.clear()

    def close(self) -> None:
        self._stopping.set()
        with self._cond:
            client, self._client = self._client, None
        if client is not None:
            client.close()
