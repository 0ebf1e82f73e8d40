"""The benchmark run: cold import, webhook acknowledgement per PSA, webhook → closed per PSA; then the
self-contained sections (the playbooks at 150 ms per call); then the report.

`python -m bench --only playbooks` runs one section alone and rewrites only its part of the results."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from bench import cold_import, end_to_end, playbooks_bench, report, triage_bench, webhook_ack
from bench.common import BenchError, Table, machine, ms, percentile, progress

if TYPE_CHECKING:
    from sandbox import scenario as world
    from sandbox.stack import LocalStack

IMPORT_TARGET_S = 0.8
IMPORT_RUNS = 7
WARMUP = 10
ACK_SAMPLES = 100
E2E_TICKETS = 8
PSA_LATENCY_MS = 300
GRAPH_LATENCY_MS = 150
PSAS = ("connectwise", "autotask", "halopsa")
# Benchmarks with their own sandboxes: each writes its own section of the results.
SECTIONS: dict[str, Callable[[], report.Section]] = {"playbooks": playbooks_bench.measure}


def _findings(
    cold: cold_import.ColdImport,
    colds: dict[str, end_to_end.TicketRun],
    fast: dict[str, end_to_end.Series],
    slow: dict[str, end_to_end.Series],
    acks: list[webhook_ack.PsaAck],
) -> list[str]:
    """What a reader should notice, computed from this run's figures."""
    notes: list[str] = []
    for psa in PSAS:
        f, s = fast[psa], slow[psa]
        calls, graph = s.per_ticket("psa_calls"), s.per_ticket("graph_calls")
        injected = calls * s.psa_latency_ms / 1000 + graph * s.graph_latency_ms / 1000
        added = percentile(s.seconds, 50) - percentile(f.seconds, 50)
        storage = f.per_ticket("storage_calls")
        p50 = percentile(f.seconds, 50)
        trips = f.per_ticket("psa_calls") + f.per_ticket("graph_calls") + storage
        notes.append(
            f"{s.name}: with {s.psa_latency_ms} ms per {s.name} call and {s.graph_latency_ms} ms per Graph call, "
            f"{calls:g} PSA × {s.psa_latency_ms} ms + {graph:g} Graph × {s.graph_latency_ms} ms = "
            f"{injected:.2f} s of injected latency per ticket; the measured p50 grew by {added:.2f} s "
            f"({p50:.2f} s → {percentile(s.seconds, 50):.2f} s). With no added latency: about {trips:g} sequential "
            f"round trips ({f.per_ticket('psa_calls'):g} PSA, {f.per_ticket('graph_calls'):g} Graph, "
            f"{storage:g} Table/Queue), {p50 / trips * 1000:.1f} ms each on loopback."
        )
    first_psa = PSAS[0]
    notes.append(
        f"The first ticket overall ({end_to_end.PSA_NAMES[first_psa]}) took {colds[first_psa].seconds:.2f} s against "
        f"a p50 of {percentile(fast[first_psa].seconds, 50):.2f} s for the next ones: the worker's first run pays "
        "its lazy imports (the pipeline, msgraph-sdk) and the first tokens. "
        + ". ".join(
            f"The first {end_to_end.PSA_NAMES[p]} ticket took {colds[p].seconds:.2f} s "
            f"(p50 after it {percentile(fast[p].seconds, 50):.2f} s)"
            for p in PSAS[1:]
        )
        + "."
    )
    runs = [r for p in PSAS for r in (colds[p], *fast[p].runs, *slow[p].runs)]
    extra = {
        f"{r.psa}:{r.ticket_id}": (r.webhook_invocations, r.worker_invocations)
        for r in runs
        if r.webhook_invocations != 1 or r.worker_invocations != 2
    }
    if extra:
        notes.append(
            "Tickets with other than one webhook and two worker invocations (the first run, parked for "
            f"confirmation, and the resume) (webhook, worker): {extra}"
        )
    overlapped = [r for r in runs if r.others]
    if overlapped:
        notes.append(
            "Tickets during which another function ran (their call counts include its calls, and are left out of "
            "the per-ticket medians): "
            + "; ".join(
                f"{r.ref} ({', '.join(sorted(set(r.others)))}: {len(r.psa_calls)} PSA calls, "
                f"{len(r.storage_calls)} storage ops, {r.seconds:.2f} s)"
                for r in overlapped
            )
        )
    for psa in PSAS:
        counts = {len(r.psa_calls) for r in (*fast[psa].runs, *slow[psa].runs) if not r.others}
        if len(counts) > 1:
            notes.append(f"The number of {end_to_end.PSA_NAMES[psa]} calls varied between tickets: {sorted(counts)}")
    for ack in acks:
        if ack.psa_calls_during_created:
            during = (
                f" ({', '.join(sorted(set(ack.others_during_created)))} ran meanwhile)"
                if ack.others_during_created
                else ""
            )
            notes.append(
                f"{ack.name}: {ack.psa_calls_during_created} PSA calls were made while the creation deliveries for "
                f"already-closed tickets were sampled{during}; their workers should make none."
            )
    if max(cold.seconds) > IMPORT_TARGET_S:
        notes.append(f"Cold import exceeded the {IMPORT_TARGET_S} s target (max {max(cold.seconds):.3f} s).")
    return notes


