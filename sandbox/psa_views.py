"""One read-only view of a ticket in whichever PSA sandbox holds it, for the demo and the tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sandbox.stack import LocalStack


@dataclass(frozen=True)
class TicketRef:
    psa: str
    id: int

    def __str__(self) -> str:
        return f"{self.psa}:{self.id}"


@dataclass
class NoteView:
    text: str
    internal: bool


@dataclass
class TicketView:
    ref: TicketRef
    summary: str
    closed: bool
    status: str
    escalated: bool
    notes: list[NoteView] = field(default_factory=list)
    time_entries: int = 0

    def notes_by_tierone(self, *, internal: bool) -> list[str]:
        return [n.text for n in self.notes if n.internal is internal and "[TierOne " in n.text]


def view(stack: LocalStack, ref: TicketRef) -> TicketView:
    if ref.psa == "connectwise":
        return _connectwise(stack, ref)
    if ref.psa == "autotask":
        return _autotask(stack, ref)
    return _halopsa(stack, ref)


def _connectwise(stack: LocalStack, ref: TicketRef) -> TicketView:
    ticket = stack.connectwise.ticket(ref.id)
    status = ticket["status"]["name"]
    return TicketView(
        ref=ref,
        summary=ticket["summary"],
        closed=bool(ticket.get("closedFlag")),
        status=status,
        escalated=status == "Escalated",
        notes=[
            NoteView(n.get("text", ""), bool(n.get("internalAnalysisFlag"))) for n in stack.connectwise.notes(ref.id)
        ],
        time_entries=len(stack.connectwise.time_entries(ref.id)),
    )


def _autotask(stack: LocalStack, ref: TicketRef) -> TicketView:
    ticket = stack.autotask.ticket(ref.id)
    escalation_queue = int(stack.env["AUTOTASK_ESCALATION_QUEUE_ID"])
    return TicketView(
        ref=ref,
        summary=ticket["title"],
        closed=ticket["status"] == 5,
        status="Complete" if ticket["status"] == 5 else f"status {ticket['status']}",
        escalated=ticket.get("queueID") == escalation_queue,
        notes=[NoteView(n.get("description", ""), n.get("publish") != 1) for n in stack.autotask.notes(ref.id)]
        + [NoteView(ticket.get("description") or "", False)],
        time_entries=len(stack.autotask.time_entries(ref.id)),
    )


def _halopsa(stack: LocalStack, ref: TicketRef) -> TicketView:
    ticket = stack.halopsa.ticket(ref.id)
    actions = stack.halopsa.actions(ref.id)
    return TicketView(
        ref=ref,
        summary=ticket["summary"],
        closed=bool(ticket.get("hasbeenclosed")),
        status=str(ticket.get("status_name", ticket.get("status_id"))),
        escalated=ticket.get("team") == "Escalations",
        # Halo records time on actions; an action carrying time is the time entry, not a note.
        notes=[
            NoteView(a.get("note", ""), bool(a.get("hiddenfromuser")))
            for a in actions
            if a.get("note") and not float(a.get("timetaken") or 0)
        ],
        time_entries=sum(1 for a in actions if float(a.get("timetaken") or 0) > 0),
    )
