"""What a playbook is given: the tenant's directory (and Exchange), who asked, for whom, what,
and how to hand a credential over (a one-time link, never the ticket)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, Field

from identity_integrations.models import DirectoryUser


class OnboardingTemplate(BaseModel):
    """A client's rules for new accounts (kept per client; see tierone.tenants)."""

    domain: str
    upn_pattern: str = "{first}.{last}"  # placeholders: first, last, f (first initial), l (last initial)
    usage_location: str = "US"
    license_sku: str | None = None  # a skuPartNumber, e.g. "SPB"
    groups: list[str] = Field(default_factory=list)  # every new user
    groups_by_role: dict[str, list[str]] = Field(default_factory=dict)  # by job title / role keyword
    auto_reply_on_leave: str = "{name} is no longer with {company}. Please contact {manager} instead."


class PlaybookRequest(BaseModel):
    """What the ticket asks for, after triage and resolution. Text only ever narrows this."""

    intent: str
    object: str | None = None  # group, mailbox or licence product named
    remove: bool = False  # remove membership/licence/permission rather than add
    replaces: str | None = None  # licence swaps: the product being replaced ("from E3 to E5")
    rights: list[str] = Field(default_factory=list)  # mailbox: FullAccess, SendAs, SendOnBehalf
    new_user_name: str | None = None  # onboarding
    new_user_role: str | None = None
    dates: list[str] = Field(default_factory=list)


# Issues a one-time link for a secret and returns its URL; idempotent per purpose within a ticket.
CredentialSink = Callable[[str, str], Awaitable[str]]


@dataclass
class PlaybookContext:
    tenant_id: str
    ticket_ref: str
    directory: Any  # identity_integrations.graph.GraphDirectory (the Directory operations)
    exchange: Any | None  # identity_integrations.exchange.ExchangeAdmin, when Exchange work is needed
    requester: DirectoryUser
    target: DirectoryUser | None  # None for onboarding until the account exists
    request: PlaybookRequest
    deliver_credential: CredentialSink
    customer_name: str = ""
    template: OnboardingTemplate | None = None
    facts: dict[str, Any] = field(default_factory=dict)  # what planning found out, for the notes