def _subjects(stack: LocalStack, scenario: world.Scenario) -> dict[str, int]:
    """Per PSA, a ticket the app never hears about (its creation webhook is dropped), then closed:
    the subject of the ignored deliveries, and of a first creation delivery that the worker skips."""
    from sandbox import scenario as world

    cw, at, halo = stack.connectwise, stack.autotask, stack.halopsa
    subjects: dict[str, int] = {}
    cw.faults.drop_callbacks = at.faults.drop_webhooks = halo.faults.drop_webhooks = True
    try:
        printer = world.DemoTicket("tom", "Printer on the 2nd floor not working", "Paper jam, nothing prints.", "")
        subjects["connectwise"] = world.create_ticket(stack, scenario, printer).id
        closed = next(s for s in cw.statuses(scenario.board_id) if s.get("closedStatus"))
        cw.set_ticket_status(subjects["connectwise"], str(closed["name"]))

        scanner = world.DemoTicket("ben", "Scanner offline", "The scanner in the mail room shows offline.", "")
        subjects["autotask"] = world.create_ticket(stack, scenario, scanner).id
        at.update_ticket(subjects["autotask"], status=5)  # Complete

        laptop = world.DemoTicket("omar", "Laptop dock", "The dock on my desk no longer charges the laptop.", "")
        subjects["halopsa"] = world.create_ticket(stack, scenario, laptop).id
        halo.set_ticket_status(subjects["halopsa"], 9)  # Closed
    finally:
        cw.faults.drop_callbacks = at.faults.drop_webhooks = halo.faults.drop_webhooks = False
    return subjects


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

    progress("starting Azurite, the Entra/Graph, ConnectWise, Autotask and HaloPSA sandboxes and the function app …")
    started = time.perf_counter()
    with LocalStack() as stack:
        scenario = world.load(stack)
        progress(f"stack ready in {time.perf_counter() - started:.1f}s")
        subjects = _subjects(stack, scenario)

        senders = [cls(stack) for cls in webhook_ack.SENDERS]
        acks = [webhook_ack.PsaAck(s.psa, s.name) for s in senders]
        try:
            for sender, ack in zip(senders, acks, strict=True):
                subject = subjects[sender.psa]
                progress(f"webhook {sender.name}: first request, then warm-up and samples of {sender.ignored_kind}")
                webhook_ack.first_request(sender, subject, ack)
                webhook_ack.forged_control(sender, subject)
                ack.ignored = webhook_ack.ignored_samples(sender, subject, ACK_SAMPLES, WARMUP)
                progress(f"webhook {sender.name}: p50 {ms(percentile(ack.ignored.seconds, 50))} ms")
            loaded = sorted(m for m in sys.modules if m.split(".")[0] in cold_import.FORBIDDEN)
            if loaded:
                raise BenchError(
                    f"answering webhooks loaded {', '.join(loaded)}: the webhook path must never import it"
                )
            progress("webhook: no msgraph loaded by the webhook path of any PSA")
            for sender, ack in zip(senders, acks, strict=True):
                before = len(end_to_end.psa_calls(stack, sender.psa))
                ack.first_creation_seconds = webhook_ack.first_creation(sender, subjects[sender.psa])
                ack.first_creation_psa_calls = [
                    end_to_end.shape(m, p) for m, p in end_to_end.psa_calls(stack, sender.psa)[before:]
                ]

            colds: dict[str, end_to_end.TicketRun] = {}
            fast: dict[str, end_to_end.Series] = {}
            slow: dict[str, end_to_end.Series] = {}
            end_to_end.COUNTER.install()
            try:
                for psa in PSAS:
                    name = end_to_end.PSA_NAMES[psa]
                    progress(f"end to end {name}: one first ticket, then {E2E_TICKETS} tickets with no added latency")
                    colds[psa] = end_to_end.run_ticket(stack, scenario, psa)
                    fast[psa] = end_to_end.run_series(stack, scenario, psa, "no added latency", E2E_TICKETS)
                    progress(
                        f"end to end {name}: p50 {percentile(fast[psa].seconds, 50):.2f} s; now with added latency"
                    )
                    slow[psa] = end_to_end.run_series(
                        stack,
                        scenario,
                        psa,
                        f"{name} +{PSA_LATENCY_MS} ms, Graph +{GRAPH_LATENCY_MS} ms per call",
                        E2E_TICKETS,
                        psa_ms=PSA_LATENCY_MS,
                        graph_ms=GRAPH_LATENCY_MS,
                    )
                    progress(f"end to end {name}: p50 {percentile(slow[psa].seconds, 50):.2f} s with added latency")
            finally:
                end_to_end.COUNTER.uninstall()

            for sender, ack in zip(senders, acks, strict=True):
                psa = sender.psa
                closed_ids = [colds[psa].ticket_id, *(r.ticket_id for r in fast[psa].runs + slow[psa].runs)]
                progress(f"webhook {sender.name}: warm-up and samples of {sender.creation_kind} on closed tickets")
                before = len(end_to_end.psa_calls(stack, psa))
                invocations_before = len(stack.host.invocations) if stack.host else 0
                ack.created = webhook_ack.creation_samples(sender, closed_ids, ACK_SAMPLES, WARMUP)
                ack.psa_calls_during_created = len(end_to_end.psa_calls(stack, psa)) - before
                ack.others_during_created = [
                    i.function_name
                    for i in (stack.host.invocations if stack.host else [])[invocations_before:]
                    if i.function_name not in (f"{psa}_webhook", "ticket_worker")
                ]
        finally:
            for sender in senders:
                sender.close()

    ack_table = webhook_ack.table(acks, WARMUP, ACK_SAMPLES)
    series = [s for psa in PSAS for s in (fast[psa], slow[psa])]
    e2e = end_to_end.table([colds[psa] for psa in PSAS], series)
    calls = end_to_end.call_table([fast[psa].runs[-1] for psa in PSAS])
    for t in (ack_table, e2e, calls):
        print(t.text(), "\n", flush=True)
    findings = _findings(cold, colds, fast, slow, acks)
    triage_tables, triage_findings = triage_bench.measure()
    return [*tables, ack_table, e2e, calls, *triage_tables], findings + triage_findings


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description="Measure TierOne on the local sandbox.")
    parser.add_argument(
        "--only",
        choices=sorted(SECTIONS),
        help="run only this benchmark and rewrite only its section of docs/benchmarks.md",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    facts = machine()
    started = time.perf_counter()
    progress("; ".join(facts.lines()))
    tables: list[Table] = []
    findings: list[str] = []
    try:
        if args.only is None:
            tables, findings = _benchmarks()
        sections = {key: measure() for key, measure in SECTIONS.items() if args.only in (None, key)}
    except BenchError as exc:
        print(f"bench: FAILED — {exc}", file=sys.stderr, flush=True)
        return 1
    for f in [*findings, *(f for _, section_findings in sections.values() for f in section_findings)]:
        print(f"- {f}")
    if args.only is None:
        path = report.write(facts, tables, findings, sections)
    else:
        path = report.write_section(facts, args.only, *sections[args.only])
    progress(f"done in {time.perf_counter() - started:.0f}s; results written to {path}")
    return 0
