"""`tierone psa register autotask`: create or repair TierOne's ticket webhook through the REST API.

An Autotask webhook is a parent `TicketWebhooks` record plus children: at least one subscribed
field (without one the webhook never becomes ready) and the excluded resources whose saves do
not fire (our own API resource: loop prevention). Autotask refuses a second webhook with the same
URL, so the registrar looks for ours first (by name or URL) and patches what differs. A partly
created webhook is deleted again, so a retry starts clean instead of finding half a webhook.

The deactivation URL is the webhook URL itself: the verifier recognises `Deactivated` events."""

from __future__ import annotations

import logging
from typing import Any

from psa_integrations.autotask.client import AutotaskClient
from psa_integrations.base import Registration
from psa_integrations.models import PsaKind
from tierone.errors import PermanentError
from tierone.settings import Settings

log = logging.getLogger("tierone.psa.autotask")

WEBHOOK_NAME = "TierOne"
# The subscribed field only has to exist (we listen to creations, not updates); Status is the
# one Autotask's own examples use, and it rides along in every payload as a display field.
PREFERRED_FIELDS = ("status", "ticketnumber", "ticket number", "title")


def _get(record: dict[str, Any], name: str) -> Any:
    """Autotask reads back camelCase; match names case-insensitively all the same."""
    lowered = name.lower()
    return next((value for key, value in record.items() if key.lower() == lowered), None)


def _has(record: dict[str, Any], name: str) -> bool:
    return any(key.lower() == name.lower() for key in record)


class AutotaskRegistrar:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def _desired(self, url: str) -> dict[str, Any]:
        assert self._settings.autotask_webhook_secret is not None
        return {
            "Name": WEBHOOK_NAME,
            "WebhookUrl": url,
            "DeactivationUrl": url,
            "IsActive": True,
            "IsSubscribedToCreateEvents": True,
            "IsSubscribedToUpdateEvents": False,
            "IsSubscribedToDeleteEvents": False,
            "SecretKey": self._settings.autotask_webhook_secret.get_secret_value(),
            "SendThresholdExceededNotification": True,
        }

    async def register(self, url: str) -> Registration:
        self._settings.require("autotask_webhook_secret", "autotask_api_resource_id")
        client = AutotaskClient(self._settings)
        try:
            existing = await self._find(client, url)
            if existing is None:
                return await self._create(client, url)
            return await self._repair(client, existing, url)
        finally:
            await client.aclose()

    async def _find(self, client: AutotaskClient, url: str) -> dict[str, Any] | None:
        matches = await client.query(
            "TicketWebhooks",
            [
                {
                    "op": "or",
                    "items": [
                        {"op": "eq", "field": "name", "value": WEBHOOK_NAME},
                        {"op": "eq", "field": "webhookUrl", "value": url},
                    ],
                }
            ],
        )
        if len(matches) > 1:
            log.warning("%d Autotask webhooks look like TierOne's; updating the one with this URL", len(matches))
        matches.sort(key=lambda w: (_get(w, "webhookUrl") != url, not _get(w, "isActive"), int(w["id"])))
        return matches[0] if matches else None

    async def _create(self, client: AutotaskClient, url: str) -> Registration:
        webhook_id = await client.create("TicketWebhooks", self._desired(url))
        try:
            await self._add_field(client, webhook_id)
            await self._add_exclusion(client, webhook_id)
        except Exception:
            log.warning("autotask webhook %s only partly created; deleting it", webhook_id)
            await client.api("DELETE", f"TicketWebhooks/{webhook_id}")
            raise
        return Registration(
            psa=PsaKind.AUTOTASK,
            action="created",
            detail=f"ticket webhook {webhook_id} created for ticket creations",
        )

    async def _repair(self, client: AutotaskClient, current: dict[str, Any], url: str) -> Registration:
        webhook_id = int(current["id"])
        desired = self._desired(url)
        # A secret Autotask does not read back cannot be compared: set it again to be sure.
        changes = {
            name: value for name, value in desired.items() if not _has(current, name) or _get(current, name) != value
        }
        if changes:
            await client.api("PATCH", "TicketWebhooks", json={"id": webhook_id, **changes})
        fields = await client.api("GET", f"TicketWebhooks/{webhook_id}/Fields")
        if not any(_get(f, "isSubscribedField") for f in (fields or {}).get("items") or []):
            await self._add_field(client, webhook_id)
            changes["Fields"] = "subscribed field added"
        excluded = await client.api("GET", f"TicketWebhooks/{webhook_id}/ExcludedResources")
        ours = self._settings.autotask_api_resource_id
        if not any(_get(r, "resourceID") == ours for r in (excluded or {}).get("items") or []):
            await self._add_exclusion(client, webhook_id)
            changes["ExcludedResources"] = "API resource excluded"
        if not changes:
            return Registration(
                psa=PsaKind.AUTOTASK, action="unchanged", detail=f"ticket webhook {webhook_id} is up to date"
            )
        names = ", ".join(changes)
        return Registration(
            psa=PsaKind.AUTOTASK, action="updated", detail=f"ticket webhook {webhook_id} updated ({names})"
        )

    async def _add_field(self, client: AutotaskClient, webhook_id: int) -> None:
        body = {"FieldID": await self._field_id(client), "IsSubscribedField": True, "IsDisplayAlwaysField": True}
        await client.create(f"TicketWebhooks/{webhook_id}/Fields", {**body, "WebhookID": webhook_id})

    async def _add_exclusion(self, client: AutotaskClient, webhook_id: int) -> None:
        body = {"ResourceID": self._settings.autotask_api_resource_id, "WebhookID": webhook_id}
        await client.create(f"TicketWebhooks/{webhook_id}/ExcludedResources", body)

    async def _field_id(self, client: AutotaskClient) -> int:
        """Webhook field ids are not ticket field names: they come from this picklist (psa.md §2.1)."""
        info = await client.api("GET", "TicketWebhookFields/entityInformation/fields")
        field = next((f for f in (info or {}).get("fields") or [] if str(f.get("name")).lower() == "fieldid"), None)
        values = [v for v in (field or {}).get("picklistValues") or [] if v.get("isActive", True)]
        if not values:
            raise PermanentError("Autotask lists no ticket fields that webhooks can subscribe to")
        by_label = {str(v.get("label", "")).strip().lower(): v for v in values}
        chosen = next((by_label[name] for name in PREFERRED_FIELDS if name in by_label), values[0])
        return int(chosen["value"])
