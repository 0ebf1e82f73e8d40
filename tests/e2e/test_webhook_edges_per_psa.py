"""The Autotask and HaloPSA webhook routes face bad input the way the ConnectWise route does:
a clear 4xx or a clean ignore, nothing queued twice, never a 5xx."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime

import httpx
import pytest

from sandbox import scenario as world
from sandbox.autotask import sign
from sandbox.stack import LocalStack


def url(stack: LocalStack, psa: str, key: str | None = None) -> str:
    assert stack.host is not None
    return f"{stack.host.api_url}/webhooks/{psa}?code={key or stack.function_key}"


def queued(stack: LocalStack) -> int:
    return sum(1 for r in stack.table_rows() if r.get("State") == "queued" and "TicketId" in r)


def autotask_body(ticket_id: int = 999101, action: str = "Create") -> bytes:
    event = {
        "Action": action,
        "Guid": str(uuid.uuid4()),
        "EntityType": "Ticket",
        "Id": ticket_id,
        "Fields": {"Status": "1"},
        "EventTime": datetime.now(UTC).isoformat(),
        "SequenceNumber": 1,
        "PersonID": 29682885,
    }
    return json.dumps(event, separators=(",", ":")).encode()


def halo_body(ticket_id: int = 999102, event: str = "new ticket logged") -> bytes:
    envelope = {
        "id": str(uuid.uuid4()),
        "webhook_id": str(uuid.uuid4()),
        "event": event,
        "object_id": ticket_id,
        "agent_id": 2,
        "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.0000000Z"),
    }
    return json.dumps(envelope).encode()


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def authentic(stack: LocalStack, psa: str, body: bytes) -> dict[str, str]:
    if psa == "autotask":
        return {"X-Hook-Signature": sign(stack.autotask_webhook_secret, body)}
    return {"Authorization": basic("tierone", stack.halopsa_webhook_password)}


def forged(psa: str, body: bytes) -> dict[str, str]:
    if psa == "autotask":
        return {"X-Hook-Signature": sign("not-the-secret", body)}
    return {"Authorization": basic("tierone", "not-the-password")}


def body_for(psa: str) -> bytes:
    return autotask_body() if psa == "autotask" else halo_body()


@pytest.mark.parametrize("psa", ["autotask", "halopsa"])
@pytest.mark.parametrize(
    ("case", "status"),
    [
        ("forged", 401),
        ("missing-auth", 401),
        ("malformed", 400),
        ("wrong-type", 415),
        ("huge", 413),
        ("no-function-key", 401),
    ],
)
def test_bad_deliveries_get_a_clear_4xx_and_queue_nothing(stack, scenario, psa, case, status):
    before = queued(stack)
    body = body_for(psa)
    headers = {"Content-Type": "application/json", **authentic(stack, psa, body)}
    key = None
    if case == "forged":
        headers.update(forged(psa, body))
    elif case == "missing-auth":
        headers.pop("X-Hook-Signature", None)
        headers.pop("Authorization", None)
    elif case == "malformed":
        body = b'{"Action": "Create", '
        headers.update(authentic(stack, psa, body))
    elif case == "wrong-type":
        headers["Content-Type"] = "text/plain"
    elif case == "huge":
        body = b'{"pad": "' + b"x" * (1024 * 1024) + b'"}'
        headers.update(authentic(stack, psa, body))
    elif case == "no-function-key":
        key = "wrong-key"
    response = httpx.post(url(stack, psa, key), content=body, headers=headers, timeout=10)
    assert response.status_code == status
    assert queued(stack) == before


@pytest.mark.parametrize("requester", ["priya", "nina"])
def test_a_replayed_delivery_is_acknowledged_and_changes_nothing(stack, scenario, requester):
    ref = world.create_ticket(stack, scenario, world.DemoTicket(requester, "Password reset", "forgot my password", ""))
    stack.wait_until_idle()
    if ref.psa == "autotask":
        delivery = next(d for d in stack.autotask.deliveries if d.entity_id == ref.id and d.action == "Create")
        headers = {"Content-Type": "application/json", "X-Hook-Signature": delivery.signature}
    else:
        delivery = next(d for d in stack.halopsa.deliveries if d.object_id == ref.id)
        headers = {"Content-Type": "application/json", "Authorization": delivery.authorization or ""}
    patches_before = sum(1 for r in stack.graph.request_log if r.method == "PATCH")

    replay = httpx.post(url(stack, ref.psa), content=delivery.body, headers=headers, timeout=10)
    stack.wait_until_idle()

    assert replay.status_code == 200
    assert replay.json()["status"] == "duplicate"
    assert sum(1 for r in stack.graph.request_log if r.method == "PATCH") == patches_before


@pytest.mark.parametrize(
    ("psa", "body"), [("autotask", autotask_body(action="Update")), ("halopsa", halo_body(event="ticket updated"))]
)
def test_updates_are_acknowledged_but_start_nothing(stack, scenario, psa, body):
    before = queued(stack)
    headers = {"Content-Type": "application/json", **authentic(stack, psa, body)}
    response = httpx.post(url(stack, psa), content=body, headers=headers, timeout=10)
    assert response.status_code == 200
    assert response.json()["status"] == "ignored"
    assert queued(stack) == before
