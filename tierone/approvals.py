"""Approval requests: a record per request in the `approvals` table, decided exactly once.

State moves pending → approved | denied | expired, and only out of pending: every transition is
an ETag-conditional update of the row read just before, so of two concurrent decisions (two
clicks, a click racing the expiry sweep, Slack and the web page) exactly one wins and the others
see "already decided". Each transition writes an audit event keyed by (approval, state), so a
retried step never records it twice.

The approval id is random and URL-safe, but it is not a bearer credential: deciding needs a
signed-in designated approver (web page) or a verified Slack request from an enrolled Slack user.
Records carry what will be done and to whom — never a secret."""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from tierone.audit import AuditEvent, AuditLog
from tierone.settings import Settings
from tierone.storage import ConcurrencyConflict, Table

log = logging.getLogger("tierone.approvals")

PARTITION = "approval"
_MAX_ATTEMPTS = 5  # ETag retries when a non-state field (e.g. notification progress) moved the row


class ApprovalState(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    EXPIRED = "expired"


class Identity(BaseModel):
    """An Entra ID user: object id (the identity we trust) and UPN (for people to read)."""

    oid: str
    upn: str


class Approver(Identity):
    """A designated approver; the Slack ids are bound at enrolment, never matched by name at click time."""

    slack_user_id: str | None = None
    slack_team_id: str | None = None


class Actor(BaseModel):
    """Whoever tries to decide: a signed-in Entra principal (oid) or a verified Slack user."""

    oid: str | None = None
    upn: str | None = None
    slack_user_id: str | None = None
    slack_team_id: str | None = None

    def describe(self) -> str:
        return self.upn or self.oid or f"slack:{self.slack_team_id or '?'}/{self.slack_user_id or '?'}"


class ApprovalRequest(BaseModel):
    id: str
    tenant_id: str
    ticket_ref: str = Field(description="psa:ticket id")
    intent: str
    summary: str = Field(description="the exact plan in one sentence: what, to whom (no secrets)")
    facts: dict[str, str] = Field(default_factory=dict, description="the plan's parameters, shown as a fact list")
    requester: Identity
    approvers: list[Approver]
    created_at: datetime
    expires_at: datetime
    state: ApprovalState = ApprovalState.PENDING
    decided_by: str | None = Field(default=None, description="oid of the approver, or 'tierone' for an expiry")
    decided_by_upn: str | None = None
    decided_at: datetime | None = None
    decision_channel: str | None = None
    plan_hash: str
    notified: list[str] = Field(default_factory=list, description="channels the request went out on, in order")
    last_notified_at: datetime | None = None

    def is_expired(self, now: datetime | None = None) -> bool:
        return self.expires_at <= (now or datetime.now(UTC))

    def approver_for(self, actor: Actor) -> Approver | None:
        """The designated approver this actor is, by Entra oid or by enrolled Slack user (and team)."""
        for approver in self.approvers:
            if actor.oid and approver.oid.lower() == actor.oid.lower():
                return approver
            if (
                actor.slack_user_id
                and approver.slack_user_id == actor.slack_user_id
                and (approver.slack_team_id is None or approver.slack_team_id == actor.slack_team_id)
            ):
                return approver
        return None


@dataclass(frozen=True)
class Decision:
    approval: ApprovalRequest
    approved: bool
    approver: Approver


class ApprovalRefused(Exception):
    """A decision that cannot be taken; the message is safe to show the person who tried."""

    status = 400


class ApprovalNotFound(ApprovalRefused):
    status = 404


class AlreadyDecided(ApprovalRefused):
    status = 409

    def __init__(self, approval: ApprovalRequest) -> None:
        super().__init__(f"This request was already {approval.state.value}.")
        self.approval = approval


class ApprovalExpired(AlreadyDecided):
    def __init__(self, approval: ApprovalRequest) -> None:
        super().__init__(approval)
        self.args = ("This request has expired; nothing was changed.",)


class SelfApproval(ApprovalRefused):
    status = 403


class NotAnApprover(ApprovalRefused):
    status = 403


def plan_hash_of(tenant_id: str, ticket_ref: str, intent: str, facts: dict[str, str]) -> str:
    """What the approver saw, hashed: the executor compares it before acting on an approval."""
    canonical = json.dumps(
        {"tenant": tenant_id, "ticket": ticket_ref, "intent": intent, "facts": facts},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _to_entity(a: ApprovalRequest) -> dict[str, Any]:
    return {
        "PartitionKey": PARTITION,
        "RowKey": a.id,
        "TenantId": a.tenant_id,
        "TicketRef": a.ticket_ref,
        "Intent": a.intent,
        "Summary": a.summary,
        "Facts": json.dumps(a.facts, sort_keys=True),
        "Requester": a.requester.model_dump_json(),
        "Approvers": json.dumps([x.model_dump() for x in a.approvers]),
        "CreatedAt": a.created_at,
        "ExpiresAt": a.expires_at,
        "State": a.state.value,
        "PlanHash": a.plan_hash,
        "Notified": json.dumps(a.notified),
    }


def _from_entity(e: Any) -> ApprovalRequest:
    return ApprovalRequest(
        id=str(e["RowKey"]),
        tenant_id=str(e["TenantId"]),
        ticket_ref=str(e["TicketRef"]),
        intent=str(e["Intent"]),
        summary=str(e["Summary"]),
        facts=json.loads(str(e.get("Facts") or "{}")),
        requester=Identity.model_validate_json(str(e["Requester"])),
        approvers=[Approver.model_validate(x) for x in json.loads(str(e["Approvers"]))],
        created_at=e["CreatedAt"],
        expires_at=e["ExpiresAt"],
        state=ApprovalState(str(e["State"])),
        decided_by=e.get("DecidedBy"),
        decided_by_upn=e.get("DecidedByUpn"),
        decided_at=e.get("DecidedAt"),
        decision_channel=e.get("DecisionChannel"),
        plan_hash=str(e["PlanHash"]),
        notified=json.loads(str(e.get("Notified") or "[]")),
        last_notified_at=e.get("LastNotifiedAt"),
    )


class Approvals:
    def __init__(self, table: Table, settings: Settings, audit: AuditLog) -> None:
        self._table = table
        self._settings = settings
        self._audit = audit

    def url_for(self, approval_id: str) -> str:
        return f"{self._settings.public_base_url.rstrip('/')}/api/approvals/{approval_id}"

    async def create(
        self,
        *,
        tenant_id: str,
        ticket_ref: str,
        intent: str,
        summary: str,
        requester: Identity,
        approvers: list[Approver],
        facts: dict[str, str] | None = None,
        now: datetime | None = None,
        approval_id: str | None = None,
    ) -> ApprovalRequest:
        """Record a pending request. A caller that must not create two for one plan (a retried
        worker) chooses `approval_id` up front; a second create with it raises ConcurrencyConflict."""
        if not approvers:
            raise ValueError("an approval request needs at least one designated approver")
        now = now or datetime.now(UTC)
        facts = dict(facts or {})
        approval = ApprovalRequest(
            id=approval_id or secrets.token_urlsafe(24),
            tenant_id=tenant_id,
            ticket_ref=ticket_ref,
            intent=intent,
            summary=summary,
            facts=facts,
            requester=requester,
            approvers=approvers,
            created_at=now,
            expires_at=now + timedelta(minutes=self._settings.approval_ttl_minutes),
            plan_hash=plan_hash_of(tenant_id, ticket_ref, intent, facts),
        )
        await self._table.insert(_to_entity(approval))
        await self._record(approval, "approval_requested", actor="tierone", outcome="pending")
        return approval

    async def get(self, approval_id: str) -> ApprovalRequest | None:
        entity = await self._table.get(PARTITION, approval_id)
        return None if entity is None else _from_entity(entity)

    async def decide(
        self, approval_id: str, actor: Actor, approve: bool, channel: str, *, now: datetime | None = None
    ) -> Decision:
        """Take the decision, or raise an ApprovalRefused subclass saying why not."""
        for _ in range(_MAX_ATTEMPTS):
            now_ = now or datetime.now(UTC)
            entity = await self._table.get(PARTITION, approval_id)
            if entity is None:
                raise ApprovalNotFound("There is no such approval request.")
            approval = _from_entity(entity)
            if approval.state is not ApprovalState.PENDING:
                await self._record_state(approval)  # the winner may have crashed before its audit record
                raise (ApprovalExpired if approval.state is ApprovalState.EXPIRED else AlreadyDecided)(approval)
            if approval.is_expired(now_):
                expired = await self._expire(entity, now_)
                if expired is None:
                    continue  # something else changed the row first; re-read to see what
                raise ApprovalExpired(expired)
            approver = approval.approver_for(actor)
            # Self-approval first: a requester who happens to be a designated approver is still refused.
            if self._is_requester(approval, actor, approver):
                raise SelfApproval("You asked for this change, so someone else has to approve it.")
            if approver is None:
                raise NotAnApprover("You are not a designated approver of this request.")
            state = ApprovalState.APPROVED if approve else ApprovalState.DENIED
            change = {
                "PartitionKey": PARTITION,
                "RowKey": approval_id,
                "State": state.value,
                "DecidedBy": approver.oid,
                "DecidedByUpn": approver.upn,
                "DecidedAt": now_,
                "DecisionChannel": channel,
            }
            try:
                await self._table.update(change, etag=str(entity.metadata["etag"]))
            except ConcurrencyConflict:
                continue  # re-read: either someone decided (→ AlreadyDecided) or only bookkeeping moved
            decided = approval.model_copy(
                update={
                    "state": state,
                    "decided_by": approver.oid,
                    "decided_by_upn": approver.upn,
                    "decided_at": now_,
                    "decision_channel": channel,
                }
            )
            await self._record_state(decided)
            log.info("approval %s %s by %s via %s", approval_id, state.value, approver.upn, channel)
            return Decision(approval=decided, approved=approve, approver=approver)
        raise ConcurrencyConflict(f"approval {approval_id} is too contended")

    async def expire_due(self, now: datetime | None = None) -> list[ApprovalRequest]:
        """Move every pending request past its expiry to expired; return those this call expired."""
        now = now or datetime.now(UTC)
        due = await self._table.query(
            "PartitionKey eq @pk and State eq @pending and ExpiresAt le @now",
            pk=PARTITION,
            pending=ApprovalState.PENDING.value,
            now=now,
        )
        expired: list[ApprovalRequest] = []
        for entity in due:
            approval = await self._expire(entity, now)
            if approval is not None:
                expired.append(approval)
        return expired

    async def mark_notified(self, approval_id: str, channel: str, now: datetime | None = None) -> ApprovalRequest:
        """Remember that the request went out on `channel` (the notifier's progress; not a state change)."""
        for _ in range(_MAX_ATTEMPTS):
            entity = await self._table.get(PARTITION, approval_id)
            if entity is None:
                raise ApprovalNotFound("There is no such approval request.")
            approval = _from_entity(entity)
            notified = [*approval.notified, channel] if channel not in approval.notified else approval.notified
            at = now or datetime.now(UTC)
            try:
                await self._table.update(
                    {
                        "PartitionKey": PARTITION,
                        "RowKey": approval_id,
                        "Notified": json.dumps(notified),
                        "LastNotifiedAt": at,
                    },
                    etag=str(entity.metadata["etag"]),
                )
            except ConcurrencyConflict:
                continue
            return approval.model_copy(update={"notified": notified, "last_notified_at": at})
        raise ConcurrencyConflict(f"approval {approval_id} is too contended")

    # --- internals

    @staticmethod
    def _is_requester(approval: ApprovalRequest, actor: Actor, approver: Approver | None) -> bool:
        requester = approval.requester
        oids = {x.lower() for x in (actor.oid, approver.oid if approver else None) if x}
        upns = {x.lower() for x in (actor.upn, approver.upn if approver else None) if x}
        return requester.oid.lower() in oids or requester.upn.lower() in upns

    async def _expire(self, entity: Any, now: datetime) -> ApprovalRequest | None:
        change = {
            "PartitionKey": PARTITION,
            "RowKey": entity["RowKey"],
            "State": ApprovalState.EXPIRED.value,
            "DecidedBy": "tierone",
            "DecidedAt": now,
        }
        try:
            await self._table.update(change, etag=str(entity.metadata["etag"]))
        except ConcurrencyConflict:
            return None  # decided, expired or touched meanwhile; the next sweep looks again if still pending
        approval = _from_entity(entity).model_copy(
            update={"state": ApprovalState.EXPIRED, "decided_by": "tierone", "decided_at": now}
        )
        await self._record_state(approval)
        return approval

    async def _record_state(self, approval: ApprovalRequest) -> None:
        actor = approval.decided_by_upn or approval.decided_by or "tierone"
        await self._record(approval, f"approval_{approval.state.value}", actor=actor, outcome=approval.state.value)

    async def _record(self, approval: ApprovalRequest, event_type: str, *, actor: str, outcome: str) -> None:
        # Keyed by (approval, state): every state is entered at most once, so the key is idempotent.
        await self._audit.append(
            approval.tenant_id,
            f"approval:{approval.id}:{outcome}",
            AuditEvent(
                event_type=event_type,
                ticket=approval.ticket_ref,
                actor=actor,
                requester=approval.requester.upn,
                action=approval.intent,
                outcome=outcome,
                evidence={
                    "approval_id": approval.id,
                    "plan_hash": approval.plan_hash,
                    "channel": approval.decision_channel,
                    "expires_at": approval.expires_at.isoformat(),
                },
            ),
        )


def approvals_from(settings: Settings) -> Approvals:
    """The Approvals over the process-wide storage (for handlers)."""
    from tierone.storage import APPROVALS, get_storage

    storage = get_storage()
    return Approvals(Table(storage.account, APPROVALS), settings, AuditLog(storage.audit))
