"""HaloPSA webhook verification: Basic credentials, then Halo's envelope (psa.md §3.2–3.3, §5.3)."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import pytest

from psa_integrations.errors import ForgedWebhook, MalformedWebhook
from psa_integrations.halopsa.webhook import HaloWebhooks
from tierone.errors import ConfigError
from tierone.settings import Settings

USERNAME = "tierone"
PASSWORD = "wh-9f2c1e7a5b3d4c6e8a0b"
API_AGENT = 38


def verifier(**overrides: Any) -> HaloWebhooks:
    values: dict[str, Any] = {
        "HALOPSA_WEBHOOK_USERNAME": USERNAME,
        "HALOPSA_WEBHOOK_PASSWORD": PASSWORD,
        "HALOPSA_API_AGENT_ID": API_AGENT,
        **overrides,
    }
    return HaloWebhooks(Settings.model_validate({k: v for k, v in values.items() if v is not None}))


def basic(username: str = USERNAME, password: str = PASSWORD) -> dict[str, str]:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}", "Content-Type": "application/json"}


def envelope(**fields: Any) -> dict[str, Any]:
    """An "event information only" delivery (psa.md §5.3 c) plus message and agent_id."""
    body: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "webhook_id": "53232637-7724-4a19-b126-3c7267a292aa",
        "notification_id": 12,
        "escmsg_id": "5f0c2d11-acb8-f111-8260-02725cb0e102",
        "event": "new ticket logged",
        "message": "A new Ticket has been logged: 0004301.",
        "object_id": 4301,
        "agent_id": 3,
        "timestamp": "2026-09-25T07:02:13.1234567Z",
    }
    body.update(fields)
    return {key: value for key, value in body.items() if value is not None}


def raw(body: Any) -> bytes:
    return json.dumps(body).encode()


async def test_a_new_ticket_with_the_right_credentials_starts_work():
    body = envelope()
    event = await verifier().verify(raw(body), basic())
    assert event.starts_work
    assert event.ticket_id == "4301"
    assert event.delivery_id == body["id"]
    assert event.action == "new ticket logged"
    assert event.actor == "3"
    assert event.ignore_reason is None


async def test_header_names_and_the_scheme_are_case_insensitive():
    headers = {"authorization": basic()["Authorization"].replace("Basic", "basic")}
    event = await verifier().verify(raw(envelope()), headers)
    assert event.starts_work


async def test_the_full_object_payload_is_accepted_and_its_ticket_id_used_when_object_id_is_missing():
    body = envelope(object_id=None, ticket={"id": 4302, "summary": "MFA reset", "status_id": 1})
    event = await verifier().verify(raw(body), basic())
    assert event.ticket_id == "4302"
    assert event.starts_work


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="missing"),
        pytest.param(basic(password="guess"), id="wrong-password"),
        pytest.param(basic(username="halo"), id="wrong-username"),
        pytest.param({"Authorization": f"Bearer {PASSWORD}"}, id="wrong-scheme"),
        pytest.param({"Authorization": "Basic"}, id="empty-basic"),
        pytest.param({"Authorization": "Basic !!!not-base64!!!"}, id="undecodable"),
        pytest.param({"Authorization": "Basic " + base64.b64encode(b"no-colon").decode()}, id="no-password"),
    ],
)
async def test_anything_but_our_basic_credentials_is_forged(headers):
    with pytest.raises(ForgedWebhook):
        await verifier().verify(raw(envelope()), headers)


async def test_credentials_are_checked_before_the_body_is_read():
    with pytest.raises(ForgedWebhook):
        await verifier().verify(b"not json at all", basic(password="guess"))


async def test_an_unset_password_is_a_configuration_error_not_an_open_door():
    with pytest.raises(ConfigError, match="HALOPSA_WEBHOOK_PASSWORD"):
        await verifier(HALOPSA_WEBHOOK_PASSWORD=None).verify(raw(envelope()), basic())


@pytest.mark.parametrize("event", ["ticket status changed", "ticket reassigned", "new action added"])
async def test_other_events_are_ignored(event):
    result = await verifier().verify(raw(envelope(event=event)), basic())
    assert not result.starts_work
    assert result.ignore_reason is not None
    assert event in result.ignore_reason


async def test_the_event_name_is_compared_without_case():
    result = await verifier().verify(raw(envelope(event="New Ticket Logged")), basic())
    assert result.starts_work
    assert result.action == "new ticket logged"


async def test_a_ticket_logged_by_our_own_api_agent_never_starts_work():
    result = await verifier().verify(raw(envelope(agent_id=API_AGENT)), basic())
    assert not result.starts_work
    assert result.ignore_reason == "logged by TierOne's own API agent"


async def test_without_a_configured_api_agent_every_new_ticket_starts_work():
    result = await verifier(HALOPSA_API_AGENT_ID=None).verify(raw(envelope(agent_id=API_AGENT)), basic())
    assert result.starts_work


async def test_a_delivery_that_names_no_ticket_does_not_start_work():
    result = await verifier().verify(raw(envelope(object_id=None)), basic())
    assert not result.starts_work
    assert result.ticket_id is None


async def test_a_batched_delivery_is_refused_with_a_pointer_to_the_batching_setting():
    with pytest.raises(MalformedWebhook, match="batching off"):
        await verifier().verify(raw([envelope(), envelope()]), basic())


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"{not json", id="not-json"),
        pytest.param(b"\xff\xfe", id="not-utf8"),
        pytest.param(b'"a string"', id="not-an-object"),
        pytest.param(raw(envelope(id=None)), id="no-id"),
        pytest.param(raw(envelope(id="not-a-guid")), id="id-not-a-guid"),
        pytest.param(raw(envelope(event=None)), id="no-event"),
        pytest.param(raw(envelope(object_id="ticket-7")), id="object-id-not-a-number"),
    ],
)
async def test_malformed_bodies_are_rejected(body):
    with pytest.raises(MalformedWebhook):
        await verifier().verify(body, basic())
