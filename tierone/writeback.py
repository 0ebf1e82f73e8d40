"""Write-back to the PSA ticket, each write at most once.

Every note and time entry carries a reference marker; before writing, the ticket is checked
for it, so a retry after a crash (note written, checkpoint not yet saved) does not duplicate."""

from __future__ import annotations

from datetime import datetime

from psa_integrations.base import PsaClient
from psa_integrations.models import NoteVisibility


def marker(ticket_ref: str, kind: str) -> str:
    return f"[TierOne {ticket_ref} {kind}]"


async def ensure_note(
    psa: PsaClient,
    ticket_id: str,
    ref: str,
    kind: str,
    text: str,
    visibility: NoteVisibility,
    *,
    first_attempt: bool = False,
) -> bool:
    """Write the note unless it is already there. On a ticket's first attempt nothing of ours can be
    there yet, so the check (one PSA call) is skipped."""
    tag = marker(ref, kind)
    if not first_attempt and any(tag in note.text for note in await psa.list_notes(ticket_id)):
        return False
    await psa.add_note(ticket_id, f"{text}\n\n{tag}", visibility)
    return True


async def ensure_time_entry(
    psa: PsaClient,
    ticket_id: str,
    ref: str,
    start: datetime,
    end: datetime,
    text: str,
    *,
    first_attempt: bool = False,
) -> bool:
    tag = marker(ref, "time")
    if not first_attempt and any(tag in entry.notes for entry in await psa.list_time_entries(ticket_id)):
        return False
    await psa.add_time_entry(ticket_id, start, end, f"{text} {tag}")
    return True
