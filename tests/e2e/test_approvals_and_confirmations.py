"""The client's gates end to end: approvals decided on the page, out-of-band confirmations answered
from a registered mailbox, holds that expire, shadow mode and intents switched off — through the
function app, the PSA sandboxes, Graph and the real pages."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx
import pytest

from sandbox import humans
from sandbox import scenario as world
from sandbox.psa_views import TicketRef, view
from sandbox.stack import LocalStack
from tierone.audit import AuditLog
from tierone.client_policy import ClientPolicy, Mode, PolicyStore
from tierone.settings import Settings
from tierone.storage import Storage


def run_ticket(stack: LocalStack, scenario: world.Scenario, requester: str, summary: str, body: str) -> TicketRef:
    ref = world.create_ticket(stack, scenario, world.DemoTicket(requester, summary, body, ""))
    stack.wait_until_idle(timeout=60)
    return ref


def state_of(stack: LocalStack, ref: TicketRef) -> dict:
    rows = [r for r in stack.table_rows() if r.get("PartitionKey") == ref.psa and r.get("RowKey") == str(ref.id)]
    return next((r for r in rows if "State" in r), {})


def approval_of(stack: LocalStack, ref: TicketRef) -> dict:
    approval_id = state_of(stack, ref)["ApprovalId"]
    return next(r for r in stack.table_rows() if r.get("PartitionKey") == "approval" and r["RowKey"] == approval_id)


def closing_note(ref_view) -> str:
    (note,) = [
        n for n in ref_view.notes_by_tierone(internal=True) if "Decision:" in n and "TierOne is waiting" not in n
    ]
    return note


@contextmanager
def client_policy(tenant: str, change: Callable[[ClientPolicy], ClientPolicy]) -> Iterator[None]:
    """A policy change for one test, undone afterwards (as a new version, like any edit)."""
    store = PolicyStore(Storage(Settings.from_env()).policies)
    before = asyncio.run(store.get(tenant))[0]
    asyncio.run(store.set(tenant, change, by="test", note="test"))
    try:
        yield
    finally:
        asyncio.run(store.set(tenant, lambda _: before, by="test", note="restore"))


def test_an_approved_request_is_carried_out_once_the_approver_decides_on_the_page(stack, scenario):
    fabrikam = scenario.customers["fabrikam"]
    ben = scenario.person("ben")
    ref = run_ticket(stack, scenario, "priya", "Licence for Ben", "Ben Ortiz needs an Exchange Online Plan 1 licence.")

    assert state_of(stack, ref)["State"] == "awaiting_approval"
    licences_before = stack.graph.licenses_of(fabrikam.tenant_id, ben.user_id)
    link = humans.approval_link(stack, ref)
    assert any(link in str(card) for card in stack.teams.received), "the request went out on Teams too"

    # Opening the link changes nothing: anonymously it asks for a sign-in, signed in it shows the request.
    lee = humans.signed_in(stack, "lee")
    with httpx.Client() as http:
        assert http.get(link).status_code == 401
        lees_page = http.get(link, headers=lee)
    assert lees_page.status_code == 200
    stack.wait_until_idle(timeout=30)
    assert approval_of(stack, ref)["State"] == "pending"
    assert state_of(stack, ref)["State"] == "awaiting_approval"

    # Sam approves; Lee, who opened the page before, denies a moment later: one decision stands.
    assert humans.decide_approval(stack, ref, approve=True, who="sam").status_code == 200
    with httpx.Client() as http:
        late = http.post(link, headers=lee, data={"csrf": humans.form_token(lees_page.text), "decision": "deny"})
    assert late.status_code == 409
    stack.wait_until_idle(timeout=60)

    assert state_of(stack, ref)["State"] == "resolved"
    assert len(stack.graph.licenses_of(fabrikam.tenant_id, ben.user_id)) == len(licences_before) + 1
    ticket = view(stack, ref)
    assert ticket.closed
    assert len(ticket.notes_by_tierone(internal=False)) == 1
    note = closing_note(ticket)
    assert "Approval: approved by sam.rivera@tierone-msp.example via web" in note
    assert "C02-client-approval" in note
    records = asyncio.run(AuditLog(Storage(Settings.from_env()).audit).records(fabrikam.tenant_id))
    mine = [r for r in records if r["ticket"] == f"{ref.psa}:{ref.id}"]
    events = [r["event_type"] for r in mine]
    assert events.index("approval_requested") < events.index("approval_approved") < events.index("executed")
    assert next(r for r in mine if r["event_type"] == "approval_approved")["actor"] == "sam.rivera@tierone-msp.example"
    assert asyncio.run(AuditLog(Storage(Settings.from_env()).audit).verify(fabrikam.tenant_id)) == []


def test_a_denied_request_changes_nothing_and_is_escalated_with_who_denied_it(stack, scenario):
    contoso = scenario.customers["contoso"]
    tom = scenario.person("tom")
    ref = run_ticket(stack, scenario, "grace", "Sales group", "Please add Tom Baker to the Sales security group.")
    assert state_of(stack, ref)["State"] == "awaiting_approval"

    assert humans.decide_approval(stack, ref, approve=False).status_code == 200
    stack.wait_until_idle(timeout=60)

    assert state_of(stack, ref)["State"] == "escalated"
    sales = stack.graph.group(contoso.tenant_id, "Sales")["id"]
    assert tom.user_id not in stack.graph.members(contoso.tenant_id, sales)
    ticket = view(stack, ref)
    assert ticket.escalated
    assert not ticket.closed
    note = closing_note(ticket)
    assert "A02-approval-denied" in note
    assert "denied by sam.rivera@tierone-msp.example" in note


def test_a_request_nobody_approves_expires_and_is_escalated(stack, scenario):
    contoso = scenario.customers["contoso"]
    tom = scenario.person("tom")
    ref = run_ticket(stack, scenario, "grace", "All Staff", "Please add Tom Baker to the All Staff group.")
    assert state_of(stack, ref)["State"] == "awaiting_approval"

    report = humans.let_hold_expire(stack, ref)
    stack.wait_until_idle(timeout=60)

    assert f"{ref.psa}:{ref.id}" in report.resumed
    assert state_of(stack, ref)["State"] == "escalated"
    assert approval_of(stack, ref)["State"] == "expired"
    all_staff = stack.graph.group(contoso.tenant_id, "All Staff")["id"]
    assert tom.user_id not in stack.graph.members(contoso.tenant_id, all_staff)
    assert "A03-approval-expired" in closing_note(view(stack, ref))
    # After the expiry the page only reports it: there is nothing left to decide.
    with httpx.Client() as http:
        page = http.get(humans.approval_link(stack, ref), headers=humans.signed_in(stack, "sam"))
    assert "expired" in page.text
    assert "name=csrf" not in page.text


def test_shadow_mode_posts_the_plan_as_an_internal_note_and_changes_nothing(stack, scenario):
    northwind = scenario.customers["northwind"]
    nina = scenario.person("nina")
    ref = run_ticket(stack, scenario, "nina", "Finance group", "Please add me to the Finance group, thanks. Nina")

    assert state_of(stack, ref)["State"] == "proposed"
    finance = stack.graph.group(northwind.tenant_id, "Finance")["id"]
    assert nina.user_id not in stack.graph.members(northwind.tenant_id, finance)
    ticket = view(stack, ref)
    assert ticket.escalated, "a technician carries the plan out"
    assert ticket.notes_by_tierone(internal=False) == []
    (note,) = ticket.notes_by_tierone(internal=True)
    assert "changed nothing" in note
    assert "Plan:" in note
    assert "Finance" in note.split("Plan:", 1)[1]
    assert "C02-client-propose" in note


def test_a_declined_confirmation_is_escalated_as_possible_social_engineering(stack, scenario):
    fabrikam = scenario.customers["fabrikam"]
    priya = scenario.person("priya")
    before = stack.graph.password_of(fabrikam.tenant_id, priya.user_id)
    ref = run_ticket(stack, scenario, "priya", "Password reset", "I forgot my password, please reset it")

    assert state_of(stack, ref)["State"] == "awaiting_confirmation"
    mail = humans.confirmation_mail(stack, ref)
    assert mail["to"] == ["priya.s@home.example"], "only the address registered on the account, never the ticket's"
    assert mail["from"] == "helpdesk@tierone-msp.example"

    link = humans.confirmation_link(stack, ref)
    with httpx.Client() as http:
        assert http.get(link).status_code == 200
        assert http.get(link).status_code == 200
    stack.wait_until_idle(timeout=30)
    assert state_of(stack, ref)["State"] == "awaiting_confirmation", "opening the link decides nothing"

    assert humans.answer_confirmation(stack, ref, yes=False).status_code == 200
    stack.wait_until_idle(timeout=60)

    assert state_of(stack, ref)["State"] == "escalated"
    assert stack.graph.password_of(fabrikam.tenant_id, priya.user_id) == before
    note = closing_note(view(stack, ref))
    assert "V09-confirmation-declined" in note
    assert "social-engineering" in note


def test_a_contact_the_client_authorised_may_ask_for_someone_else_and_confirms_from_their_own_mailbox(stack, scenario):
    fabrikam = scenario.customers["fabrikam"]
    ben, priya = scenario.person("ben"), scenario.person("priya")

    def authorise_ben(policy: ClientPolicy) -> ClientPolicy:
        return policy.model_copy(update={"authorised_contacts": {"password_reset": [ben.email]}})

    with client_policy(fabrikam.tenant_id, authorise_ben):
        ref = run_ticket(
            stack, scenario, "ben", "Password reset for Priya", f"Please reset the password for {priya.email}"
        )
        assert state_of(stack, ref)["State"] == "awaiting_confirmation"
        assert humans.confirmation_mail(stack, ref)["to"] == [ben.email]
        assert humans.answer_confirmation(stack, ref).status_code == 200
        stack.wait_until_idle(timeout=60)

    assert state_of(stack, ref)["State"] == "resolved"
    note = closing_note(view(stack, ref))
    assert "V05-authorised-contact" in note
    assert "P11-password_reset-authorised" in note


def test_a_confirmation_nobody_answers_expires_and_nothing_changes(stack, scenario):
    northwind = scenario.customers["northwind"]
    nina = scenario.person("nina")
    before = stack.graph.password_of(northwind.tenant_id, nina.user_id)
    ref = run_ticket(stack, scenario, "nina", "Password reset", "my password expired, please reset")
    assert state_of(stack, ref)["State"] == "awaiting_confirmation"
    link = humans.confirmation_link(stack, ref)
    with httpx.Client() as http:
        token = humans.form_token(http.get(link).text)

    humans.let_hold_expire(stack, ref)
    stack.wait_until_idle(timeout=60)

    assert state_of(stack, ref)["State"] == "escalated"
    assert stack.graph.password_of(northwind.tenant_id, nina.user_id) == before
    assert "V10-confirmation-expired" in closing_note(view(stack, ref))
    with httpx.Client() as http:
        assert http.post(link, data={"csrf": token, "decision": "yes"}).status_code == 410  # too late


def test_an_intent_the_client_keeps_for_technicians_is_escalated_untouched(stack, scenario):
    contoso = scenario.customers["contoso"]

    def unlock_off(policy: ClientPolicy) -> ClientPolicy:
        return policy.model_copy(update={"modes": {**policy.modes, "account_unlock": Mode.OFF}})

    with client_policy(contoso.tenant_id, unlock_off):
        ref = run_ticket(stack, scenario, "anna", "Account locked", "My account is blocked, please unlock it. Anna")

    assert state_of(stack, ref)["State"] == "escalated"
    assert "C02-client-off" in closing_note(view(stack, ref))


def test_duplicate_resumes_of_one_decision_act_once(stack, scenario):
    """The page's resume, the sweep's and a redelivered message race; one run acts."""
    from tierone.approvals import Actor, Approvals
    from tierone.holds import resume

    contoso = scenario.customers["contoso"]
    anna = scenario.person("anna")
    ref = run_ticket(stack, scenario, "grace", "Sales group", "Please add Anna Berg to the Sales security group.")
    row = state_of(stack, ref)
    assert row["State"] == "awaiting_approval"

    storage = Storage(Settings.from_env())
    sam = stack.msp_staff["sam"]
    approvals = Approvals(storage.approvals, Settings.from_env(), AuditLog(storage.audit))

    async def decide_and_resume_thrice() -> list[bool]:
        await approvals.decide(row["ApprovalId"], Actor(oid=sam["id"], upn=sam["userPrincipalName"]), True, "web")
        ticket_ref = f"{ref.psa}:{ref.id}"
        return list(await asyncio.gather(*(resume(storage, ticket_ref, row["ApprovalId"]) for _ in range(3))))

    assert asyncio.run(decide_and_resume_thrice()) == [True, True, True]
    stack.wait_until_idle(timeout=60)

    assert state_of(stack, ref)["State"] == "resolved"
    sales = stack.graph.group(contoso.tenant_id, "Sales")["id"]
    assert anna.user_id in stack.graph.members(contoso.tenant_id, sales)
    adds = [r for r in stack.graph.request_log if r.method == "POST" and f"groups/{sales}/members" in r.path]
    assert len(adds) == 1
    assert len(view(stack, ref).notes_by_tierone(internal=False)) == 1


def test_without_a_decision_the_request_moves_on_to_slack_where_an_enrolled_approver_decides(stack, scenario):
    fabrikam = scenario.customers["fabrikam"]
    ben = scenario.person("ben")
    ref = run_ticket(
        stack, scenario, "priya", "Visio for Ben", "Ben Ortiz needs a Microsoft 365 Business Premium licence."
    )
    assert state_of(stack, ref)["State"] == "awaiting_approval"
    with pytest.raises(humans.NoSuchHold):
        humans.click_in_slack(stack, ref)  # Teams first; Slack only once Teams has had its chance

    report = humans.let_time_pass(stack, minutes=16)  # past TIERONE_APPROVAL_CHANNEL_WAIT_MINUTES
    assert report.notifications_sent >= 1
    assert approval_of(stack, ref)["State"] == "pending"

    # A forged callback and a Slack user who is not enrolled decide nothing (stale ones: tests/unit).
    assert humans.click_in_slack(stack, ref, forge=True).status_code == 401
    assert humans.click_in_slack(stack, ref, slack_user="U0STRANGER").status_code == 200  # told why, in Slack
    assert humans.click_in_slack(stack, ref, slack_user="U0LEECHEN", slack_team="T0OTHERORG").status_code == 200
    stack.wait_until_idle(timeout=30)
    assert approval_of(stack, ref)["State"] == "pending"

    licences_before = stack.graph.licenses_of(fabrikam.tenant_id, ben.user_id)
    assert humans.click_in_slack(stack, ref, approve=True, slack_user="U0LEECHEN").status_code == 200
    stack.wait_until_idle(timeout=60)

    assert approval_of(stack, ref)["DecisionChannel"] == "slack"
    assert state_of(stack, ref)["State"] == "resolved"
    assert len(stack.graph.licenses_of(fabrikam.tenant_id, ben.user_id)) == len(licences_before) + 1
    assert "approved by lee.chen@tierone-msp.example via slack" in closing_note(view(stack, ref))


def test_a_client_without_approvers_of_its_own_is_served_by_the_msp_defaults(stack, scenario):
    contoso = scenario.customers["contoso"]

    def no_approvers(policy: ClientPolicy) -> ClientPolicy:
        return policy.model_copy(update={"approvers": []})

    with client_policy(contoso.tenant_id, no_approvers):
        ref = run_ticket(stack, scenario, "grace", "Sales group", "Please add Tom Baker to the Sales security group.")
    assert state_of(stack, ref)["State"] == "awaiting_approval"
    approvers = {a["upn"] for a in json.loads(approval_of(stack, ref)["Approvers"])}
    assert approvers == {"sam.rivera@tierone-msp.example", "lee.chen@tierone-msp.example"}
    assert humans.decide_approval(stack, ref, approve=False).status_code == 200
    stack.wait_until_idle(timeout=60)


def test_a_confirmation_mail_that_failed_is_sent_again_for_the_same_confirmation(stack, scenario):
    """The confirmation is recorded, the mail fails (Graph 503); the retried run sends the same link
    to the recorded address instead of opening a second confirmation."""
    stack.graph.faults.fail_next(1, 503, method="POST")
    try:
        ref = run_ticket(stack, scenario, "anna", "Password reset", "forgot my password, please help")
    finally:
        stack.graph.faults.clear()

    assert state_of(stack, ref)["State"] == "awaiting_confirmation"
    (mail,) = humans.confirmation_mails(stack, ref)
    assert mail["to"] == ["anna.berg@home.example"]
    ticket_ref = f"{ref.psa}:{ref.id}"
    records = [
        r for r in stack.table_rows() if r.get("PartitionKey") == "confirmation" and r["TicketRef"] == ticket_ref
    ]
    assert len(records) == 1
    assert humans.answer_confirmation(stack, ref).status_code == 200
    stack.wait_until_idle(timeout=60)
    assert state_of(stack, ref)["State"] == "resolved"
