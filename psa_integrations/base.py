"""The interfaces every PSA integration implements: a REST client for the pipeline, a webhook
verifier for intake, and a registrar for `tierone psa register`."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Protocol, runtime_checkable

from pydantic import BaseModel

from psa_integrations.models import ClosedTicket, Note, NoteVisibility, PsaKind, Ticket, TimeEntry, WebhookEvent


class PsaClient(Protocol):
    kind: PsaKind

    async def get_ticket(self, ticket_id: str) -> Ticket: ...

    async def list_notes(self, ticket_id: str) -> list[Note]: ...

    async def add_note(self, ticket_id: str, text: str, visibility: NoteVisibility) -> Note: ...

    async def list_time_entries(self, ticket_id: str) -> list[TimeEntry]: ...

    async def add_time_entry(self, ticket_id: str, start: datetime, end: datetime, notes: str) -> TimeEntry: ...

    async def close_ticket(self, ticket_id: str) -> str:
        """Set a closed status; return its name."""
        ...

    async def escalate_ticket(self, ticket_id: str) -> str | None:
        """Hand the ticket to the MSP's escalation status/queue/team, if configured; return its name."""
        ...

    async def list_ticket_ids_created_since(self, since: datetime) -> list[str]:
        """Ids of tickets created at or after `since` (for reconciliation), oldest first."""
        ...

    async def tenant_hint(self, company_id: str) -> str | None:
        """The Entra tenant id the PSA itself records for this company, if it records one."""
        ...

    async def aclose(self) -> None: ...


@runtime_checkable
class ClosedTicketSource(Protocol):
    """An optional capability of a PSA client, used by `tierone learn`: the MSP's resolved tickets."""

    async def list_closed_tickets(self, since: datetime, limit: int) -> list[ClosedTicket]:
        """Tickets closed at or after `since`, newest first, at most `limit`, with their categories and
        resolution text."""
        ...


class WebhookVerifier(Protocol):
    kind: PsaKind

    async def verify(self, raw: bytes, headers: Mapping[str, str]) -> WebhookEvent:
        """Authenticate and parse one delivery, using the bytes exactly as received.

        Raises psa_integrations.errors.MalformedWebhook, ForgedWebhook or VerificationUnavailable."""
        ...


class Registration(BaseModel):
    """What `tierone psa register` did (or, where the PSA allows only its UI, what a person must do)."""

    psa: PsaKind
    action: str  # created | updated | unchanged | manual
    detail: str
    steps: list[str] = []


class WebhookRegistrar(Protocol):
    async def register(self, url: str) -> Registration:
        """Create or update TierOne's webhook/callback so it posts ticket creations to `url`. Idempotent."""
        ...


def header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive header lookup (HTTP header names are case-insensitive)."""
    lowered = name.lower()
    return next((value for key, value in headers.items() if key.lower() == lowered), None)
