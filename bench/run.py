"""The benchmark run: cold import, webhook acknowledgement, webhook → closed; then the report."""

from __future__ import annotations

import logging
import sys
import time

from bench import cold_import, end_to_end, report, webhook_ack
from bench.common import BenchError, Table, machine, ms, percentile, progress

IMPORT_TARGET_S = 0.8
IMPORT_RUNS = 7
WARMUP = 10
ACK_SAMPLES = 100
E2E_TICKETS = 10
CW_LATENCY_MS = 300
GRAPH_LATENCY_MS = 150


def _findings(
    cold: cold_import.ColdImport,
    series: list[end_to_end.Series],
    cold_ticket: end_to_end.TicketRun,
    slow: end_to_end.Series,
    fast: end_to_end.Series,
) -> list[str]:
    """What a reader should notice, computed from this run's figures."""
    notes: list[str] = []
    psa, graph = slow.per_ticket("psa_calls"), slow.per_ticket("graph_calls")
    injected = psa * slow.cw_latency_ms / 1000 + graph * slow.graph_latency_ms / 1000
    added = percentile(slow.seconds, 50) - percentile(fast.seconds, 50)
    notes.append(
        f"With {slow.cw_latency_ms} ms per ConnectWise call and {slow.graph_latency_ms} ms per Graph call, "
        f"{psa:g} PSA × {slow.cw_latency_ms} ms + {graph:g} Graph × {slow.graph_latency_ms} ms = "
        f"{injected:.2f} s of injected latency per ticket, all of it sequential; "
        f"the measured p50 grew by {added:.2f} s."
    )
    storage = fast.per_ticket("storage_calls")
    p50 = percentile(fast.seconds, 50)
    trips = fast.per_ticket("psa_calls") + fast.per_ticket("graph_calls") + storage
    notes.append(
        f"With no added latency a ticket is closed {p50 * 1000:.0f} ms (p50) after it is created, through about "
        f"{trips:g} sequential round trips ({fast.per_ticket('psa_calls'):g} PSA, "
        f"{fast.per_ticket('graph_calls'):g} Graph, {storage:g} Table/Queue, besides the callback itself): "
        f"about {p50 / trips * 1000:.1f} ms each on loopback, sandboxes' own work included."
    )
    notes.append(
        f"The first ticket took {cold_ticket.seconds:.2f} s against a p50 of {percentile(fast.seconds, 50):.2f} s "
        "for the next ones: the worker's first run pays its lazy imports (the pipeline, msgraph-sdk) "
        "and the first tokens."
    )
    extra = {
        r.ticket_id: (r.webhook_invocations, r.worker_invocations)
        for s in series
        for r in s.runs
        if r.webhook_invocations != 1 or r.worker_invocations != 1
    }
    if extra:
        notes.append(f"Tickets with more than one webhook or worker invocation (webhook, worker): {extra}")
    counts = {len(r.psa_calls) for s in series for r in s.runs}
    if len(counts) > 1:
        notes.append(f"The number of PSA calls varied between tickets: {sorted(counts)}")
    if max(cold.seconds) > IMPORT_TARGET_S:
        notes.append(f"Cold import exceeded the {IMPORT_TARGET_S} s target (max {max(cold.seconds):.3f} s).")
    return notes


