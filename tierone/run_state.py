"""One ticket's run: its outcome, its `tickets` row (owner, checkpoints, parked holds) and what
the stages found about it, carried from the decision to the close-out."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from identity_integrations.models import DirectoryUser
from psa_integrations.models import Ticket
from tierone.client_policy import ClientPolicy
from tierone.evidence import Evidence
from tierone.holds import AWAITING_APPROVAL, AWAITING_CONFIRMATION, PARKED, RESUME_SOURCE, current_hold
from tierone.intake import TicketWork, table_key
from tierone.playbooks import password_reset
from tierone.playbooks.context import PlaybookRequest
from tierone.secret_links import SecretCipher
from tierone.storage import ConcurrencyConflict, Storage
from tierone.tenants import TenantMapping
from tierone.triage import TriageResult
from tierone.verification import Parties

log = logging.getLogger("tierone.pipeline")


class Outcome(StrEnum):
    RESOLVED = "resolved"
    ESCALATED = "escalated"
    AWAITING_APPROVAL = AWAITING_APPROVAL
    AWAITING_CONFIRMATION = AWAITING_CONFIRMATION
    PROPOSED = "proposed"  # shadow mode: the plan was posted, nothing changed
    SKIPPED = "skipped"
    FAILED = "failed"


TERMINAL = frozenset({Outcome.RESOLVED, Outcome.ESCALATED, Outcome.PROPOSED, Outcome.FAILED, Outcome.SKIPPED})


class TicketState:
    """The `tickets` row of one ticket: owner, stage checkpoints, outcome."""

    def __init__(self, storage: Storage, cipher: SecretCipher, work: TicketWork) -> None:
        self._table = storage.tickets
        self._cipher = cipher
        self.partition = work.psa.value
        self.row = table_key(work.ticket_id)
        self.ref = f"{work.psa.value}:{work.ticket_id}"
        self.data: dict[str, Any] = {}

    async def claim(self, work: TicketWork, message_id: str) -> bool:
        """True if this message may work on the ticket: the first run to arrive owns it; later
        messages of that run (deferred retries, a resume after a hold) continue it."""
        now = datetime.now(UTC)
        run_id = work.run_id
        first = {"State": "processing", "Owner": run_id, "TicketId": work.ticket_id, "StartedAt": now, "Attempts": 1}
        try:
            await self._table.insert({"PartitionKey": self.partition, "RowKey": self.row, **first})
            self.data = first
            return True
        except ConcurrencyConflict:
            entity = await self._table.get(self.partition, self.row)
        if entity is None:
            return False
        self.data = dict(entity)
        if entity.get("State") in TERMINAL:
            log.info("ticket %s already %s; run %s dropped", self.ref, entity.get("State"), run_id)
            return False
        if entity.get("Owner") != run_id:
            log.info("ticket %s is being handled by another run; %s dropped", self.ref, run_id)
            return False
        if work.source == RESUME_SOURCE and work.deferrals == 0:
            return await self._take_resume(entity, work, message_id)
        if entity.get("State") in PARKED:
            log.info(
                "ticket %s is %s; message %s dropped until the hold is answered", self.ref, entity["State"], message_id
            )
            return False
        await self.save(Attempts=int(entity.get("Attempts", 0)) + 1)
        return True

    async def _take_resume(self, entity: Any, work: TicketWork, message_id: str) -> bool:
        """Exactly one resume message moves a parked ticket back to processing (ETag); the host's
        retries of that same message may continue it, any duplicate resume is dropped, and so is a
        stale resume for a hold the run has already passed (it must not wake the ticket early)."""
        if entity.get("State") in PARKED:
            if work.delivery_id != current_hold(entity):
                log.info("ticket %s: resume for an earlier hold dropped (%s)", self.ref, message_id)
                return False
            parked_at = entity.get("ParkedAt")
            waited = (datetime.now(UTC) - parked_at).total_seconds() if isinstance(parked_at, datetime) else 0.0
            change = {
                "PartitionKey": self.partition,
                "RowKey": self.row,
                "State": "processing",
                "ResumeMessage": message_id,
                "Attempts": int(entity.get("Attempts", 0)) + 1,
                # Time spent waiting for people is not TierOne's work (time entry, evidence).
                "WaitSeconds": float(entity.get("WaitSeconds") or 0.0) + max(0.0, waited),
            }
            try:
                await self._table.update(change, etag=str(entity.metadata["etag"]))
            except ConcurrencyConflict:
                log.info("ticket %s was resumed by another message; %s dropped", self.ref, message_id)
                return False
            self.data.update(change)
            return True
        if entity.get("State") == "processing" and entity.get("ResumeMessage") == message_id:
            await self.save(Attempts=int(entity.get("Attempts", 0)) + 1)
            return True
        log.info("ticket %s: duplicate resume %s dropped", self.ref, message_id)
        return False

    async def save(self, **fields: Any) -> None:
        self.data.update(fields)
        await self._table.upsert({"PartitionKey": self.partition, "RowKey": self.row, **fields})

    def seal(self, value: str) -> str:
        return self._cipher.encrypt(value, self.ref)

    def unseal(self, sealed: str) -> str:
        return self._cipher.decrypt(sealed, self.ref)

    def reset_checkpoint(self) -> password_reset.ResetCheckpoint:
        token = self.data.get("LinkTokenSealed")
        return password_reset.ResetCheckpoint(
            secret_row=self.data.get("SecretRow"),
            link_token=self._cipher.decrypt(token, self.ref) if token else None,
            link_expires=self.data.get("LinkExpires"),
            started_at=self.data.get("ChangeStartedAt"),
        )

    async def save_reset_checkpoint(self, checkpoint: password_reset.ResetCheckpoint) -> None:
        assert checkpoint.link_token is not None
        await self.save(
            SecretRow=checkpoint.secret_row,
            LinkTokenSealed=self._cipher.encrypt(checkpoint.link_token, self.ref),
            LinkExpires=checkpoint.link_expires,
            ChangeStartedAt=checkpoint.started_at,
        )

    @property
    def first_attempt(self) -> bool:
        """True on the owning message's first delivery: nothing of this run can be on the ticket yet."""
        return int(self.data.get("Attempts", 1)) <= 1

    @property
    def waited_seconds(self) -> float:
        return float(self.data.get("WaitSeconds") or 0.0)

    @property
    def started_at(self) -> datetime:
        value = self.data.get("StartedAt")
        return value if isinstance(value, datetime) else datetime.now(UTC)


@dataclass
class Resolution:
    """What the stages found, carried to the close-out."""

    ticket: Ticket
    triage: TriageResult
    evidence: Evidence
    tenant_id: str | None = None
    requester: DirectoryUser | None = None
    target: DirectoryUser | None = None
    mapping: TenantMapping | None = None
    request: PlaybookRequest | None = None
    client: ClientPolicy | None = None
    policy_version: int = 0
    parties: Parties | None = None
