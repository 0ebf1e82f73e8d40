"""ConnectWise callbacks: parse the envelope and verify `x-content-signature`.

The signature is base64(HMAC-SHA256(key=SHA-256(signing_key), msg=raw body)); the signing key is
fetched from the envelope's `Metadata.key_url`. That URL comes from the (unverified) body, so it is
fetched only when its origin is exactly the ConnectWise host configured for this deployment —
otherwise anyone could point us at their own key server and sign with their own key."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import threading
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from psa_integrations.base import header
from psa_integrations.errors import ForgedWebhook, MalformedWebhook, VerificationUnavailable
from psa_integrations.models import PsaKind, WebhookEvent

log = logging.getLogger("tierone.psa.connectwise")

SIGNATURE_HEADER = "x-content-signature"
KEY_CACHE_SECONDS = 3600.0


# The generic outcomes under the names this module's callers know them by.
MalformedCallback = MalformedWebhook
ForgedCallback = ForgedWebhook
KeyServiceUnavailable = VerificationUnavailable


class CallbackMetadata(BaseModel):
    key_url: str


class CallbackEnvelope(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    message_id: str = Field(alias="MessageId", min_length=1, max_length=100)
    from_url: str | None = Field(None, alias="FromUrl")
    company_id: str | None = Field(None, alias="CompanyId")
    member_id: str | None = Field(None, alias="MemberId")
    action: str = Field(alias="Action")
    type: str = Field(alias="Type")
    record_id: int = Field(alias="ID")
    entity: str | None = Field(None, alias="Entity")
    metadata: CallbackMetadata = Field(alias="Metadata")

    @field_validator("action", "type")
    @classmethod
    def lower(cls, value: str) -> str:
        return value.lower()


def parse_callback(raw: bytes) -> CallbackEnvelope:
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedCallback("body is not JSON") from exc
    if not isinstance(data, dict):
        raise MalformedCallback("body is not a JSON object")
    try:
        return CallbackEnvelope.model_validate(data)
    except ValidationError as exc:
        fields = ", ".join(".".join(str(p) for p in err["loc"]) for err in exc.errors())
        raise MalformedCallback(f"not a ConnectWise callback (fields: {fields})") from None


def expected_signature(raw: bytes, signing_key: str) -> str:
    key = hashlib.sha256(signing_key.encode("utf-8")).digest()
    return base64.b64encode(hmac.new(key, raw, hashlib.sha256).digest()).decode("ascii")


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port
    if port is None:
        port = 443 if parts.scheme == "https" else 80 if parts.scheme == "http" else None
    return parts.scheme.lower(), (parts.hostname or "").lower(), port


class CallbackVerifier:
    """Verifies signatures, fetching signing keys only from the configured origin and caching them."""

    def __init__(self, allowed_origin: str, *, timeout: float = 3.0) -> None:
        self._allowed = _origin(allowed_origin)
        self._timeout = timeout
        self._cache: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def key_url_allowed(self, key_url: str) -> bool:
        parts = urlsplit(key_url)
        if parts.username or parts.password:
            return False
        return _origin(key_url) == self._allowed

    async def _fetch_key(self, key_url: str) -> str:
        try:
            async with httpx.AsyncClient(timeout=self._timeout, follow_redirects=False) as http:
                response = await http.get(key_url)
        except httpx.HTTPError as exc:
            raise KeyServiceUnavailable(f"signing key fetch failed: {type(exc).__name__}") from exc
        if response.status_code == 404:
            raise ForgedCallback("signing key unknown to ConnectWise")
        if response.status_code != 200:
            raise KeyServiceUnavailable(f"signing key fetch answered {response.status_code}")
        try:
            key = response.json()["signing_key"]
        except (ValueError, KeyError, TypeError) as exc:
            raise KeyServiceUnavailable("signing key response has no signing_key") from exc
        if not isinstance(key, str) or not key:
            raise KeyServiceUnavailable("signing key response is empty")
        return str(key)

    async def _key(self, key_url: str, *, refresh: bool) -> str:
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(key_url)
        if cached and cached[1] > now and not refresh:
            return cached[0]
        key = await self._fetch_key(key_url)
        with self._lock:
            self._cache[key_url] = (key, now + KEY_CACHE_SECONDS)
        return key

    async def verify(self, raw: bytes, signature: str | None, envelope: CallbackEnvelope) -> None:
        """Raise ForgedCallback unless `signature` is ConnectWise's signature of exactly `raw`."""
        if not signature:
            raise ForgedCallback(f"missing {SIGNATURE_HEADER}")
        key_url = envelope.metadata.key_url
        if not self.key_url_allowed(key_url):
            raise ForgedCallback("key_url is not on the configured ConnectWise host")
        key = await self._key(key_url, refresh=False)
        if hmac.compare_digest(expected_signature(raw, key), signature.strip()):
            return
        # A cached key may have been rotated: fetch once more before calling it forged.
        key = await self._key(key_url, refresh=True)
        if not hmac.compare_digest(expected_signature(raw, key), signature.strip()):
            raise ForgedCallback("signature does not match")


class ConnectWiseWebhooks:
    """The WebhookVerifier for ConnectWise callbacks."""

    kind = PsaKind.CONNECTWISE

    def __init__(self, allowed_origin: str, api_member: str) -> None:
        self._verifier = CallbackVerifier(allowed_origin)
        self._api_member = api_member

    async def verify(self, raw: bytes, headers: Mapping[str, str]) -> WebhookEvent:
        envelope = parse_callback(raw)
        await self._verifier.verify(raw, header(headers, SIGNATURE_HEADER), envelope)
        log.info("connectwise callback verified: %s", describe(envelope))
        return to_event(envelope, api_member=self._api_member)


def to_event(envelope: CallbackEnvelope, *, api_member: str) -> WebhookEvent:
    """Only a ticket *creation* by someone other than our own API member starts work."""
    reason: str | None = None
    if envelope.type != "ticket":
        reason = f"type {envelope.type} is not a ticket"
    elif envelope.action != "added":
        reason = f"action {envelope.action} does not start work"
    elif envelope.member_id and envelope.member_id.lower() == api_member.lower():
        reason = "saved by TierOne's own API member"
    return WebhookEvent(
        psa=PsaKind.CONNECTWISE,
        delivery_id=envelope.message_id,
        ticket_id=str(envelope.record_id),
        action=envelope.action,
        actor=envelope.member_id,
        starts_work=reason is None,
        ignore_reason=reason,
    )


def describe(envelope: CallbackEnvelope) -> dict[str, Any]:
    """Fields safe to log: no entity content."""
    return {
        "message_id": envelope.message_id,
        "type": envelope.type,
        "action": envelope.action,
        "record_id": envelope.record_id,
        "member": envelope.member_id,
    }
