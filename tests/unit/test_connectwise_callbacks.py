import base64
import hashlib
import hmac
import json

import pytest

from psa_integrations.connectwise.webhook import (
    CallbackVerifier,
    ForgedCallback,
    MalformedCallback,
    expected_signature,
    parse_callback,
    to_event,
)


def envelope(**overrides) -> dict:
    body = {
        "MessageId": "2b6f0c1e-4b8f-4a53-9a3e-0e2f7d0d5a11",
        "FromUrl": "na.myconnectwise.net",
        "CompanyId": "contosomsp",
        "MemberId": "jsmith",
        "Action": "added",
        "Type": "ticket",
        "ID": 512345,
        "Entity": json.dumps({"id": 512345, "summary": "Password reset"}),
        "Metadata": {"key_url": "https://na.myconnectwise.net/v2025_1//system/callbackkey/index.rails?id=x"},
        "CallbackObjectRecId": 26552,
    }
    body.update(overrides)
    return body


def test_the_signature_is_hmac_sha256_keyed_with_the_sha256_of_the_signing_key():
    raw = b'{"MessageId":"m"}'
    key = hashlib.sha256(b"signing-key").digest()
    manual = base64.b64encode(hmac.new(key, raw, hashlib.sha256).digest()).decode()
    assert expected_signature(raw, "signing-key") == manual


def test_a_ticket_creation_by_a_person_starts_work():
    event = to_event(parse_callback(json.dumps(envelope()).encode()), api_member="tierone-api")
    assert event.starts_work
    assert event.ticket_id == "512345"
    assert event.delivery_id == "2b6f0c1e-4b8f-4a53-9a3e-0e2f7d0d5a11"


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"Action": "updated"}, "action updated"),
        ({"Action": "deleted", "Entity": None}, "action deleted"),
        ({"Type": "contact"}, "type contact"),
        ({"MemberId": "TierOne-API"}, "own API member"),
    ],
)
def test_updates_deletes_other_records_and_our_own_saves_start_nothing(overrides, reason):
    event = to_event(parse_callback(json.dumps(envelope(**overrides)).encode()), api_member="tierone-api")
    assert not event.starts_work
    assert reason in (event.ignore_reason or "")


@pytest.mark.parametrize(
    "raw",
    [b"not json", b"[1,2]", b'{"MessageId": "x"}', json.dumps(envelope(ID="abc")).encode(), b"\xff\xfe"],
)
def test_bodies_that_are_not_callbacks_are_malformed(raw):
    with pytest.raises(MalformedCallback):
        parse_callback(raw)


@pytest.mark.parametrize(
    ("key_url", "allowed"),
    [
        ("https://na.myconnectwise.net/v2025_1//system/callbackkey/index.rails?id=1", True),
        ("https://NA.myconnectwise.net:443/x", True),
        ("http://na.myconnectwise.net/x", False),
        ("https://evil.example/x", False),
        ("https://na.myconnectwise.net.evil.example/x", False),
        ("https://na.myconnectwise.net@evil.example/x", False),
        ("https://user:pw@na.myconnectwise.net/x", False),
        ("https://na.myconnectwise.net:8443/x", False),
    ],
)
def test_signing_keys_are_fetched_only_from_the_configured_origin(key_url, allowed):
    assert CallbackVerifier("https://na.myconnectwise.net").key_url_allowed(key_url) is allowed


async def test_a_missing_signature_or_foreign_key_url_is_refused_before_any_fetch():
    verifier = CallbackVerifier("https://na.myconnectwise.net")
    parsed = parse_callback(json.dumps(envelope()).encode())
    with pytest.raises(ForgedCallback):
        await verifier.verify(b"{}", None, parsed)
    foreign = parse_callback(json.dumps(envelope(Metadata={"key_url": "https://evil.example/k"})).encode())
    with pytest.raises(ForgedCallback):
        await verifier.verify(b"{}", "c2ln", foreign)
