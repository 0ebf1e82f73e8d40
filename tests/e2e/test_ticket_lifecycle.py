"""Whole tickets through the function app: callback → queue → pipeline → Graph → PSA write-back."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest

from sandbox import scenario as world
from sandbox.stack import LocalStack
from tierone.audit import AuditLog
from tierone.settings import Settings
from tierone.storage import Storage


def run_ticket(stack: LocalStack, scenario: world.Scenario, requester: str, summary: str, body: str) -> int:
    ticket_id = world.create_ticket(stack, scenario, world.DemoTicket(requester, summary, body, ""))
    stack.wait_until_idle(timeout=60)
    return ticket_id


def state_of(stack: LocalStack, ticket_id: int) -> dict:
    rows = [
        r for r in stack.table_rows() if r.get("PartitionKey") == "connectwise" and r.get("RowKey") == str(ticket_id)
    ]
    return next((r for r in rows if "State" in r), {})


def customer_notes(stack: LocalStack, ticket_id: int) -> list[str]:
    return [
        n["text"]
        for n in stack.connectwise.notes(ticket_id)
        if not n.get("internalAnalysisFlag") and "TierOne" in n.get("text", "")
    ]


def internal_notes(stack: LocalStack, ticket_id: int) -> list[str]:
    return [n["text"] for n in stack.connectwise.notes(ticket_id) if n.get("internalAnalysisFlag")]


def link_in(text: str) -> str:
    match = re.search(r"https?://\S+/api/secrets/[A-Za-z0-9_-]+", text)
    assert match, text
    return match.group(0)


def test_a_users_own_password_reset_is_resolved_end_to_end(stack, scenario, caplog):
    caplog.set_level("INFO")
    anna = scenario.person("anna")
    tenant = scenario.customers["contoso"].tenant_id
    ticket_id = run_ticket(stack, scenario, "anna", "Password reset", "I forgot my password, can't log in.")

    assert state_of(stack, ticket_id)["State"] == "resolved"
    ticket = stack.connectwise.ticket(ticket_id)
    assert ticket["closedFlag"] is True
    assert ticket["status"]["name"] == "Completed"
    (customer_note,) = customer_notes(stack, ticket_id)
    (evidence,) = internal_notes(stack, ticket_id)
    assert "P10-self-service-reset" in evidence
    assert "lastPasswordChangeDateTime" in evidence
    assert "request ids" in evidence.lower()
    assert len(stack.connectwise.time_entries(ticket_id)) == 1

    # The link shows a button on GET (scanners change nothing), reveals on POST, then never again.
    link = link_in(customer_note)
    with httpx.Client() as http:
        assert http.get(link).status_code == 200
        assert http.get(link).status_code == 200
        revealed = http.post(link)
        assert http.post(link).status_code == 410
    password = stack.graph.password_of(tenant, anna.user_id)
    assert password
    assert f"<code>{password}</code>" in revealed.text

    # The password is nowhere but in the directory and behind the link.
    assert password not in stack.connectwise.everything_text()
    assert password not in repr(stack.table_rows())
    assert password not in caplog.text


def test_the_audit_chain_of_the_tenant_records_the_decision_and_verifies(stack, scenario):
    run_ticket(stack, scenario, "anna", "Password reset", "I forgot my password.")
    storage = Storage(Settings.from_env())
    audit = AuditLog(storage.audit)
    tenant = scenario.customers["contoso"].tenant_id
    records = asyncio.run(audit.records(tenant))
    assert {"decided", "executed", "closed"} <= {r["event_type"] for r in records}
    assert asyncio.run(audit.verify(tenant)) == []


@pytest.mark.parametrize(
    ("requester", "summary", "body", "rule"),
    [
        ("ben", "Password reset for Priya", "Please reset the password for priya.shah@fabrikamlegal.example", "P06"),
        ("tom", "Printer broken", "The printer next to reception jams", "P01"),
        ("grace", "Reset my password", "Please reset my password, I cannot sign in", "P05"),
    ],
)
def test_requests_tierone_must_not_complete_are_escalated_with_the_reason(
    stack, scenario, requester, summary, body, rule
):
    person = scenario.person(requester)
    tenant = scenario.customers[person.company].tenant_id
    password_before = stack.graph.password_of(tenant, person.user_id)
    ticket_id = run_ticket(stack, scenario, requester, summary, body)

    assert state_of(stack, ticket_id)["State"] == "escalated"
    (note,) = internal_notes(stack, ticket_id)
    assert "escalated this ticket" in note
    assert rule in note
    ticket = stack.connectwise.ticket(ticket_id)
    assert ticket["closedFlag"] is False
    assert ticket["status"]["name"] == "Escalated"
    assert customer_notes(stack, ticket_id) == []
    assert stack.graph.password_of(tenant, person.user_id) == password_before


def test_a_write_that_fails_mid_pipeline_is_retried_to_one_result(stack, scenario):
    """Graph applies the change but the response is lost (500): the message is retried, the same
    password is set again, and the ticket still gets exactly one note with one working link."""
    anna = scenario.person("anna")
    tenant = scenario.customers["contoso"].tenant_id
    stack.graph.faults.fail_next(1, 500, method="PATCH", after_applying=True)
    ticket_id = run_ticket(stack, scenario, "anna", "Password reset", "forgot my password again")

    assert state_of(stack, ticket_id)["State"] == "resolved"
    (note,) = customer_notes(stack, ticket_id)
    with httpx.Client() as http:
        revealed = http.post(link_in(note))
    assert f"<code>{stack.graph.password_of(tenant, anna.user_id)}</code>" in revealed.text
    worker_runs = [i for i in stack.host.invocations if i.function_name == "ticket_worker" and not i.ok]
    assert worker_runs, "the first attempt should have failed and been retried"


def test_a_ticket_that_keeps_failing_ends_escalated_with_an_honest_note(stack, scenario):
    stack.graph.faults.fail_next(50, 500, method="PATCH")
    ticket_id = run_ticket(stack, scenario, "anna", "Password reset", "forgot my password once more")
    stack.graph.faults.clear()

    assert state_of(stack, ticket_id)["State"] == "failed"
    notes = internal_notes(stack, ticket_id)
    assert any("gave up" in n and "No change was confirmed" in n for n in notes)
    assert stack.connectwise.ticket(ticket_id)["status"]["name"] == "Escalated"
