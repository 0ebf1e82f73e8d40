"""Playbooks at 150 ms per call: each of the eight intents, once, against the Graph and Exchange
sandboxes with 150 ms added to every call, then the same ticket again (a retry).

The setup is tests/contract/test_playbooks.py's: the Entra, Graph and Exchange sandboxes, one app
with a federated managed identity, the production adapters (`GraphDirectory`, `ExchangeAdmin`)
through `TenantCredentials`, and the action ledger and one-time links in Azurite. Every intent gets a
fresh customer tenant seeded for its success path, with no added latency; the tenant's Graph and
Exchange tokens are fetched before the clock starts (as after the pipeline's resolve step, which
reads the directory first). Then, with 150 ms on every Graph and Exchange call:

- password reset: `password_reset.prepare` then `password_reset.execute`, as the pipeline calls them;
- the seven playbooks: `plan(ctx)` then `base.run(steps, ledger)` with the pipeline's settle delay.

The retry is the same ticket (same ledger partition; for the password reset, the same checkpoint)
run again with a fresh context, as a redelivered queue message would be. The pipeline's own calls
around a playbook (resolving the requester and target, the role and manager checks, the PSA) are
not included: the end-to-end table has them for the password reset."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

from bench.common import BenchError, Table, progress
from sandbox.identity_stack import CustomerDesk

LATENCY_MS = 150
WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})
E3 = "05e9a617-0261-4cee-bb44-138d3ef5d965"
_ID = re.compile(
    r"(?<=/)(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[^/]+@[^/]+|\d+)(?=/|$)", re.IGNORECASE
)
PHASES = ("plan", "check", "apply", "verify")

LABELS = {
    "password_reset": "password reset",
    "account_unlock": "account unlock",
    "mfa_reset": "MFA reset",
    "group_membership": "group membership",
    "license_change": "licence change",
    "mailbox_permission": "mailbox permission",
    "onboarding": "onboarding",
    "offboarding": "offboarding",
}
SCENARIOS = {
    "password_reset": "temporary password for Anna, link issued first",
    "account_unlock": "disabled account at medium risk (Entra ID P2)",
    "mfa_reset": "three methods (Authenticator default, phone, OATH); TAP issued",
    "group_membership": "join the security group 'Project X'",
    "license_change": "swap E3 for E5 (one assignLicense)",
    "mailbox_permission": "Full Access + Send As on a shared mailbox",
    "onboarding": "new Sales Executive: user, manager, licence, 2 groups + 1 DL, password",
    "offboarding": "E3 user in 4 groups (one DL, one dynamic, one licensing), mailbox to shared",
}


@dataclass(frozen=True)
class Call:
    """One Graph or Exchange call, with the phase of the playbook that made it."""

    service: str  # "Graph" or "Exchange"
    phase: str  # plan, check, apply, verify
    what: str  # "GET /users/{id}" or "Get-Mailbox"
    exact: str  # with ids, query and parameters: two equal `exact` are the same request
    status: int
    write: bool

    def label(self) -> str:
        return f"{self.service} {self.what}"


@dataclass
class Attempt:
    """One run of one intent: what it cost and what it called, in order."""

    intent: str
    label: str  # "first" or "retry"
    seconds: float = 0.0
    plan_seconds: float = 0.0
    steps: list[tuple[str, str]] = field(default_factory=list)  # (name, status)
    calls: list[Call] = field(default_factory=list)  # in order (exact between phases; a phase calls one service)
    storage: list[str] = field(default_factory=list)
    storage_seconds: float = 0.0
    verify_rounds: int = 0  # read-backs beyond the first (each after a settle sleep)

    def of(self, service: str) -> list[Call]:
        return [c for c in self.calls if c.service == service]

    def writes_to(self, service: str) -> list[Call]:
        return [c for c in self.calls if c.service == service and c.write]

    @property
    def writes(self) -> int:
        return sum(c.write for c in self.calls)

    @property
    def injected(self) -> float:
        return len(self.calls) * LATENCY_MS / 1000

    def in_phase(self, phase: str) -> int:
        return sum(c.phase == phase for c in self.calls)

    def repeated_reads(self) -> list[Call]:
        """Reads identical to an earlier read of this run with no write in between: answers already known."""
        seen: set[str] = set()
        repeats: list[Call] = []
        for call in self.calls:
            if call.write:
                seen.clear()
            elif call.exact in seen:
                repeats.append(call)
            else:
                seen.add(call.exact)
        return repeats


def shape(path: str) -> str:
    return _ID.sub("{id}", path.removeprefix("/v1.0"))


def _timed_storage_counter() -> Any:
    """end_to_end's StorageCounter, also adding up the time spent in the storage operations."""
    from bench.end_to_end import StorageCounter

    class Timed(StorageCounter):
        def __init__(self) -> None:
            super().__init__()
            self.seconds = 0.0

        def _wrap(self, original: Callable[..., Awaitable[Any]], method: str) -> Callable[..., Awaitable[Any]]:
            counted = super()._wrap(original, method)

            async def timed(this: Any, *args: Any, **kwargs: Any) -> Any:
                start = time.perf_counter()
                try:
                    return await counted(this, *args, **kwargs)
                finally:
                    self.seconds += time.perf_counter() - start

            return timed

    return Timed()


