"""E-mail: an HTML message with the approval link, sent through Graph from a designated mailbox.

The mail carries no buttons (Outlook Actionable Messages need a provider registration per scope);
it says what to expect — a sign-in — so that a look-alike phishing mail stands out."""

from __future__ import annotations

import html
from collections.abc import Awaitable, Callable
from typing import Any

from tierone.approvals import ApprovalRequest
from tierone.notify import NotifyError, Sent, expect_line

# UserOps.send_mail(sender_id, to, subject, html) in identity_integrations/graph_users.py has this shape.
SendMail = Callable[[str, str, str, str], Awaitable[Any]]


def build_mail(approval: ApprovalRequest, url: str) -> tuple[str, str]:
    """(subject, HTML body); every value from the ticket is escaped."""
    e = html.escape
    rows = [("Ticket", approval.ticket_ref), ("Action", approval.intent), *approval.facts.items()]
    rows += [("Requested by", approval.requester.upn), ("Expires", f"{approval.expires_at:%Y-%m-%d %H:%M} UTC")]
    table = "".join(f"<tr><th align=left>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in rows)
    body = (
        "<html><body style='font-family:Segoe UI,sans-serif'>"
        f"<p>An approval is needed before TierOne makes this change:</p><p><b>{e(approval.summary)}</b></p>"
        f"<table cellpadding=4>{table}</table>"
        f"<p><a href='{e(url, quote=True)}'>Review and decide</a></p>"
        f"<p style='color:#555'>{e(expect_line(url))} Opening the link changes nothing by itself; "
        "you decide on the page. If you did not expect this, do nothing — the request expires.</p>"
        "</body></html>"
    )
    subject = f"Approval needed: {approval.intent} ({approval.ticket_ref})"
    return subject, body


class EmailChannel:
    name = "email"

    def __init__(self, send_mail: SendMail, sender: str) -> None:
        self._send_mail = send_mail
        self._sender = sender

    async def send(self, approval: ApprovalRequest, url: str) -> Sent:
        subject, body = build_mail(approval, url)
        # Never to the requester: they cannot approve, and a mail would invite them to try.
        recipients = [a.upn for a in approval.approvers if a.oid.lower() != approval.requester.oid.lower()]
        if not recipients:
            raise NotifyError("no approver other than the requester has a mailbox")
        for to in recipients:
            await self._send_mail(self._sender, to, subject, body)
        return Sent(channel=self.name, recipients=recipients, detail=f"from {self._sender}")
