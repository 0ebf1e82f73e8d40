"""The real ConnectWise client against the ConnectWise sandbox, over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from psa_integrations.connectwise.client import ConnectWiseClient
from psa_integrations.models import NoteVisibility
from sandbox.connectwise import ConnectWiseSandbox
from tierone.errors import PermanentError, TransientError
from tierone.settings import Settings


@pytest.fixture(scope="module")
def cw() -> Iterator[ConnectWiseSandbox]:
    with ConnectWiseSandbox() as sandbox:
        yield sandbox


@pytest.fixture
def world(cw: ConnectWiseSandbox):
    cw.reset()
    company = cw.add_company("Contoso Dental", "ContosoDental")
    contact = cw.add_contact(company["id"], "Anna", "Berg", "anna.berg@contoso.example")
    board = cw.add_board("L1 Service Desk")
    ticket = cw.create_ticket("Password reset", "I forgot my password", company["id"], contact["id"], board["id"])
    return {"company": company, "contact": contact, "board": board, "ticket": ticket}


def client_for(cw: ConnectWiseSandbox, **overrides: str) -> ConnectWiseClient:
    values = {
        "CONNECTWISE_API_URL": cw.api_url,
        "CONNECTWISE_COMPANY_ID": "tierone-msp",
        "CONNECTWISE_PUBLIC_KEY": "sbxPublicKey4tier1",
        "CONNECTWISE_PRIVATE_KEY": "sbxPrivateKey4tier1",
        "CONNECTWISE_CLIENT_ID": "5c3e2a7d-8f41-4b6e-9d2a-1f0b7c6e3a94",
        **overrides,
    }
    return ConnectWiseClient(Settings.model_validate(values))


async def test_reads_a_ticket_with_its_description_company_and_contact_email(cw, world):
    client = client_for(cw)
    ticket = await client.get_ticket(str(world["ticket"]["id"]))
    await client.aclose()
    assert ticket.summary == "Password reset"
    assert ticket.description == "I forgot my password"
    assert ticket.company.name == "Contoso Dental"
    assert ticket.contact is not None
    assert ticket.contact.email == "anna.berg@contoso.example"
    assert not ticket.closed
    assert "2025.1" in cw.api_versions_seen


async def test_writes_notes_of_both_visibilities(cw, world):
    client = client_for(cw)
    ticket_id = str(world["ticket"]["id"])
    await client.add_note(ticket_id, "visible to the user", NoteVisibility.CUSTOMER)
    await client.add_note(ticket_id, "for technicians", NoteVisibility.INTERNAL)
    notes = await client.list_notes(ticket_id)
    await client.aclose()
    by_text = {n.text: n.internal for n in notes}
    assert by_text["visible to the user"] is False
    assert by_text["for technicians"] is True


async def test_time_entry_then_close_moves_the_ticket_to_a_closed_status_of_its_board(cw, world):
    client = client_for(cw)
    ticket_id = str(world["ticket"]["id"])
    start = datetime.now(UTC).replace(microsecond=123456)
    await client.add_time_entry(ticket_id, start, start + timedelta(minutes=2), "work done")
    status = await client.close_ticket(ticket_id)
    entries = await client.list_time_entries(ticket_id)
    await client.aclose()
    assert [e.notes for e in entries] == ["work done"]
    assert status in {"Completed", "Closed"}
    assert cw.ticket(int(ticket_id))["closedFlag"] is True


async def test_closing_prefers_the_configured_closed_status(cw, world):
    client = client_for(cw, CONNECTWISE_CLOSED_STATUS="closed")
    status = await client.close_ticket(str(world["ticket"]["id"]))
    await client.aclose()
    assert status == "Closed"


async def test_escalation_uses_the_configured_status_or_leaves_the_ticket_alone(cw, world):
    ticket_id = str(world["ticket"]["id"])
    unchanged = client_for(cw)
    assert await unchanged.escalate_ticket(ticket_id) is None
    await unchanged.aclose()
    escalating = client_for(cw, CONNECTWISE_ESCALATION_STATUS="Escalated")
    assert await escalating.escalate_ticket(ticket_id) == "Escalated"
    await escalating.aclose()
    assert cw.ticket(int(ticket_id))["status"]["name"] == "Escalated"


async def test_throttling_is_waited_out_on_reads(cw, world):
    cw.faults.fail_next(2, 429)
    client = client_for(cw)
    ticket = await client.get_ticket(str(world["ticket"]["id"]))
    await client.aclose()
    assert ticket.summary == "Password reset"
    assert [r.status for r in cw.request_log[:3]] == [429, 429, 200]


async def test_a_server_error_on_a_write_is_not_blindly_repeated(cw, world):
    client = client_for(cw)
    cw.faults.fail_next(1, 500)
    with pytest.raises(TransientError):
        await client.add_note(str(world["ticket"]["id"]), "maybe written", NoteVisibility.INTERNAL)
    await client.aclose()
    posts = [r for r in cw.request_log if r.method == "POST"]
    assert len(posts) == 1


async def test_wrong_keys_and_missing_tickets_are_permanent_errors(cw, world):
    bad = client_for(cw, CONNECTWISE_PRIVATE_KEY="wrong")
    with pytest.raises(PermanentError, match="401"):
        await bad.get_ticket(str(world["ticket"]["id"]))
    await bad.aclose()
    client = client_for(cw)
    with pytest.raises(PermanentError, match="404"):
        await client.get_ticket("999999")
    await client.aclose()
