"""Autotask webhooks: verify `X-Hook-Signature` and parse the payload (psa.md §2.2–2.4).

The signature is `sha1=` + base64(HMAC-SHA1(key=SecretKey as UTF-8, msg=body)). It is checked over
the raw bytes exactly as received. Autotask is a .NET service and its JSON writer escapes
`& < > ' " ` +` and every non-ASCII character as `\\uXXXX`; if a relay (or Autotask itself) ever
hands us a body whose strings are not in that form, the raw bytes no longer match what was signed.
So, only when the raw check fails, the same body is re-encoded in the .NET form and checked again
(the fix the n8n Autotask node needed for accented characters). Every candidate is compared in
constant time, and the secret never leaves this module.

A `Deactivated` event (sent to the DeactivationUrl when Autotask disables the webhook) is accepted
only once its signature verifies, never starts work, and is logged as an error: until the
webhook is registered again, no ticket reaches TierOne except through reconciliation."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from psa_integrations.base import header
from psa_integrations.errors import ForgedWebhook, MalformedWebhook
from psa_integrations.models import PsaKind, WebhookEvent
from tierone.errors import ConfigError
from tierone.settings import Settings

log = logging.getLogger("tierone.psa.autotask")

SIGNATURE_HEADER = "X-Hook-Signature"
SIGNATURE_PREFIX = "sha1="

# What System.Text.Json's default encoder writes for HTML-sensitive characters (n8n's map agrees).
_DOTNET_ESCAPES = {
    "&": "\\u0026",
    "<": "\\u003C",
    ">": "\\u003E",
    "'": "\\u0027",
    '"': "\\u0022",
    "`": "\\u0060",
    "+": "\\u002B",
    "\\": "\\\\",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
}
_STRING_LITERAL = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)


# ---------------------------------------------------------------------------------------------
# Signature
# ---------------------------------------------------------------------------------------------


def sign(body: bytes, secret: str) -> str:
    """The header value Autotask sends for `body`."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha1).digest()
    return SIGNATURE_PREFIX + base64.b64encode(digest).decode("ascii")


def dotnet_string(text: str) -> str:
    """`text` as a JSON string literal in the .NET escaped form (quotes included)."""
    out = ['"']
    for char in text:
        escaped = _DOTNET_ESCAPES.get(char)
        if escaped is not None:
            out.append(escaped)
        elif " " <= char <= "~":
            out.append(char)
        else:
            # Control characters and everything beyond ASCII, as UTF-16 code units (surrogate pairs).
            units = char.encode("utf-16-be")
            out.extend(f"\\u{units[i]:02X}{units[i + 1]:02X}" for i in range(0, len(units), 2))
    out.append('"')
    return "".join(out)


def dotnet_json(value: Any) -> str:
    """Compact JSON in the .NET escaped form."""
    if isinstance(value, dict):
        return "{" + ",".join(f"{dotnet_string(str(k))}:{dotnet_json(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(dotnet_json(item) for item in value) + "]"
    if isinstance(value, str):
        return dotnet_string(value)
    return json.dumps(value)


def _relit(text: str) -> str:
    """The body with only its string literals re-escaped; numbers, order and spacing kept as sent."""
    return _STRING_LITERAL.sub(lambda match: dotnet_string(json.loads(match.group(0))), text)


def _escaped_candidates(raw: bytes) -> list[bytes]:
    try:
        text = raw.decode("utf-8")
        parsed = json.loads(text)
    except (UnicodeDecodeError, ValueError):
        return []
    candidates = {_relit(text).encode("ascii"), dotnet_json(parsed).encode("ascii")}
    candidates.discard(raw)
    return sorted(candidates)


def _given_digest(signature: str) -> bytes:
    value = signature.strip()
    if value[: len(SIGNATURE_PREFIX)].lower() == SIGNATURE_PREFIX:
        value = value[len(SIGNATURE_PREFIX) :]
    return value.strip().encode("utf-8")


def verify_signature(raw: bytes, signature: str | None, secret: str) -> None:
    """Raise ForgedWebhook unless `signature` is the signature of `raw` (or of its .NET form)."""
    if not signature or not signature.strip():
        raise ForgedWebhook(f"missing {SIGNATURE_HEADER}")
    given = _given_digest(signature)
    key = secret.encode("utf-8")

    def matches(body: bytes) -> bool:
        expected = base64.b64encode(hmac.new(key, body, hashlib.sha1).digest())
        return hmac.compare_digest(expected, given)

    if matches(raw):
        return
    matched = False
    for candidate in _escaped_candidates(raw):
        matched |= matches(candidate)  # no early exit: every candidate costs the same
    if not matched:
        raise ForgedWebhook("signature does not match")
    log.info("autotask webhook verified over its .NET-escaped form, not the raw bytes")


# ---------------------------------------------------------------------------------------------
# Payload
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AutotaskPayload:
    action: str
    guid: str | None
    entity_type: str | None
    entity_id: str | None
    event_time: str | None
    sequence_number: str | None
    person_id: int | None
    fields: dict[str, Any] = field(default_factory=dict)

    @property
    def is_deactivation(self) -> bool:
        return self.action.lower() == "deactivated"


