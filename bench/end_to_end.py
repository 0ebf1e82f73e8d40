"""Webhook → ticket closed, end to end on the sandbox.

A password-reset ticket for Anna (Contoso Dental) is created in the ConnectWise sandbox as she
would create it through the portal; the sandbox fires its signed callback at the app, the app
queues it, the worker resolves it and closes the ticket. The clock runs from `create_ticket` to
the moment the sandbox shows the ticket closed (polled every 10 ms)."""

from __future__ import annotations

import functools
import re
import statistics
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from bench.common import BenchError, Table, ms, percentile
from sandbox import scenario as world
from sandbox.stack import LocalStack

POLL_S = 0.010
CLOSE_TIMEOUT_S = 60.0
TICKET = next(t for t in world.DEMO_TICKETS if t.requester == "anna" and t.expected == "resolved")
_ID = re.compile(r"/\d+(?=/|$)|/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(?=/|$)")


class StorageCounter:
    """Counts the app's Table and Queue operations by wrapping `tierone.storage`'s async facade.

    The app runs in this process, so the wrappers see every call; they only count."""

    METHODS: ClassVar[dict[str, tuple[str, ...]]] = {
        "Table": ("insert", "get", "upsert", "update", "delete", "transact", "query"),
        "Queue": ("send",),
    }

    def __init__(self) -> None:
        self.calls: list[str] = []
        self._originals: list[tuple[type, str, Callable[..., Awaitable[Any]]]] = []

    def install(self) -> None:
        from tierone import storage

        for class_name, methods in self.METHODS.items():
            cls = getattr(storage, class_name)
            for name in methods:
                original = getattr(cls, name)
                self._originals.append((cls, name, original))
                setattr(cls, name, self._wrap(original, name))

    def _wrap(self, original: Callable[..., Awaitable[Any]], method: str) -> Callable[..., Awaitable[Any]]:
        calls = self.calls

        @functools.wraps(original)
        async def counted(this: Any, *args: Any, **kwargs: Any) -> Any:
            calls.append(f"{method} {this.name}")
            return await original(this, *args, **kwargs)

        return counted

    def uninstall(self) -> None:
        for cls, name, original in reversed(self._originals):
            setattr(cls, name, original)
        self._originals.clear()


COUNTER = StorageCounter()


@dataclass
class TicketRun:
    ticket_id: int
    seconds: float  # create_ticket → closedFlag seen
    acked_after: float  # create_ticket → webhook invocation finished
    worker_start_after: float  # create_ticket → worker invocation started
    worker_seconds: float  # the worker invocation, start to end
    webhook_invocations: int
    worker_invocations: int
    psa_calls: list[str]
    graph_calls: list[str]
    storage_calls: list[str]


@dataclass
class Series:
    label: str
    cw_latency_ms: int
    graph_latency_ms: int
    runs: list[TicketRun] = field(default_factory=list)

    @property
    def seconds(self) -> list[float]:
        return [r.seconds for r in self.runs]

    def per_ticket(self, attr: str) -> float:
        return sum(len(getattr(r, attr)) for r in self.runs) / len(self.runs)


def _shape(method: str, path: str) -> str:
    return f"{method} {_ID.sub('/{id}', path)}"


