"""`tierone psa register connectwise`: create or update TierOne's callback through the REST API.

ConnectWise rejects a second identical callback (ObjectExists), so the registrar looks for ours
first (by description, or by URL) and patches it when anything differs."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

from psa_integrations.base import Registration
from psa_integrations.connectwise.client import ConnectWiseClient
from psa_integrations.models import PsaKind
from tierone.settings import Settings

log = logging.getLogger("tierone.psa.connectwise")

DESCRIPTION = "TierOne: ticket created"


def callback_url(webhook_url: str) -> str:
    """ConnectWise appends the record id to the URL, so it must end with a parameter to receive it."""
    separator = "&" if urlsplit(webhook_url).query else "?"
    return webhook_url if webhook_url.endswith("recordId=") else f"{webhook_url}{separator}recordId="


class ConnectWiseRegistrar:
    def __init__(self, settings: Settings, *, board_id: int | None = None) -> None:
        self._settings = settings
        self._board_id = board_id

    def _desired(self, url: str) -> dict[str, Any]:
        return {
            "url": callback_url(url),
            "objectId": self._board_id or 1,
            "type": "ticket",
            "level": "board" if self._board_id else "owner",
            "description": DESCRIPTION,
            "payloadVersion": "3.0.0",
            "inactiveFlag": False,
            "isSelfSuppressedFlag": True,
        }

    async def register(self, url: str) -> Registration:
        client = ConnectWiseClient(self._settings)
        try:
            desired = self._desired(url)
            existing = await client.api("GET", "system/callbacks", params={"pageSize": 1000})
            ours = [
                cb
                for cb in existing or []
                if cb.get("description") == DESCRIPTION
                or str(cb.get("url", "")).split("?")[0] == desired["url"].split("?")[0]
            ]
            if not ours:
                created = await client.api("POST", "system/callbacks", json=desired)
                return Registration(
                    psa=PsaKind.CONNECTWISE, action="created", detail=f"callback {created.get('id')} created"
                )
            current = ours[0]
            changes = [
                {"op": "replace", "path": key, "value": value}
                for key, value in desired.items()
                if current.get(key) != value
            ]
            if not changes:
                return Registration(
                    psa=PsaKind.CONNECTWISE, action="unchanged", detail=f"callback {current['id']} is up to date"
                )
            await client.api("PATCH", f"system/callbacks/{int(current['id'])}", json=changes)
            names = ", ".join(change["path"] for change in changes)
            return Registration(
                psa=PsaKind.CONNECTWISE, action="updated", detail=f"callback {current['id']} updated ({names})"
            )
        finally:
            await client.aclose()
