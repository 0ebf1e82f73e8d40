"""`tierone psa register halopsa`: create or update TierOne's outbound webhook through `/api/Webhook`.

The Webhook schema in Halo's OpenAPI document names the fields (`url`, `authentication_type`,
`basic_username`, `basic_password`, `payload_type`, `events[]`, `disabled`, `note`) but not the
meaning of their numbers. What this module ASSUMES, and asks an admin to confirm in the UI:
- `authentication_type` 1 is Basic (community notes: 0 None, 1 Basic, 2 Bearer, ...);
- `payload_type` 2 is "Event information only" (the UI's order: small, full, event only);
- an event can be named by `name` ("New Ticket Logged"); no event number is sent, because a wrong
  guess would subscribe to a different event.

Halo does not hand a saved password back, so TierOne keeps an HMAC of its credentials in the
webhook's note and compares that: a rotated password is pushed again, an unchanged one is not."""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from typing import Any

from psa_integrations.base import Registration
from psa_integrations.halopsa.client import HaloClient
from psa_integrations.models import PsaKind
from tierone.settings import Settings

log = logging.getLogger("tierone.psa.halopsa")

WEBHOOK_NAME = "TierOne"
AUTH_BASIC = 1
PAYLOAD_EVENT_INFO_ONLY = 2
NEW_TICKET_EVENT = "New Ticket Logged"
_CHECK_RE = re.compile(r"credential check ([0-9a-f]{16})")

CHECK_STEPS = [
    "In HaloPSA open Configuration > Integrations > Webhooks > TierOne.",
    "Check the Events tab lists exactly one event, New Ticket Logged (add it if the list is empty).",
    "Check Payload type is 'Event information only' and Authentication is 'Basic Authentication'.",
    "Check batching is off: TierOne refuses batched deliveries.",
    "Optionally add conditions (e.g. ticket type or client) so only tickets TierOne may work on are sent.",
    "Log a test ticket and check the Deliveries tab shows a 2xx answer from TierOne.",
]


def credential_check(username: str, password: str) -> str:
    """16 hex digits that change with the credentials and reveal nothing useful about them."""
    return hmac.new(password.encode(), f"tierone-halopsa-webhook:{username}".encode(), hashlib.sha256).hexdigest()[:16]


def _has_new_ticket_event(webhook: dict[str, Any]) -> bool:
    return any(
        str(event.get("name", "")).lower() == NEW_TICKET_EVENT.lower()
        for event in webhook.get("events") or []
        if isinstance(event, dict)
    )


class HaloRegistrar:
    def __init__(self, settings: Settings, *, client: HaloClient | None = None) -> None:
        settings.require("halopsa_webhook_password")
        assert settings.halopsa_webhook_password is not None
        self._settings = settings
        self._client = client
        self._username = settings.halopsa_webhook_username
        self._password = settings.halopsa_webhook_password.get_secret_value()

    async def register(self, url: str) -> Registration:
        client = self._client or HaloClient(self._settings)
        try:
            return await self._register(client, url)
        finally:
            if self._client is None:
                await client.aclose()

    async def _register(self, client: HaloClient, url: str) -> Registration:
        existing = await self._find(client, url)
        if existing is None:
            saved = await client.save("Webhook", self._desired(url, None))
            return self._result("created", f"webhook {saved.get('id')} posts new tickets to {url}")
        if self._matches(existing, url):
            return self._result("unchanged", f"webhook {existing.get('id')} already posts new tickets to {url}")
        saved = await client.save("Webhook", self._desired(url, existing))
        return self._result("updated", f"webhook {saved.get('id')} now posts new tickets to {url}")

    async def _find(self, client: HaloClient, url: str) -> dict[str, Any] | None:
        hooks = [h for h in await client.call("GET", "Webhook") or [] if isinstance(h, dict)]
        ours = next((h for h in hooks if h.get("url") == url), None) or next(
            (h for h in hooks if str(h.get("name", "")).lower() == WEBHOOK_NAME.lower()), None
        )
        if ours is None or not ours.get("id"):
            return None
        # The list shows a summary; events, payload type and note come with the details.
        detail = await client.call("GET", f"Webhook/{ours['id']}", params={"includedetails": "true"})
        return detail if isinstance(detail, dict) else ours

    def _matches(self, webhook: dict[str, Any], url: str) -> bool:
        check = _CHECK_RE.search(str(webhook.get("note") or ""))
        return (
            webhook.get("url") == url
            and webhook.get("authentication_type") == AUTH_BASIC
            and webhook.get("basic_username") == self._username
            and webhook.get("payload_type") == PAYLOAD_EVENT_INFO_ONLY
            and not webhook.get("disabled")
            and _has_new_ticket_event(webhook)
            and check is not None
            and hmac.compare_digest(check.group(1), credential_check(self._username, self._password))
        )

    def _desired(self, url: str, existing: dict[str, Any] | None) -> dict[str, Any]:
        events = [e for e in (existing or {}).get("events") or [] if isinstance(e, dict)]
        if not _has_new_ticket_event({"events": events}):
            events.append({"id": 0, "name": NEW_TICKET_EVENT})
        record: dict[str, Any] = {
            "name": WEBHOOK_NAME,
            "url": url,
            "content_type": "application/json",
            "authentication_type": AUTH_BASIC,
            "basic_username": self._username,
            "basic_password": self._password,
            "payload_type": PAYLOAD_EVENT_INFO_ONLY,
            "events": events,
            "disabled": False,
            "note": (
                "Managed by TierOne (tierone psa register halopsa); keep batching off. "
                f"credential check {credential_check(self._username, self._password)}"
            ),
        }
        if existing is not None:
            record["id"] = existing["id"]
        return record

    @staticmethod
    def _result(action: str, detail: str) -> Registration:
        return Registration(psa=PsaKind.HALOPSA, action=action, detail=detail, steps=list(CHECK_STEPS))
