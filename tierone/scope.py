"""Which tickets TierOne works: those on the boards (ConnectWise), queues (Autotask) or teams
(HaloPSA) the MSP names. A ticket elsewhere — a project board, a sales queue, a team that does its
own triage — is left exactly as it is: no note, no status change, no time entry.

Nothing named means every board, queue or team (a pilot on a dedicated board names that board).
Names match without regard to case or surrounding spaces; ids match as written."""

from __future__ import annotations

from psa_integrations.models import PsaKind, Ticket
from tierone.settings import Settings

_SETTING = {
    PsaKind.CONNECTWISE: ("connectwise_boards", "board", "CONNECTWISE_BOARDS"),
    PsaKind.AUTOTASK: ("autotask_queues", "queue", "AUTOTASK_QUEUES"),
    PsaKind.HALOPSA: ("halopsa_teams", "team", "HALOPSA_TEAMS"),
}


def _names(raw: str | None) -> set[str]:
    return {part.strip().lower() for part in (raw or "").split(",") if part.strip()}


def out_of_scope(ticket: Ticket, settings: Settings) -> str | None:
    """Why TierOne must leave this ticket alone, or None when it is TierOne's to work."""
    field, noun, setting = _SETTING[ticket.psa]
    wanted = _names(getattr(settings, field))
    if not wanted:
        return None
    seen = {value.strip().lower() for value in (ticket.board_id, ticket.board_name) if value}
    if seen & wanted:
        return None
    where = ticket.board_name or ticket.board_id
    if not where:
        return f"the ticket has no {noun}, and {setting} names the ones TierOne works"
    return f"the ticket is on {noun} '{where}', which is not in {setting}"
