"""HaloPSA outbound webhooks: Basic authentication, then the envelope.

Halo documents no body signature for outbound webhooks: the choices are "No Authentication" and
"Basic Authentication" (psa.md §3.1–3.2). TierOne requires Basic with its own username and a
random password, compared in constant time, on a URL that also carries the Functions key.

The envelope (psa.md §3.3, §5.3): `id` (a GUID per delivery: the dedupe key), `webhook_id`,
`notification_id`, `escmsg_id`, `event` (lower-case event name), `message`, `object_id` (the
ticket id), `agent_id`, `timestamp`, and with the "small"/"full" payload types a nested `ticket`.
Batched deliveries (Halo v2.164+) have an unverified shape: they are refused, so batching must
stay off on TierOne's webhook."""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
import uuid
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from psa_integrations.base import header
from psa_integrations.errors import ForgedWebhook, MalformedWebhook
from psa_integrations.models import PsaKind, WebhookEvent
from tierone.errors import ConfigError
from tierone.settings import Settings

log = logging.getLogger("tierone.psa.halopsa")

NEW_TICKET_EVENT = "new ticket logged"


class HaloEnvelope(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str = Field(min_length=1, max_length=100)
    webhook_id: str | None = None
    event: str = Field(min_length=1, max_length=200)
    object_id: int | None = None
    agent_id: int | None = None
    timestamp: str | None = None
    ticket: dict[str, Any] | None = None

    @field_validator("id")
    @classmethod
    def guid(cls, value: str) -> str:
        return str(uuid.UUID(value))

    @field_validator("event")
    @classmethod
    def lower(cls, value: str) -> str:
        return value.strip().lower()

    @property
    def ticket_id(self) -> int | None:
        if self.object_id is not None:
            return self.object_id
        nested = (self.ticket or {}).get("id")
        return nested if isinstance(nested, int) else None


def parse_envelope(raw: bytes) -> HaloEnvelope:
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedWebhook("body is not JSON") from exc
    if isinstance(data, list):
        raise MalformedWebhook(
            "batched HaloPSA deliveries are not supported: turn batching off on TierOne's webhook "
            "(Configuration > Integrations > Webhooks)"
        )
    if not isinstance(data, dict):
        raise MalformedWebhook("body is not a JSON object")
    try:
        return HaloEnvelope.model_validate(data)
    except ValidationError as exc:
        fields = ", ".join(".".join(str(p) for p in err["loc"]) for err in exc.errors())
        raise MalformedWebhook(f"not a HaloPSA webhook (fields: {fields})") from None


def basic_credentials(value: str | None) -> tuple[str, str]:
    """(username, password) from an Authorization header; ForgedWebhook when it is not Basic."""
    if not value:
        raise ForgedWebhook("missing Authorization header")
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "basic" or not token.strip():
        raise ForgedWebhook("Authorization is not Basic")
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise ForgedWebhook("Basic credentials cannot be decoded") from None
    username, sep, password = decoded.partition(":")
    if not sep:
        raise ForgedWebhook("Basic credentials have no password")
    return username, password


class HaloWebhooks:
    """The WebhookVerifier for HaloPSA."""

    kind = PsaKind.HALOPSA

    def __init__(self, settings: Settings) -> None:
        self._username = settings.halopsa_webhook_username
        self._password = settings.halopsa_webhook_password
        self._api_agent_id = settings.halopsa_api_agent_id

    def _authenticate(self, headers: Mapping[str, str]) -> None:
        if self._password is None or not self._password.get_secret_value():
            raise ConfigError("missing app settings: HALOPSA_WEBHOOK_PASSWORD")
        username, password = basic_credentials(header(headers, "authorization"))
        # Both compared, always, so the answer time does not tell which one was wrong.
        user_ok = hmac.compare_digest(username.encode(), self._username.encode())
        password_ok = hmac.compare_digest(password.encode(), self._password.get_secret_value().encode())
        if not (user_ok and password_ok):
            raise ForgedWebhook("Basic credentials do not match")

    async def verify(self, raw: bytes, headers: Mapping[str, str]) -> WebhookEvent:
        # Credentials first: nobody unauthenticated gets their body parsed.
        self._authenticate(headers)
        envelope = parse_envelope(raw)
        log.info("halopsa webhook verified: %s", describe(envelope))
        return to_event(envelope, api_agent_id=self._api_agent_id)


def to_event(envelope: HaloEnvelope, *, api_agent_id: int | None) -> WebhookEvent:
    """Only a new ticket logged by someone other than TierOne's own API agent starts work."""
    ticket_id = envelope.ticket_id
    reason: str | None = None
    if envelope.event != NEW_TICKET_EVENT:
        reason = f"event {envelope.event!r} does not start work"
    elif ticket_id is None:
        reason = "the delivery names no ticket"
    elif api_agent_id is not None and envelope.agent_id == api_agent_id:
        reason = "logged by TierOne's own API agent"
    return WebhookEvent(
        psa=PsaKind.HALOPSA,
        delivery_id=envelope.id,
        ticket_id=str(ticket_id) if ticket_id is not None else None,
        action=envelope.event,
        actor=str(envelope.agent_id) if envelope.agent_id is not None else None,
        starts_work=reason is None,
        ignore_reason=reason,
    )


def describe(envelope: HaloEnvelope) -> dict[str, Any]:
    """Fields safe to log: no ticket content."""
    return {
        "id": envelope.id,
        "webhook_id": envelope.webhook_id,
        "event": envelope.event,
        "object_id": envelope.object_id,
        "agent_id": envelope.agent_id,
    }
