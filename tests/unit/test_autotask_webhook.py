"""Autotask webhook verification: X-Hook-Signature over the bytes as received, and what starts work."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
from typing import Any

import pytest

from psa_integrations.autotask.webhook import AutotaskWebhooks, dotnet_json
from psa_integrations.errors import ForgedWebhook, MalformedWebhook
from psa_integrations.models import PsaKind
from tierone.errors import ConfigError
from tierone.settings import Settings

SECRET = "kV9s2-webhook-secret-of-tierone"
API_RESOURCE = 29682885
TECHNICIAN = 30691780


def verifier(**overrides: Any) -> AutotaskWebhooks:
    values = {"AUTOTASK_WEBHOOK_SECRET": SECRET, "AUTOTASK_API_RESOURCE_ID": str(API_RESOURCE), **overrides}
    return AutotaskWebhooks(Settings.model_validate(values))


def payload(**overrides: Any) -> dict[str, Any]:
    """psa.md §5.2 (a): a ticket created by a technician."""
    return {
        "Action": "Create",
        "Guid": "a1da62a4-2c49-40a8-8183-69994ce5b3eb",
        "EntityType": "Ticket",
        "Id": 351181,
        "Fields": {"TicketNumber": "T20250915.0001", "Status": "1", "QueueID": "29682833"},
        "EventTime": "2025-09-15T14:57:50Z",
        "SequenceNumber": 1,
        "PersonID": TECHNICIAN,
    } | overrides


def compact(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()


def signature(body: bytes, secret: str = SECRET) -> str:
    return "sha1=" + base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha1).digest()).decode()


def signed(body: bytes, secret: str = SECRET) -> dict[str, str]:
    return {"Content-Type": "application/json", "X-Hook-Signature": signature(body, secret)}


# ---------------------------------------------------------------------------------------------
# Signatures
# ---------------------------------------------------------------------------------------------


async def test_a_ticket_creation_signed_over_the_raw_bytes_starts_work() -> None:
    body = compact(payload())
    event = await verifier().verify(body, signed(body))
    assert event.psa is PsaKind.AUTOTASK
    assert event.ticket_id == "351181"
    assert event.action == "Create"
    assert event.actor == str(TECHNICIAN)
    assert event.starts_work is True


async def test_the_header_name_is_matched_case_insensitively() -> None:
    body = compact(payload())
    event = await verifier().verify(body, {"x-hook-signature": signature(body)})
    assert event.starts_work


async def test_the_signature_covers_the_bytes_exactly_as_sent_including_whitespace() -> None:
    body = json.dumps(payload(), indent=2).encode()  # not what we would re-serialise
    event = await verifier().verify(body, signed(body))
    assert event.ticket_id == "351181"


@pytest.mark.parametrize(
    "headers",
    [{}, {"X-Hook-Signature": ""}, {"X-Hook-Signature": "sha1="}],
    ids=["absent", "empty", "prefix-only"],
)
async def test_a_missing_signature_is_forged(headers: dict[str, str]) -> None:
    with pytest.raises(ForgedWebhook, match=r"X-Hook-Signature|does not match"):
        await verifier().verify(compact(payload()), headers)


async def test_a_signature_made_with_another_secret_is_forged() -> None:
    body = compact(payload())
    with pytest.raises(ForgedWebhook):
        await verifier().verify(body, signed(body, secret="not-our-secret"))


async def test_a_body_changed_after_signing_is_forged() -> None:
    original = compact(payload())
    tampered = compact(payload(Id=351999))
    with pytest.raises(ForgedWebhook):
        await verifier().verify(tampered, signed(original))


# ---------------------------------------------------------------------------------------------
# The .NET escaped form (psa.md §2.3)
# ---------------------------------------------------------------------------------------------


def test_the_dotnet_form_escapes_html_sensitive_and_non_ascii_characters_as_utf16_units() -> None:
    text = 'Müller & Söhne <it\'s "urgent"> `a+b` back\\slash 😀\n'
    assert dotnet_json({"Title": text, "Id": 7}) == (
        '{"Title":"M\\u00FCller \\u0026 S\\u00F6hne \\u003Cit\\u0027s \\u0022urgent\\u0022\\u003E '
        '\\u0060a\\u002Bb\\u0060 back\\\\slash \\uD83D\\uDE00\\n","Id":7}'
    )


async def test_an_unescaped_body_signed_in_the_dotnet_form_is_accepted() -> None:
    data = payload(Fields={"Title": "Passwort zurücksetzen für Jürgen & Co"})
    what_autotask_signed = dotnet_json(data).encode("ascii")
    as_received = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    assert as_received != what_autotask_signed
    event = await verifier().verify(as_received, signed(what_autotask_signed))
    assert event.starts_work


async def test_the_escaped_fallback_does_not_accept_a_different_body() -> None:
    signed_data = payload(Fields={"Title": "Jürgen"})
    sent = json.dumps(payload(Id=1, Fields={"Title": "Jürgen"}), ensure_ascii=False).encode("utf-8")
    with pytest.raises(ForgedWebhook):
        await verifier().verify(sent, signed(dotnet_json(signed_data).encode()))


# ---------------------------------------------------------------------------------------------
# What starts work
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"Action": "Update", "Fields": {"Status": "5"}}, "action Update"),
        ({"Action": "Delete", "Fields": {}}, "action Delete"),
        ({"EntityType": "TicketNote"}, "not a ticket"),
        ({"EntityType": "Contact"}, "not a ticket"),
    ],
)
async def test_only_ticket_creations_start_work(overrides: dict[str, Any], reason: str) -> None:
    body = compact(payload(**overrides))
    event = await verifier().verify(body, signed(body))
    assert event.starts_work is False
    assert reason in (event.ignore_reason or "")


@pytest.mark.parametrize(
    "person",
    [{"PersonID": API_RESOURCE}, {"PersonID": str(API_RESOURCE)}, {"PersonId": API_RESOURCE}],
    ids=["int", "string", "PersonId-spelling"],
)
async def test_a_ticket_created_by_our_own_api_resource_does_not_start_work(person: dict[str, Any]) -> None:
    data = payload()
    del data["PersonID"]
    body = compact(data | person)
    event = await verifier().verify(body, signed(body))
    assert event.starts_work is False
    assert event.ignore_reason == "saved by TierOne's own API resource"


async def test_a_signed_deactivation_is_accepted_logged_loudly_and_never_starts_work(
    caplog: pytest.LogCaptureFixture,
) -> None:
    body = compact({"Action": "Deactivated", "Guid": "a1da62a4-2c49-40a8-8183-69994ce5b3eb"})
    with caplog.at_level(logging.ERROR, logger="tierone.psa.autotask"):
        event = await verifier().verify(body, signed(body))
    assert event.starts_work is False
    assert event.ticket_id is None
    assert "deactivated" in (event.ignore_reason or "")
    assert any("DEACTIVATED" in record.message for record in caplog.records)


async def test_an_unsigned_deactivation_is_forged() -> None:
    body = compact({"Action": "Deactivated", "Guid": "a1da62a4-2c49-40a8-8183-69994ce5b3eb"})
    with pytest.raises(ForgedWebhook):
        await verifier().verify(body, {"Content-Type": "application/json"})


async def test_fields_sent_as_a_list_of_name_value_pairs_are_understood() -> None:
    body = compact(payload(Fields=[{"name": "Status", "value": "1"}, {"name": "Title", "value": "VPN"}]))
    event = await verifier().verify(body, signed(body))
    assert event.starts_work


# ---------------------------------------------------------------------------------------------
# Malformed payloads (signed, so the body itself is at fault)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1, 2]",
        compact({k: v for k, v in payload().items() if k != "Action"}),
        compact({k: v for k, v in payload().items() if k != "Id"}),
        compact({k: v for k, v in payload().items() if k != "EntityType"}),
        compact(payload(Id="ticket-1")),
        compact(payload(SequenceNumber=True)),
        compact(payload(Fields="Status=1")),
    ],
    ids=["not-json", "array", "no-action", "no-id", "no-entity", "id-not-number", "bool-sequence", "fields-string"],
)
async def test_a_signed_body_that_is_not_an_autotask_event_is_malformed(body: bytes) -> None:
    with pytest.raises(MalformedWebhook):
        await verifier().verify(body, signed(body))


# ---------------------------------------------------------------------------------------------
# Delivery ids (psa.md §2.4)
# ---------------------------------------------------------------------------------------------


async def test_a_retried_delivery_has_the_same_delivery_id() -> None:
    body = compact(payload())
    first = await verifier().verify(body, signed(body))
    retry = await verifier().verify(body, signed(body))
    assert first.delivery_id == retry.delivery_id
    assert first.delivery_id == "a1da62a4-2c49-40a8-8183-69994ce5b3eb|351181|Create|1"


async def test_each_event_of_a_webhook_has_its_own_delivery_id() -> None:
    ids = set()
    for data in (payload(), payload(SequenceNumber=2), payload(Id=351182), payload(Action="Update")):
        body = compact(data)
        ids.add((await verifier().verify(body, signed(body))).delivery_id)
    assert len(ids) == 4


async def test_without_guid_or_sequence_number_the_delivery_id_falls_back_to_id_action_and_event_time() -> None:
    data = {k: v for k, v in payload().items() if k not in ("Guid", "SequenceNumber")}
    body = compact(data)
    event = await verifier().verify(body, signed(body))
    assert event.delivery_id == "351181|Create|2025-09-15T14:57:50Z"


# ---------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("secret", [None, ""])
def test_without_a_webhook_secret_the_verifier_refuses_to_exist(secret: str | None) -> None:
    values = {"AUTOTASK_API_RESOURCE_ID": str(API_RESOURCE)}
    if secret is not None:
        values["AUTOTASK_WEBHOOK_SECRET"] = secret
    with pytest.raises(ConfigError, match="AUTOTASK_WEBHOOK_SECRET"):
        AutotaskWebhooks(Settings.model_validate(values))
