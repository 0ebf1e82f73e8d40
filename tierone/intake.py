"""Intake: turn a verified webhook event into exactly one unit of queued work.

A delivery is recorded before it is queued. A repeated delivery id is acknowledged and ignored
once its work is queued; if an earlier attempt crashed between recording and queueing, the
repeat queues it (the worker dedupes per ticket, so queueing twice never acts twice)."""

from __future__ import annotations

import logging
import re
import uuid
from datetime import UTC, datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from psa_integrations.models import PsaKind, WebhookEvent
from tierone.storage import ConcurrencyConflict, Storage

log = logging.getLogger("tierone.intake")

_FORBIDDEN_KEY_CHARS = re.compile(r"[/\\#?\x00-\x1f\x7f-\x9f]")


def table_key(value: str) -> str:
    """A Table Storage key from untrusted text: forbidden characters replaced, length bounded."""
    return _FORBIDDEN_KEY_CHARS.sub("_", value)[:400]


class TicketWork(BaseModel):
    """The queue message: ids only (the payload is a hint; the worker re-reads the ticket).

    `run_id` names one processing run of the ticket: the run that claims the ticket owns it, and a
    deferred retry of that run (a new message, `deferrals` + 1) carries the same run id."""

    psa: PsaKind
    ticket_id: str
    source: str = "webhook"
    delivery_id: str | None = None
    run_id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    deferrals: int = Field(default=0, ge=0)


class IntakeOutcome(StrEnum):
    QUEUED = "queued"
    DUPLICATE = "duplicate"
    IGNORED = "ignored"


async def accept(event: WebhookEvent, storage: Storage) -> IntakeOutcome:
    if not event.starts_work or event.ticket_id is None:
        log.info("delivery %s ignored: %s", event.delivery_id, event.ignore_reason)
        return IntakeOutcome.IGNORED
    partition, row = event.psa.value, table_key(event.delivery_id)
    record = {
        "PartitionKey": partition,
        "RowKey": row,
        "TicketId": event.ticket_id,
        "Action": event.action,
        "State": "received",
        "ReceivedAt": datetime.now(UTC),
    }
    try:
        await storage.deliveries.insert(record)
    except ConcurrencyConflict:
        existing = await storage.deliveries.get(partition, row)
        if existing is not None and existing.get("State") == "queued":
            log.info("delivery %s is a repeat; already queued", event.delivery_id)
            return IntakeOutcome.DUPLICATE
        log.warning("delivery %s was recorded but not queued before; queueing now", event.delivery_id)
    work = TicketWork(psa=event.psa, ticket_id=event.ticket_id, delivery_id=event.delivery_id)
    message_id = await storage.ticket_queue.send(work.model_dump_json())
    await storage.deliveries.upsert(
        {"PartitionKey": partition, "RowKey": row, "State": "queued", "MessageId": message_id}
    )
    log.info("delivery %s queued ticket %s:%s", event.delivery_id, event.psa.value, event.ticket_id)
    return IntakeOutcome.QUEUED