class _Bench:
    """The sandboxes, one app and one managed identity; a fresh tenant per intent."""

    def __init__(self, identity: Any, storage: Any) -> None:
        self.identity = identity
        self.entra, self.graph, self.exo = identity.entra, identity.graph, identity.exchange
        self.settings, self.credentials, self.storage = identity.settings, identity.credentials, storage
        self.counter = _timed_storage_counter()

    # -- one tenant ---------------------------------------------------------------------------

    async def desk(self, intent: str) -> _Desk:
        from identity_integrations.exchange import ExchangeAdmin
        from identity_integrations.graph import GraphDirectory

        self.graph.faults.clear()
        self.exo.faults.clear()
        tenant = self.identity.customer_tenant()
        desk = _Desk(
            self,
            intent,
            tenant,
            GraphDirectory(tenant, self.settings, self.credentials),
            ExchangeAdmin(tenant, self.settings, self.credentials),
        )
        desk.person("mia", "Mia Manager")
        desk.person("anna", "Anna Berg", manager_id=desk.people["mia"]["id"])
        return desk


@dataclass
class _Desk(CustomerDesk):
    bench: _Bench
    intent: str
    tenant_id: str
    directory: Any
    exchange: Any
    people: dict[str, dict[str, Any]] = field(default_factory=dict)
    ticket: str = field(default_factory=lambda: f"cw:bench-{uuid.uuid4().hex[:10]}")
    checkpoint: Any = None  # the password reset's, kept between the first run and the retry

    @property
    def graph(self) -> Any:
        return self.bench.graph

    @property
    def exo(self) -> Any:
        return self.bench.exo

    async def deliver(self, secret: str, purpose: str) -> str:
        """The pipeline's credential sink, minus the ticket-state bookkeeping: a one-time link."""
        from tierone.secret_links import SecretLinks

        links = SecretLinks(self.bench.storage.secrets, self.bench.settings)
        link = await links.issue(secret, purpose=purpose, tenant_id=self.tenant_id, ticket_ref=self.ticket)
        return link.url

    def context(self, target: str | None = "anna", **request: Any) -> Any:
        from tierone.playbooks.context import OnboardingTemplate, PlaybookContext, PlaybookRequest

        return PlaybookContext(
            tenant_id=self.tenant_id,
            ticket_ref=self.ticket,
            directory=self.directory,
            exchange=self.exchange,
            requester=self.user("mia"),
            target=self.user(target) if target else None,
            request=PlaybookRequest(intent=self.intent, **request),
            deliver_credential=self.deliver,
            customer_name="Contoso",
            template=OnboardingTemplate(
                domain="contoso.example",
                upn_pattern="{first}.{last}",
                usage_location="GB",
                license_sku="SPB",
                groups=["All Staff"],
                groups_by_role={"sales": ["Sales Team", "Sales DL"]},
            ),
        )

    async def warm(self) -> None:
        """The tenant's Graph and Exchange tokens, before the clock starts."""
        await self.directory.get_user(self.people["mia"]["id"])
        await self.exchange.mailbox("mia@contoso.example")


# -- seeding: each intent's success path, as in tests/contract/test_playbooks.py ----------------


