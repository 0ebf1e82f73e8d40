"""The interface every PSA integration implements for the pipeline."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from psa_integrations.models import Note, NoteVisibility, PsaKind, Ticket, TimeEntry


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
        """Move the ticket to the MSP's escalation status, if one is configured; return its name."""
        ...

    async def aclose(self) -> None: ...