def run_ticket(stack: LocalStack, scenario: world.Scenario) -> TicketRun:
    assert stack.host is not None
    cw, graph, host = stack.connectwise, stack.graph, stack.host
    psa_before, graph_before = len(cw.request_log), len(graph.request_log)
    invocations_before = len(host.invocations)
    storage_before = len(COUNTER.calls)
    wall0 = datetime.now(UTC)
    start = time.perf_counter()
    ticket_id = world.create_ticket(stack, scenario, TICKET)
    deadline = start + CLOSE_TIMEOUT_S
    while True:
        ticket = cw.ticket(ticket_id)
        if ticket.get("closedFlag"):
            seconds = time.perf_counter() - start
            break
        status = (ticket.get("status") or {}).get("name", "")
        if status == stack.env.get("CONNECTWISE_ESCALATION_STATUS", "Escalated"):
            raise BenchError(f"ticket #{ticket_id} was escalated instead of resolved; see the app's log")
        if time.perf_counter() > deadline:
            raise BenchError(f"ticket #{ticket_id} was not closed within {CLOSE_TIMEOUT_S:.0f}s (status {status!r})")
        time.sleep(POLL_S)
    stack.wait_until_idle(timeout=CLOSE_TIMEOUT_S)
    new = host.invocations[invocations_before:]
    failed = [i for i in new if not i.ok]
    if failed:
        raise BenchError(f"ticket #{ticket_id}: {failed[0].function_name} failed: {failed[0].error}")
    webhooks = [i for i in new if i.function_name == "connectwise_webhook"]
    workers = [i for i in new if i.function_name == "ticket_worker"]
    if not webhooks or not workers:
        raise BenchError(f"ticket #{ticket_id}: expected a webhook and a worker invocation, saw {new}")

    def after(moment: datetime) -> float:
        return (moment - wall0).total_seconds()

    first_hook, worker = webhooks[0], workers[0]
    return TicketRun(
        ticket_id=ticket_id,
        seconds=seconds,
        acked_after=after(first_hook.started_at + timedelta(milliseconds=first_hook.duration_ms)),
        worker_start_after=after(worker.started_at),
        worker_seconds=worker.duration_ms / 1000,
        webhook_invocations=len(webhooks),
        worker_invocations=len(workers),
        psa_calls=[_shape(r.method, r.path) for r in cw.request_log[psa_before:]],
        graph_calls=[_shape(r.method, r.path.removeprefix("/v1.0")) for r in graph.request_log[graph_before:]],
        storage_calls=COUNTER.calls[storage_before:],
    )


def run_series(
    stack: LocalStack, scenario: world.Scenario, label: str, n: int, *, cw_ms: int = 0, graph_ms: int = 0
) -> Series:
    series = Series(label, cw_ms, graph_ms)
    stack.connectwise.faults.latency_ms = cw_ms
    stack.graph.faults.latency_ms = graph_ms
    try:
        for _ in range(n):
            series.runs.append(run_ticket(stack, scenario))
    finally:
        stack.connectwise.faults.latency_ms = 0
        stack.graph.faults.latency_ms = 0
    return series


def table(cold: TicketRun, groups: list[Series]) -> Table:
    t = Table(
        "Webhook → ticket closed, end to end (ms unless stated)",
        [
            "run",
            "n",
            "p50",
            "max",
            "acked p50",
            "worker start p50",
            "worker p50",
            "PSA calls/ticket",
            "Graph calls/ticket",
            "storage ops/ticket",
        ],
    )
    t.add(
        "first ticket (cold worker), no added latency",
        1,
        ms(cold.seconds),
        "",
        ms(cold.acked_after),
        ms(cold.worker_start_after),
        ms(cold.worker_seconds),
        len(cold.psa_calls),
        len(cold.graph_calls),
        len(cold.storage_calls),
    )
    for g in groups:
        s = g.seconds
        t.add(
            g.label,
            len(s),
            ms(percentile(s, 50)),
            ms(max(s)),
            ms(statistics.median(r.acked_after for r in g.runs)),
            ms(statistics.median(r.worker_start_after for r in g.runs)),
            ms(statistics.median(r.worker_seconds for r in g.runs)),
            f"{g.per_ticket('psa_calls'):g}",
            f"{g.per_ticket('graph_calls'):g}",
            f"{g.per_ticket('storage_calls'):g}",
        )
    t.notes.append(
        "acked = create_ticket → webhook invocation done; worker start = create_ticket → queue worker invoked; "
        "worker = the worker invocation's own duration (it ends after the close: audit and checkpoint)"
    )
    t.notes.append("sequential tickets; the host is left idle between tickets; p50 is nearest-rank")
    t.notes.append(
        "storage ops = the app's Table/Queue calls through tierone.storage (webhook and worker), counted in-process"
    )
    return t


def call_table(run: TicketRun) -> Table:
    """The calls one resolved ticket makes, in order (ids replaced by {id})."""
    t = Table(f"Calls made for one resolved ticket (#{run.ticket_id}), in order", ["service", "#", "call"], left=3)
    for i, call in enumerate(run.psa_calls, 1):
        t.add("ConnectWise", i, call)
    for i, call in enumerate(run.graph_calls, 1):
        t.add("Graph", i, call)
    for i, call in enumerate(run.storage_calls, 1):
        t.add("Storage", i, call)
    repeated = [f"{call} ×{n}" for call, n in Counter(run.psa_calls).items() if n > 1 and call.startswith("GET")]
    if repeated:
        t.notes.append("ConnectWise reads made more than once: " + "; ".join(repeated))
    return t