def _benchmarks() -> tuple[list[Table], list[str]]:
    cold = cold_import.measure(IMPORT_RUNS)
    if cold.forbidden_loaded:
        raise BenchError(
            f"`import function_app` loaded {', '.join(cold.forbidden_loaded)}: the webhook path must never import it"
        )
    tables = cold.tables(IMPORT_TARGET_S)
    for t in tables:
        print(t.text(), "\n", flush=True)

    from sandbox import scenario as world
    from sandbox.stack import LocalStack

    progress("starting Azurite, the Entra/Graph and ConnectWise sandboxes and the function app …")
    started = time.perf_counter()
    with LocalStack() as stack:
        scenario = world.load(stack)
        progress(f"stack ready in {time.perf_counter() - started:.1f}s")
        cw = stack.connectwise
        # A ticket the app never hears about (its creation callback is dropped), then closed: the
        # subject of the `updated` callbacks, and of a first `added` that the worker skips.
        cw.faults.drop_callbacks = True
        try:
            printer = next(t for t in world.DEMO_TICKETS if t.requester == "tom")
            subject = world.create_ticket(stack, scenario, printer)
            closed = next(s for s in cw.statuses(scenario.board_id) if s.get("closedStatus"))
            cw.set_ticket_status(subject, str(closed["name"]))
        finally:
            cw.faults.drop_callbacks = False

        sender = webhook_ack.CallbackSender(stack)
        try:
            progress("webhook: first request, then warm-up and samples of `updated` callbacks")
            first = webhook_ack.first_request(sender, subject)
            updated = webhook_ack.updated_samples(sender, subject, ACK_SAMPLES, WARMUP)
            loaded = sorted(m for m in sys.modules if m.split(".")[0] in cold_import.FORBIDDEN)
            if loaded:
                raise BenchError(
                    f"answering webhooks loaded {', '.join(loaded)}: the webhook path must never import it"
                )
            progress(f"webhook: p50 {ms(percentile(updated.seconds, 50))} ms; no msgraph loaded by the webhook path")
            first_added = webhook_ack.first_added(sender, subject)

            progress(f"end to end: one cold ticket, then {E2E_TICKETS} tickets with no added latency")
            end_to_end.COUNTER.install()
            try:
                cold_ticket = end_to_end.run_ticket(stack, scenario)
                fast = end_to_end.run_series(stack, scenario, "no added latency", E2E_TICKETS)
                progress(f"end to end: p50 {percentile(fast.seconds, 50):.2f} s; now with added latency")
                slow = end_to_end.run_series(
                    stack,
                    scenario,
                    f"ConnectWise +{CW_LATENCY_MS} ms, Graph +{GRAPH_LATENCY_MS} ms per call",
                    E2E_TICKETS,
                    cw_ms=CW_LATENCY_MS,
                    graph_ms=GRAPH_LATENCY_MS,
                )
            finally:
                end_to_end.COUNTER.uninstall()
            progress(f"end to end: p50 {percentile(slow.seconds, 50):.2f} s with added latency")

            progress(f"webhook: warm-up and samples of `added` callbacks on {E2E_TICKETS * 2 + 1} closed tickets")
            psa_before = len(cw.request_log)
            closed_ids = [cold_ticket.ticket_id, *(r.ticket_id for r in fast.runs + slow.runs)]
            added = webhook_ack.added_samples(sender, closed_ids, ACK_SAMPLES, WARMUP)
            psa_during_added = len(cw.request_log) - psa_before
        finally:
            sender.close()

    ack = webhook_ack.table(first, first_added, [updated, added], WARMUP)
    ack.notes.append(
        f"PSA calls made by the {WARMUP + ACK_SAMPLES} workers queued by `added` callbacks for closed tickets: "
        f"{psa_during_added} (expected 0: the tickets row is terminal)"
    )
    series = [fast, slow]
    e2e = end_to_end.table(cold_ticket, series)
    calls = end_to_end.call_table(fast.runs[-1])
    for t in (ack, e2e, calls):
        print(t.text(), "\n", flush=True)
    findings = _findings(cold, series, cold_ticket, slow, fast)
    if psa_during_added:
        findings.append(f"Workers for already-closed tickets made {psa_during_added} PSA calls (expected none).")
    return [*tables, ack, e2e, calls], findings


def main() -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    facts = machine()
    started = time.perf_counter()
    progress("; ".join(facts.lines()))
    try:
        tables, findings = _benchmarks()
    except BenchError as exc:
        print(f"bench: FAILED — {exc}", file=sys.stderr, flush=True)
        return 1
    for f in findings:
        print(f"- {f}")
    path = report.write(facts, tables, findings)
    progress(f"done in {time.perf_counter() - started:.0f}s; results written to {path}")
    return 0
