"""Slack: a Block Kit message with Approve/Deny buttons, and verification of the clicks Slack sends.

Posting uses slack-sdk's WebClient (urllib, no extra HTTP stack) in a worker thread. Link unfurling
is off, because an unfurl is a fetch of the approval link by Slack's servers. A click arrives at
POST /api/slack/interactions, signed with the app's signing secret; `verify_interaction` checks the
v0 HMAC and the 5-minute window with slack-sdk's SignatureVerifier. A replay inside that window
cannot decide twice: the approval row changes state only once."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

from tierone.approvals import ApprovalRequest
from tierone.notify import NotifyError, Sent, expect_line

APPROVE_ACTION = "approval_approve"
DENY_ACTION = "approval_deny"


class InvalidSlackRequest(Exception):
    """Signature missing, wrong or stale, or a body that is not an interaction payload (→ 401/400)."""


def build_blocks(approval: ApprovalRequest, url: str) -> list[dict[str, Any]]:
    fields = [("Ticket", approval.ticket_ref), ("Action", approval.intent), *approval.facts.items()]
    fields += [("Requested by", approval.requester.upn), ("Expires", f"{approval.expires_at:%Y-%m-%d %H:%M} UTC")]
    mentions = " ".join(f"<@{a.slack_user_id}>" for a in approval.approvers if a.slack_user_id)
    return [
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": f"*Approval needed* {mentions}\n{_escape(approval.summary)}"},
        },
        {
            "type": "section",
            # Slack allows at most 10 fields per section.
            "fields": [{"type": "mrkdwn", "text": f"*{_escape(k)}*\n{_escape(v)}"} for k, v in fields[:10]],
        },
        {
            "type": "actions",
            "block_id": f"approval:{approval.id}",
            "elements": [
                {
                    "type": "button",
                    "action_id": APPROVE_ACTION,
                    "value": approval.id,
                    "style": "primary",
                    "text": {"type": "plain_text", "text": "Approve"},
                },
                {
                    "type": "button",
                    "action_id": DENY_ACTION,
                    "value": approval.id,
                    "style": "danger",
                    "text": {"type": "plain_text", "text": "Deny"},
                },
            ],
        },
        {
            "type": "context",
            "elements": [
                {"type": "mrkdwn", "text": f"Or <{url}|review it in the browser>. {_escape(expect_line(url))}"}
            ],
        },
    ]


def _escape(text: str) -> str:
    # Slack's mrkdwn control characters (docs.slack.dev "Formatting text"): &, <, >.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class SlackChannel:
    name = "slack"

    def __init__(self, token: str, channel: str, *, base_url: str = "https://slack.com/api/") -> None:
        from slack_sdk import WebClient

        self._client = WebClient(token=token, base_url=base_url, timeout=10)
        self._channel = channel

    async def send(self, approval: ApprovalRequest, url: str) -> Sent:
        from slack_sdk.errors import SlackApiError, SlackClientError

        def post() -> Any:
            return self._client.chat_postMessage(
                channel=self._channel,
                text=f"Approval needed: {approval.summary}",  # the notification text and screen-reader fallback
                blocks=build_blocks(approval, url),
                unfurl_links=False,
                unfurl_media=False,
            )

        try:
            response = await asyncio.to_thread(post)
        except SlackApiError as exc:
            raise NotifyError(f"Slack refused the message: {exc.response.get('error')}") from exc
        except (SlackClientError, OSError) as exc:
            raise NotifyError(f"Slack unreachable: {type(exc).__name__}") from exc
        return Sent(channel=self.name, recipients=[self._channel], detail=str(response.get("ts", "")))


def verify_interaction(raw_body: bytes, headers: Mapping[str, str], signing_secret: str) -> dict[str, Any]:
    """The interaction payload of a request Slack signed in the last 5 minutes; InvalidSlackRequest otherwise."""
    from slack_sdk.signature import SignatureVerifier

    try:
        valid = SignatureVerifier(signing_secret).is_valid_request(raw_body, dict(headers))
    except (ValueError, UnicodeDecodeError):  # a timestamp that is not a number, a body that is not UTF-8
        valid = False
    if not valid:
        raise InvalidSlackRequest("bad or stale Slack signature")
    form = parse_qs(raw_body.decode("utf-8"))
    try:
        payload = json.loads(form["payload"][0])
    except (KeyError, IndexError, ValueError) as exc:
        raise InvalidSlackRequest("no interaction payload") from exc
    if not isinstance(payload, dict):
        raise InvalidSlackRequest("no interaction payload")
    return payload