async def _seed(desk: _Desk) -> Callable[[], Any]:
    """Seed the tenant for the intent; returns the factory of the ticket's PlaybookContext."""
    g, t = desk.graph, desk.tenant_id
    anna = desk.people["anna"]["id"]
    intent = desk.intent
    if intent == "password_reset":
        return lambda: None
    if intent == "account_unlock":
        g.set_premium(t, True)
        dan = desk.person("dan", "Dan Blocked", account_enabled=False)["id"]
        g.set_user_risk(t, dan, "medium")
        return lambda: desk.context("dan")
    if intent == "mfa_reset":
        g.add_auth_method(t, anna, "microsoftAuthenticator", default=True)
        g.add_auth_method(t, anna, "phone", phone_type="mobile", phone_number="+44 20 7946 0000")
        g.add_auth_method(t, anna, "softwareOath")
        return lambda: desk.context()
    if intent == "group_membership":
        g.add_group(t, "Project X")
        return lambda: desk.context(object="Project X")
    if intent == "license_change":
        g.add_subscription(t, "SPE_E3", 5)
        g.add_subscription(t, "SPE_E5", 5)
        await desk.directory.set_usage_location(anna, "GB")
        await desk.directory.assign_licenses(anna, [E3], [])
        return lambda: desk.context(object="swap E3 for E5")
    if intent == "mailbox_permission":
        desk.exo.add_shared_mailbox(t, "Sales", "sales@contoso.example")
        return lambda: desk.context(object="sales@contoso.example", rights=["Full Access", "Send As"])
    if intent == "onboarding":
        g.add_subscription(t, "SPB", 2)
        g.add_group(t, "All Staff")
        g.add_group(t, "Sales Team", "m365")
        g.add_group(t, "Sales DL", "distribution", mail="salesdl@contoso.example")
        return lambda: desk.context(None, new_user_name="Zoë Ångström-Öz", new_user_role="Sales Executive")
    if intent == "offboarding":
        leo = desk.person("leo", "Leo Leaver", usage_location="GB", manager_id=desk.people["mia"]["id"])["id"]
        g.add_subscription(t, "SPE_E3", 5)
        g.add_subscription(t, "VISIOCLIENT", 5)
        await desk.directory.assign_licenses(leo, [E3], [])
        groups = [
            g.add_group(t, "Project X"),
            g.add_group(t, "All Staff DL", "distribution", mail="allstaff@contoso.example"),
            g.add_group(t, "Everyone (dynamic)", "dynamic"),
            g.add_group(t, "Visio Users", licenses=["VISIOCLIENT"]),
        ]
        for group in groups:
            g.add_member(t, group, leo)
        return lambda: desk.context("leo")
    raise BenchError(f"no seeding for intent {intent!r}")


# -- measuring ---------------------------------------------------------------------------------


class _Meter:
    """Collects each phase's calls from the sandboxes' request logs (calls are sequential, so the
    records made while a phase runs are that phase's)."""

    def __init__(self, desk: _Desk, attempt: Attempt) -> None:
        self.desk, self.attempt = desk, attempt
        self.graph_seen, self.exo_seen = len(desk.graph.request_log), len(desk.exo.request_log)
        self.storage0 = len(desk.bench.counter.calls)
        self.storage_s0 = desk.bench.counter.seconds

    def drain(self, phase: str) -> None:
        graph, exo = self.desk.graph.request_log, self.desk.exo.request_log
        for r in graph[self.graph_seen :]:
            self.attempt.calls.append(
                Call(
                    "Graph",
                    phase,
                    f"{r.method} {shape(r.path)}",
                    f"{r.method} {r.path}?{r.query}",
                    r.status,
                    r.method in WRITE_METHODS,
                )
            )
        for e in exo[self.exo_seen :]:
            cmdlet = str(e.cmdlet)
            self.attempt.calls.append(
                Call(
                    "Exchange",
                    phase,
                    cmdlet,
                    f"{cmdlet} {sorted(e.parameters.items())}",
                    e.status,
                    not cmdlet.lower().startswith("get-"),
                )
            )
        self.graph_seen, self.exo_seen = len(graph), len(exo)

    def phase(self, name: str, fn: Callable[[], Awaitable[Any]]) -> Callable[[], Awaitable[Any]]:
        async def counted() -> Any:
            self.drain("other")
            try:
                return await fn()
            finally:
                self.drain(name)

        return counted

    def finish(self) -> None:
        self.drain("other")
        self.attempt.storage = list(self.desk.bench.counter.calls[self.storage0 :])
        self.attempt.storage_seconds = self.desk.bench.counter.seconds - self.storage_s0


