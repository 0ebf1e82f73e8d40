"""Approval request delivery: Teams (Workflows webhook), Slack (Web API), e-mail (Graph), in a chain.

Every channel only delivers the request and a link to the approval page; Slack alone also carries
buttons, because Slack signs the callbacks it sends (tierone/approval_pages.py verifies them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from tierone.approvals import ApprovalRequest


@dataclass(frozen=True)
class Sent:
    channel: str
    recipients: list[str] = field(default_factory=list)
    detail: str = ""


class NotifyError(Exception):
    """A channel refused or failed the delivery (the chain moves on to the next channel)."""


class Channel(Protocol):
    name: str

    async def send(self, approval: ApprovalRequest, url: str) -> Sent: ...


def expect_line(url: str) -> str:
    """What the approver should expect, so that a look-alike link stands out (security.md §3.2, 10)."""
    host = url.split("//", 1)[-1].split("/", 1)[0]
    return f"You will be asked to sign in with your work account on {host} before you can approve or deny."
