"""Parked tickets: waiting for an approver's decision or a requester's out-of-band confirmation.

A run that needs a human parks its ticket (`tickets` row State awaiting_approval or
awaiting_confirmation, with the hold's id) and its queue message completes. When the hold is
answered — the approval page, Slack, the confirm page, or the expiry sweep — the ticket is queued
again under the run that owns it (the row's Owner), and that run picks up where it stopped.

Resuming is at-least-once: the page that took the decision queues the ticket at once, and the
sweep re-queues any parked ticket whose hold is no longer pending (a lost message, a crash between
the decision and the enqueue). The worker lets exactly one resume message move the ticket out of
its parked state (an ETag-conditional update), so duplicates never run the action twice."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from psa_integrations.models import PsaKind
from tierone.intake import TicketWork, table_key
from tierone.settings import Settings
from tierone.storage import Storage

if TYPE_CHECKING:
    from tierone.approvals import Approvals
    from tierone.confirmations import Confirmations
    from tierone.notify.chain import ApprovalNotifier

log = logging.getLogger("tierone.holds")

AWAITING_APPROVAL = "awaiting_approval"
AWAITING_CONFIRMATION = "awaiting_confirmation"
PARKED = frozenset({AWAITING_APPROVAL, AWAITING_CONFIRMATION})
RESUME_SOURCE = "resume"


def split_ref(ticket_ref: str) -> tuple[PsaKind, str]:
    psa, _, ticket_id = ticket_ref.partition(":")
    return PsaKind(psa), ticket_id


def current_hold(row: Mapping[str, Any]) -> str | None:
    """The id of the hold a parked `tickets` row waits on now (a run may have answered an earlier one)."""
    if row.get("State") == AWAITING_APPROVAL:
        return str(row.get("ApprovalId") or "") or None
    if row.get("State") == AWAITING_CONFIRMATION:
        return str(row.get("ConfirmationId") or "") or None
    return None


async def resume(storage: Storage, ticket_ref: str, hold_id: str) -> bool:
    """Queue the parked ticket again under its owning run; False if it is not parked on this hold."""
    psa, ticket_id = split_ref(ticket_ref)
    row = await storage.tickets.get(psa.value, table_key(ticket_id))
    if row is None or not hold_id or current_hold(row) != hold_id:
        return False
    work = TicketWork(psa=psa, ticket_id=ticket_id, source=RESUME_SOURCE, delivery_id=hold_id, run_id=str(row["Owner"]))
    await storage.ticket_queue.send(work.model_dump_json())
    log.info("ticket %s resumed (hold %s…)", ticket_ref, hold_id[:8])
    return True


@dataclass
class SweepReport:
    approvals_expired: int = 0
    confirmations_expired: int = 0
    notifications_sent: int = 0
    resumed: list[str] = field(default_factory=list)


class HoldSweeper:
    """The housekeeping pass over every hold: expire what is due, chase approvers on the next channel,
    and queue every parked ticket whose hold has been answered."""

    def __init__(
        self,
        storage: Storage,
        approvals: Approvals,
        confirmations: Confirmations,
        notifier: ApprovalNotifier | None = None,
    ) -> None:
        self._storage = storage
        self._approvals = approvals
        self._confirmations = confirmations
        self._notifier = notifier

    async def sweep(self, now: datetime | None = None) -> SweepReport:
        from tierone.approvals import ApprovalState
        from tierone.confirmations import ConfirmationState

        now = now or datetime.now(UTC)
        report = SweepReport(
            approvals_expired=len(await self._approvals.expire_due(now)),
            confirmations_expired=len(await self._confirmations.expire_due(now)),
        )
        parked = await self._storage.tickets.query(
            "State eq @a or State eq @c", a=AWAITING_APPROVAL, c=AWAITING_CONFIRMATION
        )
        for row in parked:
            ref = f"{row['PartitionKey']}:{row.get('TicketId') or row['RowKey']}"
            if row.get("State") == AWAITING_APPROVAL and row.get("ApprovalId"):
                approval = await self._approvals.get(str(row["ApprovalId"]))
                if approval is None:
                    continue
                if approval.state is ApprovalState.PENDING:
                    if self._notifier is not None:
                        report.notifications_sent += len(await self._notifier.advance(approval, now))
                    continue
                hold_id = approval.id
            elif row.get("State") == AWAITING_CONFIRMATION and row.get("ConfirmationId"):
                confirmation = await self._confirmations.get(str(row["ConfirmationId"]))
                if confirmation is None or confirmation.state is ConfirmationState.PENDING:
                    continue
                hold_id = confirmation.id
            else:
                continue
            if await resume(self._storage, ref, hold_id):
                report.resumed.append(ref)
        return report


def sweeper_from(settings: Settings) -> HoldSweeper:
    """The sweeper over the process-wide storage; approval reminders go out on the configured channels."""
    from tierone.approvals import Approvals
    from tierone.audit import AuditLog
    from tierone.confirmations import Confirmations
    from tierone.notify.chain import notifier_from
    from tierone.storage import get_storage

    storage = get_storage()
    audit = AuditLog(storage.audit)
    approvals = Approvals(storage.approvals, settings, audit)
    send_mail = None
    msp_tenant = settings.msp_tenant_id
    if msp_tenant and settings.approval_sender:
        from identity_integrations.graph import GraphDirectories

        directories = GraphDirectories(settings)

        async def send_mail(sender: str, to: str, subject: str, html: str) -> object:
            # Graph clients are bound to the running event loop: looked up per call.
            return await directories.for_tenant(msp_tenant).send_mail(sender, to, subject, html)

    notifier = notifier_from(settings, approvals, send_mail=send_mail)
    return HoldSweeper(storage, approvals, Confirmations(storage.approvals, settings, audit), notifier)
