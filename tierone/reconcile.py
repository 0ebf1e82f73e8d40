"""Reconciliation: webhooks are best effort, so every few minutes each configured PSA is asked
for the tickets created recently, and any ticket TierOne has not seen is queued.

A ticket counts as seen once the worker has claimed it (the `tickets` table) or once this job
has queued it (a `poll|<id>` marker in `deliveries`). A ticket whose webhook message is still
waiting in the queue may be queued a second time; the worker's per-ticket claim drops the
second message, so the ticket is still processed exactly once."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from psa_integrations.base import PsaClient
from psa_integrations.models import PsaKind
from tierone.intake import TicketWork, table_key
from tierone.settings import Settings
from tierone.storage import ConcurrencyConflict, Storage

log = logging.getLogger("tierone.reconcile")


async def reconcile(
    settings: Settings,
    storage: Storage,
    kinds: list[PsaKind],
    psa_client: Callable[[PsaKind], PsaClient],
    now: datetime | None = None,
) -> dict[str, int]:
    """Queue every recent, unseen ticket of each PSA; return how many were queued per PSA."""
    since = (now or datetime.now(UTC)) - timedelta(minutes=settings.reconcile_lookback_minutes)
    queued: dict[str, int] = {}
    for kind in kinds:
        client = psa_client(kind)
        try:
            ticket_ids = await client.list_ticket_ids_created_since(since)
        except Exception:
            # One PSA being down must not stop the others; the next run covers the same window.
            log.exception("reconciliation could not list %s tickets", kind.value)
            continue
        finally:
            await client.aclose()
        queued[kind.value] = 0
        for ticket_id in ticket_ids:
            if await _queue_if_unseen(storage, kind, ticket_id):
                queued[kind.value] += 1
        if queued[kind.value]:
            log.warning(
                "reconciliation queued %d %s ticket(s) whose webhook never came", queued[kind.value], kind.value
            )
    return queued


async def _queue_if_unseen(storage: Storage, kind: PsaKind, ticket_id: str) -> bool:
    if await storage.tickets.get(kind.value, table_key(ticket_id)) is not None:
        return False
    row = table_key(f"poll|{ticket_id}")
    marker = {
        "PartitionKey": kind.value,
        "RowKey": row,
        "TicketId": ticket_id,
        "State": "received",
        "ReceivedAt": datetime.now(UTC),
    }
    try:
        await storage.deliveries.insert(marker)
    except ConcurrencyConflict:
        existing = await storage.deliveries.get(kind.value, row)
        if existing is not None and existing.get("State") == "queued":
            return False
    work = TicketWork(psa=kind, ticket_id=ticket_id, source="poll", delivery_id=f"poll|{ticket_id}")
    message_id = await storage.ticket_queue.send(work.model_dump_json())
    await storage.deliveries.upsert(
        {"PartitionKey": kind.value, "RowKey": row, "State": "queued", "MessageId": message_id}
    )
    log.info("reconciliation queued %s ticket %s", kind.value, ticket_id)
    return True
