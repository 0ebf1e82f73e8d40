"""`make demo`: TierOne end to end on the local sandbox.

The tickets are created in the ConnectWise, Autotask and HaloPSA sandboxes as their requesters
would create them; each PSA fires its webhook at the function app (under the local Functions
host), which resolves, escalates, proposes or parks each one. Where TierOne asks people, the demo
plays them through the real links and pages (sandbox/humans.py): a user confirms or declines a
credential request from their registered mailbox, a technician approves or denies on the approval
page, and one request is left until it expires. Then it checks what a skeptical MSP would check:
every one-time link hands out the credential that is really set, once; and no credential is in
the PSAs, the tables or the logs."""

from __future__ import annotations

import logging
import re
import sys
import time
from dataclasses import dataclass

import httpx

from sandbox import humans
from sandbox import scenario as world
from sandbox.psa_views import TicketRef, view
from sandbox.stack import LocalStack

RESOLVED, PROPOSED, ESCALATED = "resolved", "proposed", "escalated"
PARKED = frozenset({"awaiting_approval", "awaiting_confirmation"})
LINK_INTENTS = frozenset({"password_reset", "mfa_reset", "onboarding"})  # hand a credential over by link


class MemoryLog(logging.Handler):
    """Keeps every formatted log line, so the demo can prove no secret was logged."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@dataclass
class TicketReport:
    ticket: TicketRef
    summary: str
    state: str
    detail: str
    expected: str


def _ticket_row(stack: LocalStack, ref: TicketRef) -> dict[str, object]:
    for row in stack.table_rows():
        if row.get("PartitionKey") == ref.psa and row.get("RowKey") == str(ref.id) and "State" in row:
            return row
    return {"State": "missing", "Reason": "no processing record"}


def _issued_secret(stack: LocalStack, scenario: world.Scenario, intent: str, requester: str) -> str | None:
    """What the directory now holds for the credential the ticket handed over (sandbox introspection)."""
    person = scenario.person(requester)
    tenant = scenario.customer_of(requester).tenant_id
    if intent == "password_reset":
        return stack.graph.password_of(tenant, person.user_id)
    if intent == "mfa_reset":
        tap = stack.graph.tap_of(tenant, person.user_id) or {}
        return str(tap.get("temporaryAccessPass") or "") or None
    if intent == "onboarding":
        return stack.graph.password_of(tenant, f"john.smith@{scenario.customer_of(requester).domain}")
    return None


def _check_link(stack: LocalStack, ref: TicketRef, expected: str | None) -> str:
    """Open the link as the user would: GET shows a button, POST reveals once, a second POST is refused."""
    notes = view(stack, ref).notes_by_tierone(internal=False)
    urls = [m for text in notes for m in re.findall(r"https?://[^\s<\"]+/api/secrets/[A-Za-z0-9_-]+", text)]
    if len(urls) != 1:
        return "FAIL: expected one one-time link in the customer note"
    with httpx.Client(timeout=10) as http:
        looked = http.get(urls[0])
        revealed = http.post(urls[0])
        again = http.post(urls[0])
    shown = re.search(r"<code>([^<]+)</code>", revealed.text)
    if looked.status_code != 200 or revealed.status_code != 200 or again.status_code != 410:
        return f"FAIL: link answered {looked.status_code}/{revealed.status_code}/{again.status_code}"
    if not shown or not expected or shown.group(1) != expected:
        return "FAIL: the link did not show the credential that is set in the directory"
    return "one-time link shown once, matches the directory, then refused"


def _secrets_leaked(stack: LocalStack, passwords: list[str], log_lines: list[str]) -> list[str]:
    places = {
        "the PSAs": "\n".join(
            sandbox.everything_text() for sandbox in (stack.connectwise, stack.autotask, stack.halopsa)
        ),
        "the tables": repr(stack.table_rows()),
        "the logs": "\n".join(log_lines),
    }
    return [where for where, text in places.items() for p in passwords if p and p in text]


def _answer(stack: LocalStack, ref: TicketRef, answer: str) -> str:
    """Play the person TierOne asked; return what they did, for the report."""
    if answer in ("confirm", "decline"):
        to = ", ".join(humans.confirmation_mail(stack, ref)["to"])
        reply = humans.answer_confirmation(stack, ref, yes=answer == "confirm")
        did = f"{'confirmed' if answer == 'confirm' else 'declined'} from {to}"
    elif answer in ("approve", "deny"):
        reply = humans.decide_approval(stack, ref, approve=answer == "approve", who="sam")
        did = f"{'approved' if answer == 'approve' else 'denied'} by Sam Rivera on the approval page"
    else:
        humans.let_hold_expire(stack, ref)
        return "nobody answered; expired"
    if reply.status_code != 200:
        raise humans.NoSuchHold(f"{did}: the page answered {reply.status_code}")
    return did


def _round(
    stack: LocalStack,
    created: list[tuple[TicketRef, world.DemoTicket]],
    left: dict[TicketRef, list[str]],
    trail: dict[TicketRef, list[str]],
    *,
    expiring: bool,
) -> bool:
    acted = False
    for ref, _ in created:
        if not left[ref] or (left[ref][0] == "expire") != expiring:
            continue
        if _ticket_row(stack, ref)["State"] not in PARKED:
            continue
        answer = left[ref].pop(0)
        try:
            trail[ref].append(_answer(stack, ref, answer))
        except humans.NoSuchHold as exc:
            trail[ref].append(f"FAIL: {exc}")
        acted = True
    return acted


def _play_the_people(stack: LocalStack, created: list[tuple[TicketRef, world.DemoTicket]]) -> tuple[dict, int]:
    """Answer every parked ticket with its scripted answers, one round at a time."""
    left = {ref: list(ticket.answers) for ref, ticket in created}
    trail: dict[TicketRef, list[str]] = {ref: [] for ref, _ in created}
    while True:
        # Letting a hold expire moves the sweep's clock for every hold, so nobody waits until the rest is answered.
        acted = _round(stack, created, left, trail, expiring=False) or _round(
            stack, created, left, trail, expiring=True
        )
        if not acted:
            break
        stack.wait_until_idle(timeout=120)
    for ref, unused in left.items():
        if unused:
            trail[ref].append(f"FAIL: never asked for {', '.join(unused)}")
    return trail, sum(step.startswith("FAIL") for steps in trail.values() for step in steps)


def run() -> int:
    memory = MemoryLog()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    root = logging.getLogger()
    for handler in root.handlers:
        handler.setLevel(logging.WARNING)  # the console shows problems; the memory log keeps everything
    root.addHandler(memory)
    for name in ("tierone", "sandbox.functions_host"):
        logging.getLogger(name).setLevel(logging.INFO)

    print("demo: starting Azurite, the Entra ID/Graph, ConnectWise, Autotask and HaloPSA sandboxes and the app …")
    started = time.perf_counter()
    with LocalStack() as stack:
        scenario = world.load(stack)
        print(f"demo: stack ready in {time.perf_counter() - started:.1f}s; creating {len(world.DEMO_TICKETS)} tickets")
        created = [(world.create_ticket(stack, scenario, t), t) for t in world.DEMO_TICKETS]
        stack.wait_until_idle(timeout=120)
        trail, errors = _play_the_people(stack, created)

        reports: list[TicketReport] = []
        passwords: list[str] = []
        for ref, ticket in created:
            row = _ticket_row(stack, ref)
            state, intent = str(row["State"]), str(row.get("Intent") or "?")
            detail = str(row.get("Reason") or row.get("Status") or "")
            if state == RESOLVED:
                detail = f"{intent}, closed as '{row.get('Status')}'"
                secret = _issued_secret(stack, scenario, intent, ticket.requester)
                if intent in LINK_INTENTS:
                    passwords.append(secret or "")
                    link = _check_link(stack, ref, secret)
                    detail += f"; {link}"
                    errors += link.startswith("FAIL")
            elif state == ESCALATED:
                detail = f"{intent}: {detail}"
            elif state == PROPOSED:
                detail = f"{intent}: plan posted as an internal note, nothing changed"
            if trail.get(ref):
                detail = f"{' → '.join(trail[ref])} → {detail}"
            if state != ticket.expected:
                errors += 1
                detail += f" (expected {ticket.expected})"
            reports.append(TicketReport(ref, ticket.summary, state, detail, ticket.expected))

        leaks = _secrets_leaked(stack, passwords, memory.lines)
        failed_invocations = [i for i in (stack.host.invocations if stack.host else []) if not i.ok]

    for r in reports:
        print(f"  {r.ticket} {r.summary!r}: {r.state} — {r.detail}")
    if leaks:
        errors += len(leaks)
        print(f"  secrets check: FAIL — a password was found in {', '.join(sorted(set(leaks)))}")
    else:
        print("  secrets check: no password in the PSAs, the tables or the logs")
    if failed_invocations:
        errors += len(failed_invocations)
        for inv in failed_invocations:
            print(f"  function error: {inv.function_name}: {inv.error}")
    count = {s: sum(r.state == s for r in reports) for s in (RESOLVED, PROPOSED, ESCALATED)}
    waiting = sum(r.state in PARKED for r in reports)
    print(
        f"demo: {len(reports)} tickets, {count[RESOLVED]} resolved, {count[PROPOSED]} proposed, "
        f"{waiting} awaiting approval, {count[ESCALATED]} escalated, {errors} errors"
    )
    return 0 if errors == 0 else 1


if __name__ == "__main__":
    sys.exit(run())
