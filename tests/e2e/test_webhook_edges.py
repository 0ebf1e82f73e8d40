"""What the webhook endpoint does with bad, repeated and irrelevant deliveries."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

from sandbox import scenario as world
from sandbox.connectwise import sign_body
from sandbox.stack import LocalStack


def webhook_url(stack: LocalStack, key: str | None = None) -> str:
    assert stack.host is not None
    return f"{stack.host.api_url}/webhooks/connectwise?code={key or stack.function_key}&recordId=1"


def envelope(stack: LocalStack, ticket_id: int, action: str = "added", member: str = "jsmith") -> bytes:
    body = {
        "MessageId": str(uuid.uuid4()),
        "FromUrl": "127.0.0.1",
        "CompanyId": "tierone-msp",
        "MemberId": member,
        "Action": action,
        "Type": "ticket",
        "ID": ticket_id,
        "Entity": json.dumps({"id": ticket_id}),
        "Metadata": {"key_url": stack.connectwise.key_url},
        "CallbackObjectRecId": 1,
    }
    return json.dumps(body).encode()


def post(
    stack: LocalStack, raw: bytes, signature: str | None, content_type: str = "application/json", key: str | None = None
) -> httpx.Response:
    headers = {"Content-Type": content_type}
    if signature is not None:
        headers["x-content-signature"] = signature
    return httpx.post(webhook_url(stack, key), content=raw, headers=headers, timeout=10)


def queued(stack: LocalStack) -> int:
    return sum(1 for r in stack.table_rows() if r.get("State") == "queued" and "TicketId" in r)


@pytest.mark.parametrize(
    ("mutate", "status"),
    [
        ("forged", 401),
        ("unsigned", 401),
        ("foreign-key-url", 401),
        ("malformed", 400),
        ("not-a-callback", 400),
        ("wrong-type", 415),
        ("huge", 413),
        ("no-function-key", 401),
    ],
)
def test_bad_deliveries_get_a_clear_4xx_and_queue_nothing(stack, scenario, mutate, status):
    before = queued(stack)
    raw = envelope(stack, 999001)
    signature: str | None = sign_body(stack.connectwise.signing_key, raw)
    key = None
    content_type = "application/json"
    if mutate == "forged":
        signature = sign_body("not-the-key", raw)
    elif mutate == "unsigned":
        signature = None
    elif mutate == "foreign-key-url":
        doc = json.loads(raw)
        doc["Metadata"]["key_url"] = "https://attacker.example/key"
        raw = json.dumps(doc).encode()
        signature = sign_body("attacker-key", raw)
    elif mutate == "malformed":
        raw = b'{"MessageId": "x", '
        signature = sign_body(stack.connectwise.signing_key, raw)
    elif mutate == "not-a-callback":
        raw = b'{"hello": "world"}'
        signature = sign_body(stack.connectwise.signing_key, raw)
    elif mutate == "wrong-type":
        content_type = "text/plain"
    elif mutate == "huge":
        raw = b'{"pad": "' + b"x" * (1024 * 1024) + b'"}'
        signature = sign_body(stack.connectwise.signing_key, raw)
    elif mutate == "no-function-key":
        key = "wrong-key"
    response = post(stack, raw, signature, content_type, key)
    assert response.status_code == status
    assert queued(stack) == before


def test_a_replayed_delivery_is_acknowledged_and_changes_nothing(stack, scenario):
    ticket_id = world.create_ticket(
        stack, scenario, world.DemoTicket("anna", "Password reset", "forgot my password", "resolved")
    ).id
    stack.wait_until_idle()
    delivery = next(d for d in stack.connectwise.deliveries if d.ticket_id == ticket_id and d.action == "added")
    notes_before = len(stack.connectwise.notes(ticket_id))
    patches_before = sum(1 for r in stack.graph.request_log if r.method == "PATCH")

    replay = post(stack, delivery.body, delivery.signature)
    stack.wait_until_idle()

    assert replay.status_code == 200
    assert replay.json()["status"] == "duplicate"
    assert len(stack.connectwise.notes(ticket_id)) == notes_before
    assert sum(1 for r in stack.graph.request_log if r.method == "PATCH") == patches_before


def test_a_second_creation_event_for_a_handled_ticket_starts_no_second_run(stack, scenario):
    ticket_id = world.create_ticket(
        stack, scenario, world.DemoTicket("anna", "Password reset", "forgot my password", "resolved")
    ).id
    stack.wait_until_idle()
    notes_before = len(stack.connectwise.notes(ticket_id))
    raw = envelope(stack, ticket_id)  # a new MessageId for the same ticket
    response = post(stack, raw, sign_body(stack.connectwise.signing_key, raw))
    stack.wait_until_idle()
    assert response.status_code == 202
    assert len(stack.connectwise.notes(ticket_id)) == notes_before


@pytest.mark.parametrize(("action", "member"), [("updated", "jsmith"), ("added", "tierone-api"), ("deleted", "jsmith")])
def test_updates_deletes_and_our_own_saves_are_acknowledged_but_start_nothing(stack, scenario, action, member):
    before = queued(stack)
    raw = envelope(stack, 999002, action=action, member=member)
    response = post(stack, raw, sign_body(stack.connectwise.signing_key, raw))
    assert response.status_code == 200
    assert response.json()["status"] == "ignored"
    assert queued(stack) == before


def test_a_ticket_on_a_board_outside_tierones_scope_is_left_exactly_as_it_was(stack, scenario):
    """CONNECTWISE_BOARDS names the L1 board; a project board's ticket gets no note, status or entry."""
    anna = scenario.person("anna")
    contoso = scenario.customers["contoso"]
    board = stack.connectwise.add_board("Projects")
    created = stack.connectwise.create_ticket(
        "Password reset", "I forgot my password", contoso.company_id, anna.contact_id, int(board["id"]), "portal"
    )
    ticket_id = int(created["id"])
    stack.wait_until_idle(timeout=60)

    ticket = stack.connectwise.ticket(ticket_id)
    assert ticket["status"]["name"] == created["status"]["name"]
    assert [n for n in stack.connectwise.notes(ticket_id) if "TierOne" in n["text"]] == []
    rows = [r for r in stack.table_rows() if r.get("PartitionKey") == "connectwise" and r["RowKey"] == str(ticket_id)]
    (row,) = [r for r in rows if "State" in r]
    assert row["State"] == "skipped"
    assert "not in CONNECTWISE_BOARDS" in row["Reason"]
