"""Webhook → ticket closed, end to end on the sandbox, for each PSA.

A password-reset ticket is created in a PSA sandbox as its requester would create it through the
portal — Anna's (Contoso Dental) in ConnectWise, Priya's (Fabrikam Legal) in Autotask, Nina's
(Northwind Traders) in HaloPSA; the sandbox fires its webhook at the app, the app queues it, the
worker verifies the requester and sends the out-of-band confirmation mail, the user confirms from
their registered mailbox (sandbox/humans.py), the worker resumes, resets and closes the ticket.

The clock measures TierOne's time, not the user's: from `create_ticket` until the confirmation mail
is in the outbox, plus from the confirm POST until the sandbox shows the ticket closed
(`psa_views.view(...).closed`, polled every 10 ms)."""

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
from sandbox import humans
from sandbox import scenario as world
from sandbox.psa_views import view
from sandbox.stack import LocalStack

POLL_S = 0.010
CLOSE_TIMEOUT_S = 60.0
_ID = re.compile(r"/\d+(?=/|$)|/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(?=/|$)")

PSA_NAMES = {"connectwise": "ConnectWise", "autotask": "Autotask", "halopsa": "HaloPSA"}
REQUESTERS = {"connectwise": "anna", "autotask": "priya", "halopsa": "nina"}


def ticket_for(psa: str) -> world.DemoTicket:
    """The demo's own-password reset of this PSA's customer (confirmed here, whatever the demo answers)."""
    requester = REQUESTERS[psa]
    return next(
        t
        for t in world.DEMO_TICKETS
        if t.requester == requester and "password" in t.summary.lower() and t.summary.lower() != "reset my password"
    )


def psa_calls(stack: LocalStack, psa: str) -> list[tuple[str, str]]:
    """(method, path) of every request the PSA sandbox has served so far, tokens included."""
    if psa == "connectwise":
        return [(r.method, r.path) for r in stack.connectwise.request_log]
    if psa == "autotask":
        return [(r.method, r.path) for r in stack.autotask.request_log]
    return [(r.method, r.path) for r in stack.halopsa.request_log]


def set_psa_latency(stack: LocalStack, psa: str, latency_ms: int) -> None:
    if psa == "connectwise":
        stack.connectwise.faults.latency_ms = latency_ms
    elif psa == "autotask":
        stack.autotask.faults.latency_ms = latency_ms
    else:
        stack.halopsa.faults.latency_ms = latency_ms


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
    psa: str
    ticket_id: int
    seconds: float  # TierOne's time: create_ticket → confirmation mail sent, plus confirm POST → closed seen
    acked_after: float  # create_ticket → webhook invocation finished
    worker_start_after: float  # create_ticket → worker invocation started
    worker_seconds: float  # the worker invocations (first run and resume), start to end, summed
    webhook_invocations: int
    worker_invocations: int
    psa_calls: list[str]
    graph_calls: list[str]
    storage_calls: list[str]
    others: list[str] = field(default_factory=list)  # other functions (timers) invoked meanwhile

    @property
    def ref(self) -> str:
        return f"{self.psa}:{self.ticket_id}"


@dataclass
class Series:
    psa: str
    label: str
    psa_latency_ms: int
    graph_latency_ms: int
    runs: list[TicketRun] = field(default_factory=list)

    @property
    def name(self) -> str:
        return PSA_NAMES[self.psa]

    @property
    def seconds(self) -> list[float]:
        return [r.seconds for r in self.runs]

    @property
    def clean_runs(self) -> list[TicketRun]:
        """The tickets no other function (a timer) ran alongside; all of them if there are none."""
        return [r for r in self.runs if not r.others] or self.runs

    def per_ticket(self, attr: str) -> float:
        """Median count per ticket, over the tickets that no timer run overlapped (its calls count too)."""
        return statistics.median(len(getattr(r, attr)) for r in self.clean_runs)


def shape(method: str, path: str) -> str:
    return f"{method} {_ID.sub('/{id}', path)}"


