"""Teams: an Adaptive Card posted to a Workflows webhook ("When a Teams webhook request is received").

Workflows cards cannot carry Action.Submit (no bot receives it), so the card links to the approval
page with Action.OpenUrl and the decision happens there after sign-in. The webhook URL carries its
own signature and is kept as a Key Vault secret."""

from __future__ import annotations

from typing import Any

import httpx

from tierone.approvals import ApprovalRequest
from tierone.notify import NotifyError, Sent, expect_line

CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"


def build_message(approval: ApprovalRequest, url: str) -> dict[str, Any]:
    """The message envelope Workflows expects; a bare card is rejected ("Property 'type' must be ...")."""
    facts = [{"title": "Ticket", "value": approval.ticket_ref}, {"title": "Action", "value": approval.intent}]
    facts += [{"title": k, "value": v} for k, v in approval.facts.items()]
    facts += [
        {"title": "Requested by", "value": approval.requester.upn},
        {"title": "Expires", "value": f"{approval.expires_at:%Y-%m-%d %H:%M} UTC"},
    ]
    card = {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": "1.4",
        "body": [
            {"type": "TextBlock", "text": "Approval needed", "weight": "Bolder", "size": "Medium", "wrap": True},
            {"type": "TextBlock", "text": approval.summary, "wrap": True},
            {"type": "FactSet", "facts": facts},
            {"type": "TextBlock", "text": expect_line(url), "wrap": True, "isSubtle": True, "size": "Small"},
        ],
        "actions": [{"type": "Action.OpenUrl", "title": "Review and decide", "url": url}],
    }
    return {"type": "message", "attachments": [{"contentType": CARD_CONTENT_TYPE, "contentUrl": None, "content": card}]}


class TeamsChannel:
    name = "teams"

    def __init__(self, webhook_url: str, *, timeout: float = 10.0, verify: bool | str = True) -> None:
        self._url = webhook_url
        self._timeout = timeout
        self._verify = verify

    async def send(self, approval: ApprovalRequest, url: str) -> Sent:
        async with httpx.AsyncClient(timeout=self._timeout, verify=self._verify) as client:
            try:
                response = await client.post(self._url, json=build_message(approval, url))
            except httpx.HTTPError as exc:
                raise NotifyError(f"Teams webhook unreachable: {type(exc).__name__}") from exc
        # Workflows answers 202 Accepted; any 2xx means the flow took the message.
        if not response.is_success:
            # Never echo the URL: its query string is the credential.
            raise NotifyError(f"Teams webhook refused the card: HTTP {response.status_code}")
        return Sent(channel=self.name, recipients=["teams-channel"], detail=f"HTTP {response.status_code}")