def _counting_read_back(attempt: Attempt, verify: Callable[[], Awaitable[bool]]) -> Callable[[], Awaitable[bool]]:
    """The step's read-back, counting the rounds after the first (each comes after a settle sleep)."""
    rounds = 0

    async def read_back() -> bool:
        nonlocal rounds
        rounds += 1
        if rounds > 1:
            attempt.verify_rounds += 1
        return await verify()

    return read_back


async def _run_playbook(desk: _Desk, make_context: Callable[[], Any], label: str) -> Attempt:
    from tierone.playbooks import base
    from tierone.playbooks.registry import PLAYBOOKS

    attempt = Attempt(desk.intent, label)
    ctx = make_context()
    module = PLAYBOOKS[desk.intent]
    meter = _Meter(desk, attempt)
    start = time.perf_counter()
    steps = await meter.phase("plan", lambda: module.plan(ctx))()
    attempt.plan_seconds = time.perf_counter() - start
    for step in steps:
        step.verify = meter.phase("verify", _counting_read_back(attempt, step.verify or step.check))
        step.check = meter.phase("check", step.check)
        step.apply = meter.phase("apply", step.apply)
    result = await base.run(steps, base.ActionLedger(desk.bench.storage.ledger, desk.ticket))
    attempt.seconds = time.perf_counter() - start
    meter.finish()
    attempt.steps = [(s.name, s.status.value) for s in result.steps]
    return attempt


async def _run_password_reset(desk: _Desk, label: str) -> Attempt:
    from tierone.playbooks import password_reset
    from tierone.secret_links import SecretLinks

    attempt = Attempt(desk.intent, label)
    links = SecretLinks(desk.bench.storage.secrets, desk.bench.settings)
    target = desk.user("anna")
    meter = _Meter(desk, attempt)
    start = time.perf_counter()
    checkpoint, _ = await password_reset.prepare(
        links, desk.checkpoint or password_reset.ResetCheckpoint(), tenant_id=desk.tenant_id, ticket_ref=desk.ticket
    )
    desk.checkpoint = checkpoint
    attempt.plan_seconds = time.perf_counter() - start
    meter.drain("plan")
    await password_reset.execute(desk.directory, links, target, checkpoint)
    attempt.seconds = time.perf_counter() - start
    meter.drain("execute")
    meter.finish()
    # execute sets the password, then reads the user back
    attempt.calls = [
        replace(c, phase="apply" if c.write else "verify") if c.phase == "execute" else c for c in attempt.calls
    ]
    attempt.steps = [("set-temporary-password", "done")]
    return attempt


async def _measure_intent(bench: _Bench, intent: str) -> tuple[Attempt, Attempt]:
    desk = await bench.desk(intent)
    try:
        make_context = await _seed(desk)
        await desk.warm()
        runs: list[Attempt] = []
        bench.graph.faults.latency_ms = bench.exo.faults.latency_ms = LATENCY_MS
        try:
            for label in ("first", "retry"):
                if intent == "password_reset":
                    runs.append(await _run_password_reset(desk, label))
                else:
                    runs.append(await _run_playbook(desk, make_context, label))
        finally:
            bench.graph.faults.latency_ms = bench.exo.faults.latency_ms = 0
        return runs[0], runs[1]
    finally:
        await desk.exchange.aclose()


async def _measure_all(bench: _Bench, intents: tuple[str, ...]) -> list[tuple[Attempt, Attempt]]:
    results = []
    for intent in intents:
        first, retry = await _measure_intent(bench, intent)
        progress(
            f"playbooks {LABELS[intent]}: {first.seconds:.2f} s, {len(first.of('Graph'))} Graph + "
            f"{len(first.of('Exchange'))} "
            f"Exchange calls ({first.writes} writes); retry {retry.seconds:.2f} s, {retry.writes} writes"
        )
        results.append((first, retry))
    return results