def run_ticket(stack: LocalStack, scenario: world.Scenario, psa: str) -> TicketRun:
    assert stack.host is not None
    graph, host = stack.graph, stack.host
    psa_before, graph_before = len(psa_calls(stack, psa)), len(graph.request_log)
    invocations_before = len(host.invocations)
    storage_before = len(COUNTER.calls)
    wall0 = datetime.now(UTC)
    start = time.perf_counter()
    ref = world.create_ticket(stack, scenario, ticket_for(psa))
    deadline = start + CLOSE_TIMEOUT_S
    while not humans.confirmation_mails(stack, ref):
        if view(stack, ref).escalated:
            raise BenchError(f"ticket {ref} was escalated instead of asking for confirmation; see the app's log")
        if time.perf_counter() > deadline:
            raise BenchError(f"ticket {ref} sent no confirmation mail within {CLOSE_TIMEOUT_S:.0f}s")
        time.sleep(POLL_S)
    asked = time.perf_counter() - start
    stack.wait_until_idle(timeout=CLOSE_TIMEOUT_S)  # the first run parks the ticket
    confirmed = time.perf_counter()
    if humans.answer_confirmation(stack, ref).status_code != 200:
        raise BenchError(f"ticket {ref}: the confirm page refused the answer")
    while True:
        seen = view(stack, ref)
        if seen.closed:
            seconds = asked + time.perf_counter() - confirmed
            break
        if seen.escalated:
            raise BenchError(f"ticket {ref} was escalated instead of resolved; see the app's log")
        if time.perf_counter() > confirmed + CLOSE_TIMEOUT_S:
            raise BenchError(f"ticket {ref} was not closed within {CLOSE_TIMEOUT_S:.0f}s (status {seen.status!r})")
        time.sleep(POLL_S)
    stack.wait_until_idle(timeout=CLOSE_TIMEOUT_S)
    new = host.invocations[invocations_before:]
    failed = [i for i in new if not i.ok]
    if failed:
        raise BenchError(f"ticket {ref}: {failed[0].function_name} failed: {failed[0].error}")
    webhooks = [i for i in new if i.function_name == f"{psa}_webhook"]
    workers = [i for i in new if i.function_name == "ticket_worker"]
    # The confirm page is the ticket's own flow (the user's answer); anything else (a timer) overlapped it.
    others = [
        i.function_name for i in new if i not in webhooks and i not in workers and i.function_name != "confirm_page"
    ]
    if not webhooks or not workers:
        raise BenchError(f"ticket {ref}: expected a webhook and a worker invocation, saw {new}")

    def after(moment: datetime) -> float:
        return (moment - wall0).total_seconds()

    first_hook, worker = webhooks[0], workers[0]
    return TicketRun(
        psa=psa,
        ticket_id=ref.id,
        seconds=seconds,
        acked_after=after(first_hook.started_at + timedelta(milliseconds=first_hook.duration_ms)),
        worker_start_after=after(worker.started_at),
        worker_seconds=sum(w.duration_ms for w in workers) / 1000,
        webhook_invocations=len(webhooks),
        worker_invocations=len(workers),
        psa_calls=[shape(m, p) for m, p in psa_calls(stack, psa)[psa_before:]],
        graph_calls=[shape(r.method, r.path.removeprefix("/v1.0")) for r in graph.request_log[graph_before:]],
        storage_calls=COUNTER.calls[storage_before:],
        others=others,
    )


def run_series(
    stack: LocalStack, scenario: world.Scenario, psa: str, label: str, n: int, *, psa_ms: int = 0, graph_ms: int = 0
) -> Series:
    series = Series(psa, label, psa_ms, graph_ms)
    set_psa_latency(stack, psa, psa_ms)
    stack.graph.faults.latency_ms = graph_ms
    try:
        for _ in range(n):
            series.runs.append(run_ticket(stack, scenario, psa))
    finally:
        set_psa_latency(stack, psa, 0)
        stack.graph.faults.latency_ms = 0
    return series


def table(colds: list[TicketRun], groups: list[Series]) -> Table:
    t = Table(
        "Webhook → ticket closed, end to end (ms unless stated)",
        [
            "PSA",
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
        left=2,
    )
    for cold in colds:
        t.add(
            PSA_NAMES[cold.psa],
            "first ticket on this PSA, no added latency",
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
        for g in (g for g in groups if g.psa == cold.psa):
            s = g.seconds
            t.add(
                g.name,
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
    t.notes.append(
        "sequential tickets; the host is left idle between tickets; p50 is nearest-rank; the PSAs run in the order "
        "listed, so only the first ticket overall pays the worker's own lazy imports"
    )
    t.notes.append(
        "PSA calls = every request in the PSA sandbox's request log (its own token requests included); "
        "Graph calls exclude Entra token requests; calls and ops per ticket are medians over the tickets "
        "that no timer function (reconcile_tickets every 5 min, purge_expired_links every 15) overlapped"
    )
    t.notes.append(
        "storage ops = the app's Table/Queue calls through tierone.storage (webhook and worker), counted in-process"
    )
    later = {g.psa: g.runs[-1] for g in groups if g.runs}
    for cold in colds:
        if cold.psa not in later:
            continue
        psa_extra = _extra(cold.psa_calls, later[cold.psa].psa_calls)
        storage_extra = _extra(cold.storage_calls, later[cold.psa].storage_calls)
        if psa_extra or storage_extra:
            t.notes.append(
                f"{PSA_NAMES[cold.psa]}'s first ticket, beyond a later one's calls: "
                + "; ".join(psa_extra + storage_extra)
            )
    return t


def _extra(first: list[str], later: list[str]) -> list[str]:
    extra = Counter(first) - Counter(later)
    return [f"{call} ×{n}" if n > 1 else call for call, n in extra.items()]


def call_table(runs: list[TicketRun]) -> Table:
    """The calls one resolved ticket makes on each PSA, in order (ids replaced by {id}), side by side."""
    names = [PSA_NAMES[r.psa] for r in runs]
    t = Table(
        "Calls made for one resolved ticket, in order ("
        + ", ".join(f"{n} #{r.ticket_id}" for n, r in zip(names, runs, strict=True))
        + ")",
        ["service", "#", *names],
        left=2 + len(runs),
    )
    for service, attr in (("PSA", "psa_calls"), ("Graph", "graph_calls"), ("Storage", "storage_calls")):
        columns = [getattr(r, attr) for r in runs]
        for i in range(max(len(c) for c in columns)):
            t.add(service, i + 1, *(c[i] if i < len(c) else "" for c in columns))
    for name, run in zip(names, runs, strict=True):
        repeated = [f"{call} ×{n}" for call, n in Counter(run.psa_calls).items() if n > 1 and call.startswith("GET")]
        if repeated:
            t.notes.append(f"{name} reads made more than once: " + "; ".join(repeated))
    return t