def _int_like(value: Any, name: str) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise MalformedWebhook(f"{name} is not a number")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    raise MalformedWebhook(f"{name} is not a number")


def _id_text(value: Any, name: str) -> str | None:
    number = _int_like(value, name)
    return None if number is None else str(number)


def _text(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise MalformedWebhook(f"{name} is not a string")
    return value.strip() or None


def _fields(value: Any) -> dict[str, Any]:
    """`Fields` is an object in every fixture seen; one simulation sends a list of {name, value}."""
    if value is None:
        return {}
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, list) and all(isinstance(item, dict) and "name" in item for item in value):
        return {str(item["name"]): item.get("value") for item in value}
    raise MalformedWebhook("Fields is neither an object nor a list of {name, value}")


def parse_payload(raw: bytes) -> AutotaskPayload:
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedWebhook("body is not JSON") from exc
    if not isinstance(data, dict):
        raise MalformedWebhook("body is not a JSON object")
    # Field-name casing differs between sources (PersonID vs PersonId): match case-insensitively.
    lowered = {str(key).lower(): value for key, value in data.items()}
    action = _text(lowered.get("action"), "Action")
    if not action:
        raise MalformedWebhook("not an Autotask webhook (no Action)")
    payload = AutotaskPayload(
        action=action,
        guid=_text(lowered.get("guid"), "Guid"),
        entity_type=_text(lowered.get("entitytype"), "EntityType"),
        entity_id=_id_text(lowered.get("id"), "Id"),
        event_time=_text(lowered.get("eventtime"), "EventTime"),
        sequence_number=_id_text(lowered.get("sequencenumber"), "SequenceNumber"),
        person_id=_int_like(lowered.get("personid"), "PersonID"),
        fields=_fields(lowered.get("fields")),
    )
    # The deactivation body is undocumented: only its Action is relied on.
    if not payload.is_deactivation and (payload.entity_type is None or payload.entity_id is None):
        raise MalformedWebhook("not an Autotask webhook (EntityType and Id are required)")
    return payload


def delivery_id(payload: AutotaskPayload, raw: bytes) -> str:
    """Autotask has no per-event id: (Guid, Id, Action, SequenceNumber), else (Id, Action, EventTime).

    A retry resends the same bytes, so the last resort, a hash of the body, is stable too."""
    if payload.guid and payload.entity_id and payload.sequence_number is not None:
        return f"{payload.guid}|{payload.entity_id}|{payload.action}|{payload.sequence_number}"
    if payload.entity_id and payload.event_time:
        return f"{payload.entity_id}|{payload.action}|{payload.event_time}"
    return "sha256-" + hashlib.sha256(raw).hexdigest()


def to_event(payload: AutotaskPayload, raw: bytes, *, api_resource_id: int | None) -> WebhookEvent:
    """Only a ticket *creation* by someone other than TierOne's own API resource starts work."""
    is_ticket = (payload.entity_type or "").lower() == "ticket"
    reason: str | None = None
    if payload.is_deactivation:
        reason = "the webhook was deactivated in Autotask; register it again"
    elif not is_ticket:
        reason = f"entity {payload.entity_type} is not a ticket"
    elif payload.action.lower() != "create":
        reason = f"action {payload.action} does not start work"
    elif api_resource_id is not None and payload.person_id == api_resource_id:
        reason = "saved by TierOne's own API resource"
    return WebhookEvent(
        psa=PsaKind.AUTOTASK,
        delivery_id=delivery_id(payload, raw),
        ticket_id=payload.entity_id if is_ticket and not payload.is_deactivation else None,
        action=payload.action,
        actor=None if payload.person_id is None else str(payload.person_id),
        starts_work=reason is None,
        ignore_reason=reason,
    )


def describe(payload: AutotaskPayload) -> dict[str, Any]:
    """Fields safe to log: no field values (they can hold ticket text)."""
    return {
        "action": payload.action,
        "entity": payload.entity_type,
        "id": payload.entity_id,
        "guid": payload.guid,
        "sequence": payload.sequence_number,
        "person": payload.person_id,
    }


class AutotaskWebhooks:
    """The WebhookVerifier for Autotask ticket webhooks."""

    kind = PsaKind.AUTOTASK

    def __init__(self, settings: Settings) -> None:
        secret = settings.autotask_webhook_secret
        if secret is None or not secret.get_secret_value():
            raise ConfigError("missing app settings: AUTOTASK_WEBHOOK_SECRET")
        self._secret = secret.get_secret_value()
        self._api_resource_id = settings.autotask_api_resource_id
        if self._api_resource_id is None:
            log.warning("AUTOTASK_API_RESOURCE_ID is not set: TierOne's own ticket saves cannot be recognised")

    async def verify(self, raw: bytes, headers: Mapping[str, str]) -> WebhookEvent:
        verify_signature(raw, header(headers, SIGNATURE_HEADER), self._secret)
        payload = parse_payload(raw)
        if payload.is_deactivation:
            log.error(
                "AUTOTASK WEBHOOK DEACTIVATED (guid %s): ticket webhooks have stopped; "
                "run `tierone psa register autotask` to re-activate it",
                payload.guid,
            )
        else:
            log.info("autotask webhook verified: %s", describe(payload))
        return to_event(payload, raw, api_resource_id=self._api_resource_id)