def run_all(intents: tuple[str, ...] = tuple(LABELS)) -> list[tuple[Attempt, Attempt]]:
    """Start the sandboxes and Azurite, measure every intent, stop them."""
    from sandbox.azurite import Azurite
    from sandbox.identity_stack import identity_stack
    from tierone.secret_links import new_master_key
    from tierone.storage import Storage

    progress("playbooks: starting Azurite and the Entra, Graph and Exchange sandboxes …")
    with (
        Azurite() as azurite,
        identity_stack(
            AzureWebJobsStorage=azurite.connection_string,
            TIERONE_SECRET_ENCRYPTION_KEY=new_master_key(),
            TIERONE_PUBLIC_BASE_URL="https://tierone.example.net",
        ) as identity,
    ):
        storage = Storage(identity.settings)
        storage.account.ensure()
        bench = _Bench(identity, storage)
        bench.counter.install()
        try:
            return asyncio.run(_measure_all(bench, intents))
        finally:
            bench.counter.uninstall()


# -- the report --------------------------------------------------------------------------------


def _checks(results: list[tuple[Attempt, Attempt]]) -> None:
    """Broken, not slow: a playbook that did not complete, or a failed call."""
    for first, retry in results:
        for attempt in (first, retry):
            bad = [f"{n} {s}" for n, s in attempt.steps if s not in ("done", "already", "noted")]
            if bad:
                raise BenchError(f"{LABELS[attempt.intent]} ({attempt.label}) did not complete: {', '.join(bad)}")


def tables(results: list[tuple[Attempt, Attempt]]) -> list[Table]:
    cost = Table(
        f"Playbooks at {LATENCY_MS} ms per call (Graph and Exchange; one ticket each, then the same ticket again)",
        [
            "intent",
            "run",
            "steps",
            "Graph calls",
            "Graph writes",
            "Exchange calls",
            "Exchange writes",
            "storage ops",
            "plan (s)",
            "wall (s)",
            f"calls × {LATENCY_MS} ms (s)",
            "storage (s)",
            "rest (s)",
        ],
        left=2,
    )
    for first, retry in results:
        for a in (first, retry):
            cost.add(
                LABELS[a.intent] if a is first else "",
                a.label,
                len(a.steps),
                len(a.of("Graph")),
                len(a.writes_to("Graph")),
                len(a.of("Exchange")),
                len(a.writes_to("Exchange")),
                len(a.storage),
                f"{a.plan_seconds:.2f}",
                f"{a.seconds:.2f}",
                f"{a.injected:.2f}",
                f"{a.storage_seconds:.2f}",
                f"{a.seconds - a.injected - a.storage_seconds:.2f}",
            )
    firsts = [f for f, _ in results]
    retries = [r for _, r in results]
    cost.notes += [
        "one run of each (N = 1), sequential: the time is made of the calls, which are counted exactly; "
        f"first runs {sum(a.seconds for a in firsts):.1f} s in all, retries {sum(a.seconds for a in retries):.1f} s",
        "plan = the playbook's reads before any step (password reset: issuing the one-time link); wall = plan + "
        "the steps (each checked, changed, read back and recorded in the ledger); storage = the time in the "
        f"storage ops (local Azurite); rest = wall − calls × {LATENCY_MS} ms − storage: the sandboxes' own work "
        "and the client code (msgraph-sdk, httpx, azure-identity's token cache)",
        "writes = Graph POST/PATCH/PUT/DELETE and Exchange cmdlets other than Get-* (refused ones included); "
        "storage ops = action-ledger and one-time-link Table operations (no added latency)",
        "each intent has a fresh tenant whose Graph and Exchange tokens are fetched before the clock starts; token "
        "requests are not counted; the pipeline's own calls around a playbook (resolve, role and manager checks, "
        "the PSA) are not included",
        "retry = the same ticket again with a fresh context, as a redelivered queue message: the plan reads again, "
        "the ledger skips the finished steps; the password reset has no ledger: its retry reuses the stored "
        "checkpoint and sends the same password again",
    ]

    where = Table(
        "Where the calls go (first run; Graph and Exchange calls by phase)",
        ["intent", "scenario", "plan reads", "step checks", "changes", "read-backs", "calls", "repeated reads"],
        left=2,
    )
    for a in firsts:
        where.add(
            LABELS[a.intent],
            SCENARIOS[a.intent],
            a.in_phase("plan"),
            a.in_phase("check"),
            a.in_phase("apply"),
            a.in_phase("verify"),
            len(a.calls),
            len(a.repeated_reads()),
        )
    where.notes += [
        "changes = the calls a step's apply makes (its writes, and any read it makes first); read-backs = the "
        "verify after each change (a step without its own verify re-runs its check)",
        "repeated reads = reads identical to an earlier read of the same run (same resource, query or "
        "parameters) with no write of any kind in between: answers the run already had",
    ]
    return [cost, where]


