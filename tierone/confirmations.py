"""Out-of-band confirmation of a credential action, answered on a page reached from a mailed link.

A ticket that asks for a password reset or an MFA reset could come from an attacker who has taken
over the user's mailbox, or who is simply pretending to be the user. Before TierOne acts, it mails a
link to a channel registered *before* the ticket existed — the user's manager, or the user's
alternate e-mail on record — and waits for an answer there. Whoever wrote the ticket cannot answer
unless they also control that channel.

The link carries a 256-bit random token; the row (in the approvals table, partition
"confirmation") is keyed by the token's SHA-256, so neither the table nor the audit ever holds the
token. State moves pending → confirmed | declined | expired, and only out of pending: every
transition is an ETag-conditional update of the row read just before, so of two concurrent answers
(two clicks, a click racing the expiry sweep) exactly one wins and the others see "already
answered". Each transition writes one audit event keyed by (confirmation, state), so a retried step
never records it twice. Records carry what will be done and to whom — never a secret."""

from __future__ import annotations

import html
import json
import logging
import re
import secrets
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from tierone.audit import AuditEvent, AuditLog
from tierone.secret_links import token_hash
from tierone.settings import Settings
from tierone.storage import ConcurrencyConflict, Table

log = logging.getLogger("tierone.confirmations")

PARTITION = "confirmation"  # in the approvals table, beside the "approval" partition
_MAX_ATTEMPTS = 5
_ID = re.compile(r"^[0-9a-f]{64}$")  # a SHA-256 hex digest; anything else cannot be a row key of ours
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


