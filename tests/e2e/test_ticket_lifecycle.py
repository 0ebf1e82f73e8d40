"""Whole tickets through the function app, on each PSA: webhook → queue → pipeline → Graph → write-back."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest

from sandbox import humans
from sandbox import scenario as world
from sandbox.psa_views import TicketRef, view
from sandbox.stack import LocalStack
from tierone.audit import AuditLog
from tierone.settings import Settings
from tierone.storage import Storage

CLOSED_STATUS = {"connectwise": "Completed", "autotask": "Complete", "halopsa": "Closed"}


def run_ticket(stack: LocalStack, scenario: world.Scenario, requester: str, summary: str, body: str) -> TicketRef:
    ref = world.create_ticket(stack, scenario, world.DemoTicket(requester, summary, body, ""))
    stack.wait_until_idle(timeout=60)
    return ref


def confirmed(stack: LocalStack, ref: TicketRef) -> TicketRef:
    """The user confirms the credential request from their registered mailbox; the run resumes."""
    assert state_of(stack, ref)["State"] == "awaiting_confirmation"
    assert humans.answer_confirmation(stack, ref).status_code == 200
    stack.wait_until_idle(timeout=60)
    return ref


def evidence_note(ref_view) -> str:
    (note,) = [n for n in ref_view.notes_by_tierone(internal=True) if "Decision:" in n]
    return note


def state_of(stack: LocalStack, ref: TicketRef) -> dict:
    rows = [r for r in stack.table_rows() if r.get("PartitionKey") == ref.psa and r.get("RowKey") == str(ref.id)]
    return next((r for r in rows if "State" in r), {})


def link_in(text: str) -> str:
    match = re.search(r"https?://[^\s<\"]+/api/secrets/[A-Za-z0-9_-]+", text)
    assert match, text
    return match.group(0)


def everything_in_the_psas(stack: LocalStack) -> str:
    return "\n".join(s.everything_text() for s in (stack.connectwise, stack.autotask, stack.halopsa))


@pytest.mark.parametrize("requester", ["anna", "priya", "nina"])
def test_a_users_own_password_reset_is_resolved_end_to_end_on_each_psa(stack, scenario, caplog, requester):
    caplog.set_level("INFO")
    person = scenario.person(requester)
    tenant = scenario.customer_of(requester).tenant_id
    ref = confirmed(
        stack, run_ticket(stack, scenario, requester, "Password reset", "I forgot my password, can't log in.")
    )

    assert state_of(stack, ref)["State"] == "resolved"
    ticket = view(stack, ref)
    assert ticket.closed
    assert ticket.status == CLOSED_STATUS[ref.psa]
    (customer_note,) = ticket.notes_by_tierone(internal=False)
    evidence = evidence_note(ticket)
    assert "P10-self-service-reset" in evidence
    assert "Confirmation: confirmed by the user's alternate e-mail on record" in evidence
    assert "lastPasswordChangeDateTime" in evidence
    assert "request ids" in evidence.lower()
    assert ticket.time_entries == 1

    # The link shows a button on GET (scanners change nothing), reveals on POST, then never again.
    link = link_in(customer_note)
    with httpx.Client() as http:
        assert http.get(link).status_code == 200
        assert http.get(link).status_code == 200
        revealed = http.post(link)
        assert http.post(link).status_code == 410
    password = stack.graph.password_of(tenant, person.user_id)
    assert password
    assert f"<code>{password}</code>" in revealed.text

    # The account's registered addresses hear of the change; the notice holds no credential and no link.
    notices = [
        m
        for m in stack.graph.sent_mail(stack.msp_tenant_id)
        if m["subject"] == f"Security notice: a change to the account {person.email}"
    ]
    assert notices
    assert all("/api/" not in m["content"] and password not in m["content"] for m in notices)
    assert {address for m in notices for address in m["to"]} <= set(
        stack.graph.user(tenant, person.user_id)["otherMails"]
        + [stack.graph.user(tenant, m)["mail"] for m in [stack.graph.manager_of(tenant, person.user_id)] if m]
    )
    assert "security notice sent" in evidence

    # The password is nowhere but in the directory and behind the link.
    assert password not in everything_in_the_psas(stack)
    assert password not in repr(stack.table_rows())
    assert password not in caplog.text


def test_the_audit_chain_of_the_tenant_records_the_decision_and_verifies(stack, scenario):
    confirmed(stack, run_ticket(stack, scenario, "anna", "Password reset", "I forgot my password."))
    storage = Storage(Settings.from_env())
    audit = AuditLog(storage.audit)
    tenant = scenario.customers["contoso"].tenant_id
    records = asyncio.run(audit.records(tenant))
    assert {
        "decided",
        "mode",
        "confirmation_requested",
        "confirmation_confirmed",
        "executed",
        "closed",
    } <= {r["event_type"] for r in records}
    assert asyncio.run(audit.verify(tenant)) == []


@pytest.mark.parametrize(
    ("requester", "summary", "body", "rule"),
    [
        ("ben", "Password reset for Priya", "Please reset the password for priya.shah@fabrikamlegal.example", "P06"),
        ("tom", "Printer broken", "The printer next to reception jams", "P01"),
        ("grace", "Reset my password", "Please reset my password, I cannot sign in", "P05"),
        ("omar", "Slow internet", "The internet in the warehouse is very slow today", "P01"),
    ],
)
def test_requests_tierone_must_not_complete_are_escalated_with_the_reason(
    stack, scenario, requester, summary, body, rule
):
    person = scenario.person(requester)
    tenant = scenario.customer_of(requester).tenant_id
    password_before = stack.graph.password_of(tenant, person.user_id)
    ref = run_ticket(stack, scenario, requester, summary, body)

    assert state_of(stack, ref)["State"] == "escalated"
    ticket = view(stack, ref)
    (note,) = ticket.notes_by_tierone(internal=True)
    assert "escalated this ticket" in note
    assert rule in note
    assert not ticket.closed
    assert ticket.escalated
    assert ticket.notes_by_tierone(internal=False) == []
    assert stack.graph.password_of(tenant, person.user_id) == password_before


def test_a_write_that_fails_mid_pipeline_is_retried_to_one_result(stack, scenario):
    """Graph applies the change but the response is lost (500): the message is retried, the same
    password is set again, and the ticket still gets exactly one note with one working link."""
    anna = scenario.person("anna")
    tenant = scenario.customers["contoso"].tenant_id
    stack.graph.faults.fail_next(1, 500, method="PATCH", after_applying=True)
    ref = confirmed(stack, run_ticket(stack, scenario, "anna", "Password reset", "forgot my password again"))

    state = state_of(stack, ref)
    assert state["State"] == "resolved"
    # Attempts: the first run (parked), the resume that failed, its retry.
    assert state["Attempts"] == 3, "the first attempt after the confirmation should have failed and been retried"
    patches = [r for r in stack.graph.request_log if r.method == "PATCH" and anna.user_id in r.path]
    assert len(patches) >= 2
    (note,) = view(stack, ref).notes_by_tierone(internal=False)
    with httpx.Client() as http:
        revealed = http.post(link_in(note))
    assert f"<code>{stack.graph.password_of(tenant, anna.user_id)}</code>" in revealed.text


def test_a_ticket_that_keeps_failing_ends_escalated_with_an_honest_note(stack, scenario):
    ref = run_ticket(stack, scenario, "anna", "Password reset", "forgot my password once more")
    stack.graph.faults.fail_next(50, 500, method="PATCH")
    try:
        confirmed(stack, ref)
    finally:
        stack.graph.faults.clear()

    assert state_of(stack, ref)["State"] == "failed"
    ticket = view(stack, ref)
    assert any("gave up" in n and "No change was confirmed" in n for n in ticket.notes_by_tierone(internal=True))
    assert ticket.escalated


def test_a_client_flagged_vip_is_never_changed_even_for_their_own_reset(stack, scenario):
    from tierone.client_policy import PolicyStore
    from tierone.storage import POLICIES, Table

    anna = scenario.person("anna")
    tenant = scenario.customers["contoso"].tenant_id
    policies = PolicyStore(Table(Storage(Settings.from_env()).account, POLICIES))

    def flag(p):
        return p.model_copy(update={"vip_upns": [anna.email]})

    def unflag(p):
        return p.model_copy(update={"vip_upns": []})

    asyncio.run(policies.set(tenant, flag, by="test", note="Anna is a VIP"))
    try:
        password_before = stack.graph.password_of(tenant, anna.user_id)
        ref = run_ticket(stack, scenario, "anna", "Password reset", "I forgot my password, please reset it")
    finally:
        asyncio.run(policies.set(tenant, unflag, by="test", note="back to normal"))

    assert state_of(stack, ref)["State"] == "escalated"
    (note,) = view(stack, ref).notes_by_tierone(internal=True)
    assert "P05b-protected-account" in note
    assert "VIP" in note
    assert stack.graph.password_of(tenant, anna.user_id) == password_before