def _summary(calls: list[Call]) -> str:
    counts = Counter(c.label() for c in calls)
    return ", ".join(f"{label} ×{n}" if n > 1 else label for label, n in counts.items())


def findings(results: list[tuple[Attempt, Attempt]]) -> list[str]:
    notes: list[str] = []
    firsts = [f for f, _ in results]
    total_calls = sum(len(a.calls) for a in firsts)
    total_s = sum(a.seconds for a in firsts)
    injected = sum(a.injected for a in firsts)
    storage_s = sum(a.storage_seconds for a in firsts)
    ops = sum(len(a.storage) for a in firsts)
    notes.append(
        f"Playbooks at {LATENCY_MS} ms per call: the eight first runs made {total_calls} Graph and Exchange calls, "
        f"one after another: {injected:.2f} s of injected latency of {total_s:.2f} s measured "
        f"({injected / total_s:.0%}); of the other {total_s - injected:.2f} s, {storage_s:.2f} s went to {ops} "
        f"storage operations (ledger and one-time links, {storage_s / ops * 1000:.1f} ms each on Azurite) and "
        f"{total_s - injected - storage_s:.2f} s to the client code and the sandboxes' own work."
    )
    written = [r for _, r in results if r.intent != "password_reset" and r.writes]
    if written:
        for r in written:
            notes.append(
                f"{LABELS[r.intent]}: the retry of the same ticket made {r.writes} writes "
                f"({_summary([c for c in r.calls if c.write])})."
            )
    else:
        notes.append(
            "Retries: none of the seven playbooks wrote anything on the second run of the same ticket (their "
            "calls are the plan's reads: "
            + ", ".join(f"{LABELS[r.intent]} {len(r.calls)}" for _, r in results if r.intent != "password_reset")
            + "). The password reset's retry re-sent its PATCH, with the same password (checkpoint, no ledger)."
        )
    for first, retry in results:
        for a in (first, retry):
            refused = [c for c in a.calls if c.status >= 400]
            if refused:
                notes.append(
                    f"{LABELS[a.intent]} ({a.label}): {len(refused)} call(s) answered with an error status, counted "
                    f"above: {', '.join(f'{c.label()} → {c.status} ({c.phase})' for c in refused)}."
                )
            if a.verify_rounds:
                notes.append(
                    f"{LABELS[a.intent]} ({a.label}): {a.verify_rounds} read-back(s) after a settle sleep "
                    "(the change was not visible at the first read-back)."
                )
    for a in firsts:
        repeats = a.repeated_reads()
        if repeats:
            notes.append(
                f"{LABELS[a.intent]}: {len(repeats)} of {len(a.calls)} calls re-read what the run had just read "
                f"({_summary(repeats)}; in {', '.join(sorted({c.phase for c in repeats}))}): "
                f"{len(repeats) * LATENCY_MS / 1000:.2f} s at {LATENCY_MS} ms per call."
            )
    return notes


def measure(intents: tuple[str, ...] = tuple(LABELS)) -> tuple[list[Table], list[str]]:
    results = run_all(intents)
    _checks(results)
    out = tables(results)
    for table in out:
        print(table.text(), "\n", flush=True)
    return out, findings(results)


def print_sequences(results: list[tuple[Attempt, Attempt]]) -> None:
    for first, retry in results:
        for a in (first, retry):
            print(f"{LABELS[a.intent]} ({a.label}): {', '.join(f'{n} {s}' for n, s in a.steps)}")
            for i, call in enumerate(a.calls, 1):
                status = "" if call.status < 400 else f" → {call.status}"
                print(f"  {i:2d} {call.phase:<7} {call.label()}{status}")


def main() -> int:
    results = run_all()
    _checks(results)
    print_sequences(results)
    for table in tables(results):
        print(table.text(), "\n", flush=True)
    for finding in findings(results):
        print(f"- {finding}")
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