class ConfirmationState(StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    DECLINED = "declined"
    EXPIRED = "expired"


def mask_address(address: str) -> str:
    """The address as j***@fabrikam.com (for jane.doe@fabrikam.com): enough for the person to recognise
    their address, too little for a reader of a page, note or audit record to harvest it."""
    local, at, domain = address.strip().rpartition("@")
    if not at:
        return (domain[:1] + "***") if domain else "***"
    return f"{local[:1]}***@{domain}"


class Confirmation(BaseModel):
    """One request for confirmation. The token that answers it is never stored, only its hash (the id)."""

    id: str = Field(description="the RowKey: SHA-256 hex of the link's token")
    tenant_id: str
    ticket_ref: str = Field(description="psa:ticket id")
    intent: str
    summary: str = Field(description="one sentence: what will be done to whom (no secrets)")
    facts: dict[str, str] = Field(default_factory=dict)
    recipient: str = Field(description="the e-mail address the link went to")
    recipient_role: str = Field(description="why that address: e.g. 'the user's manager'")
    created_at: datetime
    expires_at: datetime
    state: ConfirmationState = ConfirmationState.PENDING
    answered_at: datetime | None = Field(default=None, description="when it was confirmed, declined or expired")

    def is_expired(self, now: datetime | None = None) -> bool:
        return self.expires_at <= (now or datetime.now(UTC))

    @property
    def masked_recipient(self) -> str:
        return mask_address(self.recipient)


class ConfirmationRefused(Exception):
    """An answer that cannot be taken; the message is safe to show the person who tried."""

    status = 400


class ConfirmationNotFound(ConfirmationRefused):
    status = 404


_ALREADY = {
    ConfirmationState.CONFIRMED: "This request was already confirmed; nothing more is needed.",
    ConfirmationState.DECLINED: "This request was already declined; nobody will act on it.",
    ConfirmationState.EXPIRED: "This request has expired; nothing was changed.",
}


class AlreadyAnswered(ConfirmationRefused):
    status = 409

    def __init__(self, confirmation: Confirmation) -> None:
        super().__init__(_ALREADY.get(confirmation.state, f"This request was already {confirmation.state.value}."))
        self.confirmation = confirmation


class ConfirmationExpired(AlreadyAnswered):
    status = 410

    def __init__(self, confirmation: Confirmation) -> None:
        super().__init__(confirmation)
        self.args = (
            "This link has expired; nothing was changed. If the request is still needed, IT support will ask again.",
        )


def _to_entity(c: Confirmation) -> dict[str, Any]:
    return {
        "PartitionKey": PARTITION,
        "RowKey": c.id,
        "TenantId": c.tenant_id,
        "TicketRef": c.ticket_ref,
        "Intent": c.intent,
        "Summary": c.summary,
        "Facts": json.dumps(c.facts, sort_keys=True),
        "Recipient": c.recipient,
        "RecipientRole": c.recipient_role,
        "CreatedAt": c.created_at,
        "ExpiresAt": c.expires_at,
        "State": c.state.value,
    }


def _from_entity(e: Any) -> Confirmation:
    return Confirmation(
        id=str(e["RowKey"]),
        tenant_id=str(e["TenantId"]),
        ticket_ref=str(e["TicketRef"]),
        intent=str(e["Intent"]),
        summary=str(e["Summary"]),
        facts=json.loads(str(e.get("Facts") or "{}")),
        recipient=str(e["Recipient"]),
        recipient_role=str(e["RecipientRole"]),
        created_at=e["CreatedAt"],
        expires_at=e["ExpiresAt"],
        state=ConfirmationState(str(e["State"])),
        answered_at=e.get("AnsweredAt"),
    )


class Confirmations:
    def __init__(self, table: Table, settings: Settings, audit: AuditLog) -> None:
        self._table = table
        self._settings = settings
        self._audit = audit

    def url_for(self, token: str) -> str:
        return f"{self._settings.public_base_url.rstrip('/')}/api/confirm/{token}"

    async def create(
        self,
        *,
        tenant_id: str,
        ticket_ref: str,
        intent: str,
        summary: str,
        facts: dict[str, str],
        recipient: str,
        recipient_role: str,
        ttl_minutes: int,
        now: datetime | None = None,
        token: str | None = None,
    ) -> tuple[Confirmation, str]:
        """Store a pending confirmation; return it and the token (for the link — the caller mails it,
        never logs or stores it). A caller that must not create two for one request (a retried
        worker) chooses the token up front; a second create with it raises ConcurrencyConflict."""
        if ttl_minutes <= 0:
            raise ValueError("a confirmation needs a positive time to live")
        if "@" not in recipient:
            raise ValueError("a confirmation goes to an e-mail address")
        now = now or datetime.now(UTC)
        token = token or secrets.token_urlsafe(32)
        confirmation = Confirmation(
            id=token_hash(token),
            tenant_id=tenant_id,
            ticket_ref=ticket_ref,
            intent=intent,
            summary=summary,
            facts=dict(facts),
            recipient=recipient.strip(),
            recipient_role=recipient_role,
            created_at=now,
            expires_at=now + timedelta(minutes=ttl_minutes),
        )
        await self._table.insert(_to_entity(confirmation))
        await self._record_state(confirmation)
        log.info(
            "confirmation %s… requested from %s for %s", confirmation.id[:12], confirmation.masked_recipient, ticket_ref
        )
        return confirmation, token

    async def get(self, confirmation_id: str) -> Confirmation | None:
        if not _ID.match(confirmation_id or ""):
            return None
        entity = await self._table.get(PARTITION, confirmation_id)
        return None if entity is None else _from_entity(entity)

    async def by_token(self, token: str) -> Confirmation | None:
        return await self.get(token_hash(token))

    async def answer(self, token: str, confirm: bool, *, now: datetime | None = None) -> Confirmation:
        """Record the answer, or raise a ConfirmationRefused subclass saying why not."""
        confirmation_id = token_hash(token)
        for _ in range(_MAX_ATTEMPTS):
            now_ = now or datetime.now(UTC)
            entity = await self._table.get(PARTITION, confirmation_id)
            if entity is None:
                raise ConfirmationNotFound("There is no such confirmation request.")
            confirmation = _from_entity(entity)
            if confirmation.state is not ConfirmationState.PENDING:
                await self._record_state(confirmation)  # the winner may have crashed before its audit record
                if confirmation.state is ConfirmationState.EXPIRED:
                    raise ConfirmationExpired(confirmation)
                raise AlreadyAnswered(confirmation)
            if confirmation.is_expired(now_):
                expired = await self._expire(entity, now_)
                if expired is None:
                    continue  # something else changed the row first; re-read to see what
                raise ConfirmationExpired(expired)
            state = ConfirmationState.CONFIRMED if confirm else ConfirmationState.DECLINED
            change = {"PartitionKey": PARTITION, "RowKey": confirmation_id, "State": state.value, "AnsweredAt": now_}
            try:
                await self._table.update(change, etag=str(entity.metadata["etag"]))
            except ConcurrencyConflict:
                continue  # re-read: someone answered, or the sweep expired it
            answered = confirmation.model_copy(update={"state": state, "answered_at": now_})
            await self._record_state(answered)
            log.info("confirmation %s… %s (ticket %s)", confirmation_id[:12], state.value, answered.ticket_ref)
            return answered
        raise ConcurrencyConflict(f"confirmation {confirmation_id[:12]}… is too contended")

    async def expire_due(self, now: datetime | None = None) -> list[Confirmation]:
        """Move every pending confirmation past its expiry to expired; return those this call expired."""
        now = now or datetime.now(UTC)
        due = await self._table.query(
            "PartitionKey eq @pk and State eq @pending and ExpiresAt le @now",
            pk=PARTITION,
            pending=ConfirmationState.PENDING.value,
            now=now,
        )
        expired: list[Confirmation] = []
        for entity in due:
            confirmation = await self._expire(entity, now)
            if confirmation is not None:
                expired.append(confirmation)
        return expired

    # --- internals

    async def _expire(self, entity: Any, now: datetime) -> Confirmation | None:
        change = {
            "PartitionKey": PARTITION,
            "RowKey": entity["RowKey"],
            "State": ConfirmationState.EXPIRED.value,
            "AnsweredAt": now,
        }
        try:
            await self._table.update(change, etag=str(entity.metadata["etag"]))
        except ConcurrencyConflict:
            return None  # answered or expired meanwhile; the next sweep looks again if still pending
        confirmation = _from_entity(entity).model_copy(update={"state": ConfirmationState.EXPIRED, "answered_at": now})
        await self._record_state(confirmation)
        return confirmation

    async def _record_state(self, c: Confirmation) -> None:
        # Keyed by (confirmation, state): every state is entered at most once, so the key is idempotent.
        # The recipient is masked and the token is absent: the audit is read by more people than the mailbox.
        answered_by_recipient = c.state in (ConfirmationState.CONFIRMED, ConfirmationState.DECLINED)
        pending = c.state is ConfirmationState.PENDING
        event_type = "confirmation_requested" if pending else f"confirmation_{c.state.value}"
        await self._audit.append(
            c.tenant_id,
            f"confirmation:{c.id}:{c.state.value}",
            AuditEvent(
                event_type=event_type,
                ticket=c.ticket_ref,
                actor=c.masked_recipient if answered_by_recipient else "tierone",
                action=c.intent,
                outcome=c.state.value,
                evidence={
                    "confirmation_id": c.id,
                    "recipient": c.masked_recipient,
                    "recipient_role": c.recipient_role,
                    "expires_at": c.expires_at.isoformat(),
                    "answered_at": c.answered_at.isoformat() if c.answered_at else None,
                },
            ),
        )


def _as_clause(summary: str) -> str:
    """The summary as a clause to follow "asked IT support to": "Reset the password of …." becomes
    "reset the password of …" (an acronym such as "MFA …" keeps its capitals)."""
    text = summary.strip().rstrip(".").strip()
    if len(text) > 1 and text[0].isupper() and text[1].islower():
        text = text[0].lower() + text[1:]
    return text


def build_confirmation_mail(c: Confirmation, url: str, *, first_name: str) -> tuple[str, str]:
    """(subject, HTML body) for the confirmation mail.

    Plain and specific, so the recipient can tell what they are vouching for; every value from the
    ticket is escaped; the token appears once, in the link, and nothing else secret is in the mail.
    It states that opening the link changes nothing, so a link scanner's visit is not feared, and
    that IT support never asks for a password in reply, so a look-alike phishing mail stands out."""
    e = html.escape
    host = url.split("//", 1)[-1].split("/", 1)[0]
    greeting = f"Hello {e(first_name.strip())}," if first_name.strip() else "Hello,"
    body = (
        "<html><body style='font-family:Segoe UI,sans-serif'>"
        f"<p>{greeting}</p>"
        f"<p>Someone asked IT support to <b>{e(_as_clause(c.summary))}</b> (ticket {e(c.ticket_ref)}).</p>"
        f"<p>Before anything is done we are checking with you. This message went to {e(c.recipient_role)}, "
        "an address registered before the request was made.</p>"
        "<p><b>If this was you, or you have checked with the person concerned that they asked,</b> open the link "
        "and choose &ldquo;Yes, I asked for this&rdquo;.<br>"
        "<b>If not,</b> open the link and choose &ldquo;No, I did not ask&rdquo;. "
        "Nothing changes until someone confirms.</p>"
        f"<p><a href='{e(url, quote=True)}'>Open the confirmation page</a></p>"
        f"<p style='color:#555'>The link expires at {c.expires_at:%Y-%m-%d %H:%M} UTC and opens a page on "
        f"{e(host)}. Opening the link changes nothing by itself; you answer on the page. "
        "IT support will never ask you for a password or a code in reply to this message.</p>"
        "</body></html>"
    )
    subject = _CONTROL.sub(" ", f"Please confirm a request made to IT support (ticket {c.ticket_ref})")
    return subject, body


def confirmations_from(settings: Settings) -> Confirmations:
    """The Confirmations over the process-wide storage (for handlers)."""
    from tierone.storage import APPROVALS, get_storage

    storage = get_storage()
    return Confirmations(Table(storage.account, APPROVALS), settings, AuditLog(storage.audit))
