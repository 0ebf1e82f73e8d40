"""Normalized PSA records. Vendor field names stop at the integration module that reads them."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field


class PsaKind(StrEnum):
    CONNECTWISE = "connectwise"
    AUTOTASK = "autotask"
    HALOPSA = "halopsa"


class Company(BaseModel):
    id: str
    name: str
    identifier: str | None = None


class Contact(BaseModel):
    id: str
    name: str
    email: str | None = None


class Ticket(BaseModel):
    psa: PsaKind
    id: str
    summary: str
    description: str = ""
    company: Company
    contact: Contact | None = None
    board_id: str | None = None
    board_name: str | None = None
    status_name: str | None = None
    closed: bool = False
    created_at: datetime | None = None


class ClosedTicket(BaseModel):
    """A resolved ticket as `tierone learn` reads it: what was asked, how the PSA filed it, how it ended."""

    psa: PsaKind
    id: str
    summary: str
    description: str = ""
    categories: list[str] = Field(
        default_factory=list, description="the PSA's own filing, broad to narrow: type/subtype/item, issue/sub-issue"
    )
    resolution: str = ""
    closed_at: datetime | None = None


class Note(BaseModel):
    id: str
    text: str
    internal: bool


class NoteVisibility(StrEnum):
    INTERNAL = "internal"
    CUSTOMER = "customer"


class TimeEntry(BaseModel):
    id: str
    notes: str = ""


class WebhookEvent(BaseModel):
    """What a verified webhook delivery tells us. Only a hint: the ticket is re-read through the API."""

    psa: PsaKind
    delivery_id: str = Field(description="the PSA's id for this delivery, the idempotency key")
    ticket_id: str | None
    action: str
    actor: str | None = None
    starts_work: bool = Field(description="a ticket creation by someone other than TierOne itself")
    ignore_reason: str | None = None
