"""Per-client policy: how far TierOne may go on its own, per intent, for one customer tenant.

`tierone/policy.py` decides whether a request is safe at all (the same rules for every client);
this module adds what each client chose: per intent `auto` (act), `approval` (act once a named
approver agrees), `propose` (shadow mode: post the plan as an internal note, change nothing) or
`off`. Business hours in the client's time zone cap the mode after hours; VIP and break-glass
accounts are never touched (the target guard always wins); and the client may authorise named
contacts to ask for an intent on someone else's behalf.

Policies live in the `policies` table, versioned: every change writes a new version row and moves
a head row in one entity-group transaction guarded by the head's ETag, so two operators editing
at once cannot lose a version, and the history of who changed what is kept."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, time
from enum import StrEnum
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field, field_validator, model_validator

from identity_integrations.models import DirectoryUser
from tierone.policy import AUTONOMOUS_INTENTS, MANAGER_ONLY
from tierone.storage import ConcurrencyConflict, Table

DEFAULT_SCOPE = "*"  # the MSP-wide default row, used for any tenant without its own policy
HEAD = "~head"  # sorts after the zero-padded version rows
_MAX_ATTEMPTS = 8


class Mode(StrEnum):
    AUTO = "auto"
    APPROVAL = "approval"
    PROPOSE = "propose"
    OFF = "off"


# From most to least autonomous. `propose` ranks above `approval` because it never changes
# anything, and `off` hands the ticket to a human untouched.
_STRICTNESS = {Mode.AUTO: 0, Mode.APPROVAL: 1, Mode.PROPOSE: 2, Mode.OFF: 3}

# Conservative defaults (docs/policy.md explains each):
# - password reset and unlock are the bulk of L1 work, low blast radius, and already gated by
#   the target guard, the synced/disabled checks and one-time-link delivery;
# - MFA reset is how account takeovers finish (security.md §4.5: approval required);
# - group, mailbox and licence changes grant access to data or cost money;
# - onboarding creates and offboarding removes whole identities: a human agrees first.
DEFAULT_MODES: dict[str, Mode] = {
    "password_reset": Mode.AUTO,
    "account_unlock": Mode.AUTO,
    "mfa_reset": Mode.APPROVAL,
    "group_membership": Mode.APPROVAL,
    "mailbox_permission": Mode.APPROVAL,
    "license_change": Mode.APPROVAL,
    "onboarding": Mode.APPROVAL,
    "offboarding": Mode.APPROVAL,
}

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def stricter(a: Mode, b: Mode) -> Mode:
    return a if _STRICTNESS[a] >= _STRICTNESS[b] else b


def _norm(identifier: str) -> str:
    return identifier.strip().lower()


def _norm_list(values: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for value in values:
        if value.strip():
            seen.setdefault(_norm(value), None)
    return list(seen)


def _identifiers(user: str | DirectoryUser) -> set[str]:
    """Every name a person may be listed under: UPN, object id, mail."""
    if isinstance(user, str):
        return {_norm(user)} if user.strip() else set()
    return {_norm(v) for v in (user.user_principal_name, user.id, user.mail) if v}


class BusinessHours(BaseModel):
    days: list[int] = Field(default_factory=lambda: [0, 1, 2, 3, 4], description="0 = Monday … 6 = Sunday")
    start: time = time(8, 0)
    end: time = time(18, 0)

    @field_validator("days")
    @classmethod
    def _days(cls, value: list[int]) -> list[int]:
        if any(d < 0 or d > 6 for d in value):
            raise ValueError("days are 0 (Monday) … 6 (Sunday)")
        return sorted(set(value))

    @model_validator(mode="after")
    def _order(self) -> BusinessHours:
        if self.start >= self.end:
            raise ValueError("business hours must start before they end (overnight shifts: use after_hours)")
        return self

    @classmethod
    def parse(cls, days: str, hours: str) -> BusinessHours:
        """`mon-fri` or `mon,wed,fri` and `08:00-18:00`."""
        chosen: list[int] = []
        for part in days.lower().split(","):
            first, _, last = part.strip().partition("-")
            if first not in _DAYS or (last and last not in _DAYS):
                raise ValueError(f"unknown day in {days!r}; use mon … sun")
            a, b = _DAYS.index(first), _DAYS.index(last or first)
            chosen += list(range(a, b + 1)) if a <= b else [*range(a, 7), *range(0, b + 1)]
        start, _, end = hours.partition("-")
        return cls(days=chosen, start=time.fromisoformat(start.strip()), end=time.fromisoformat(end.strip()))

    def contains(self, local: datetime) -> bool:
        return local.weekday() in self.days and self.start <= local.time() < self.end


class Approver(BaseModel):
    id: str = Field(description="Entra UPN or object id")
    slack_id: str | None = None
    # Slack user ids are unique per workspace: with the team id bound too, a same-id user of
    # another workspace that shares the Slack app cannot decide.
    slack_team_id: str | None = None


class RequesterCheck(NamedTuple):
    allowed: bool
    rule: str
    reason: str


class ClientPolicy(BaseModel):
    modes: dict[str, Mode] = Field(default_factory=lambda: dict(DEFAULT_MODES))
    business_hours: BusinessHours = Field(default_factory=BusinessHours)
    time_zone: str = "UTC"
    # A ceiling outside business hours: `approval` turns auto into approval; `auto` changes nothing.
    # Default approval: after-hours credential requests are the classic social-engineering window
    # and nobody at the client is around to notice an unexpected change.
    after_hours: Mode = Mode.APPROVAL
    vip_upns: list[str] = Field(default_factory=list)
    break_glass_upns: list[str] = Field(default_factory=list)
    authorised_contacts: dict[str, list[str]] = Field(default_factory=dict)
    approvers: list[Approver] = Field(default_factory=list)
    # Password resets and MFA resets wait for a yes from a channel registered before the ticket
    # (security.md §4.5, tier T3). Switching this off is a client's informed choice, kept in history.
    confirm_credentials: bool = True

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"{value!r} is not an IANA time zone (e.g. Europe/London)") from exc
        return value

    @field_validator("modes")
    @classmethod
    def _modes(cls, value: dict[str, Mode]) -> dict[str, Mode]:
        unknown = set(value) - AUTONOMOUS_INTENTS
        if unknown:
            raise ValueError(f"unknown intent(s): {', '.join(sorted(unknown))}")
        # An intent the client never mentioned keeps its conservative default.
        return {**DEFAULT_MODES, **value}

    @field_validator("vip_upns", "break_glass_upns")
    @classmethod
    def _people(cls, value: list[str]) -> list[str]:
        return _norm_list(value)

    @field_validator("authorised_contacts")
    @classmethod
    def _contacts(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        unknown = set(value) - AUTONOMOUS_INTENTS
        if unknown:
            raise ValueError(f"unknown intent(s): {', '.join(sorted(unknown))}")
        return {intent: _norm_list(people) for intent, people in value.items() if people}

    def is_business_hours(self, now: datetime) -> bool:
        aware = now if now.tzinfo is not None else now.replace(tzinfo=UTC)  # naive = UTC (server clock)
        return self.business_hours.contains(aware.astimezone(ZoneInfo(self.time_zone)))

    def effective_mode(self, intent: str, now: datetime) -> tuple[Mode, str]:
        """The mode for this intent at this moment, and the rule that set it."""
        mode = self.modes.get(intent)
        if mode is None:
            return Mode.OFF, "C01-intent-not-configured"
        if self.is_business_hours(now):
            return mode, f"C02-client-{mode.value}"
        capped = stricter(mode, self.after_hours)
        if capped != mode:
            return capped, f"C03-after-hours-{capped.value}"
        return mode, f"C02-client-{mode.value}"

    def is_protected(self, user: str | DirectoryUser) -> str | None:
        """Why this target must never be changed by TierOne (the target guard), or None."""
        ids = _identifiers(user)
        if ids & set(self.break_glass_upns):
            return "break-glass account: never changed automatically"
        if ids & set(self.vip_upns):
            return "VIP flagged by the client: handled by an engineer"
        return None

    def is_authorised_contact(self, intent: str, requester: str | DirectoryUser) -> bool:
        return bool(_identifiers(requester) & set(self.authorised_contacts.get(intent, [])))

    def is_approver(self, who: str) -> bool:
        key = _norm(who)
        return any(_norm(a.id) == key or (a.slack_id and _norm(a.slack_id) == key) for a in self.approvers)

    def check_requester(
        self,
        intent: str,
        *,
        requester: DirectoryUser | None,
        target: DirectoryUser | None,
        requester_is_manager: bool,
    ) -> RequesterCheck:
        """Who may ask: the target themself, the target's manager of record, or a contact the client
        authorised for this intent. A leaver never offboards themself (MANAGER_ONLY)."""
        if requester is None:
            return RequesterCheck(False, "V01-requester-unknown", "the requester is not in the customer's directory")
        is_self = target is not None and requester.id == target.id
        if is_self and intent in MANAGER_ONLY:
            return RequesterCheck(False, "V02-self-not-allowed", f"{intent} is never requested by the user themself")
        if is_self:
            return RequesterCheck(True, "V03-self", "the user asked for themself")
        if requester_is_manager:
            return RequesterCheck(True, "V04-manager-of-record", "the target's manager of record asked")
        if self.is_authorised_contact(intent, requester):
            return RequesterCheck(True, "V05-authorised-contact", f"a contact the client authorised for {intent}")
        return RequesterCheck(
            False,
            "V06-requester-not-allowed",
            "the requester is neither the target, their manager of record, nor an authorised contact",
        )


class ResolvedPolicy(NamedTuple):
    policy: ClientPolicy
    version: int  # 0 = the built-in defaults, nothing stored
    scope: str  # the tenant id, DEFAULT_SCOPE, or "builtin"


class PolicyVersion(BaseModel):
    version: int
    set_at: datetime
    set_by: str
    change: str
    policy: ClientPolicy


def _row_key(version: int) -> str:
    return f"{version:010d}"


class PolicyStore:
    """Versioned per-tenant policies in one table: PartitionKey = tenant id (or "*"), RowKey = version."""

    def __init__(self, table: Table) -> None:
        self._table = table

    async def resolve(self, tenant: str | None) -> ResolvedPolicy:
        for scope in (tenant, DEFAULT_SCOPE) if tenant and tenant != DEFAULT_SCOPE else (DEFAULT_SCOPE,):
            head = await self._table.get(scope, HEAD)
            if head is not None:
                return ResolvedPolicy(
                    ClientPolicy.model_validate_json(str(head["Policy"])), int(head["Version"]), scope
                )
        return ResolvedPolicy(ClientPolicy(), 0, "builtin")

    async def get(self, tenant: str) -> tuple[ClientPolicy, int]:
        """The tenant's policy, else the MSP default, else the built-in defaults (version 0)."""
        resolved = await self.resolve(tenant)
        return resolved.policy, resolved.version

    async def set(self, tenant: str, change: Callable[[ClientPolicy], ClientPolicy], *, by: str, note: str) -> int:
        """Apply `change` to the current policy and store it as a new version; return that version.

        A tenant's first version starts from the MSP default. If another writer moved the head
        meanwhile, the change is re-applied to their version, so neither edit is lost."""
        from azure.core import MatchConditions
        from azure.data.tables import UpdateMode

        for _ in range(_MAX_ATTEMPTS):
            head = await self._table.get(tenant, HEAD)
            if head is not None:
                current, version = ClientPolicy.model_validate_json(str(head["Policy"])), int(head["Version"])
            else:
                current, version = (await self.resolve(DEFAULT_SCOPE)).policy, 0
            # Round-trip through the validators so a change cannot store an invalid policy.
            updated = ClientPolicy.model_validate(change(current.model_copy(deep=True)).model_dump())
            new_version = version + 1
            payload = updated.model_dump_json()
            at = datetime.now(UTC).isoformat()
            row = {
                "PartitionKey": tenant,
                "RowKey": _row_key(new_version),
                "Version": new_version,
                "Policy": payload,
                "SetBy": by,
                "SetAt": at,
                "Change": note,
            }
            new_head = {"PartitionKey": tenant, "RowKey": HEAD, "Version": new_version, "Policy": payload}
            operations: list[tuple[Any, ...]] = [("create", row)]
            if head is None:
                operations.append(("create", new_head))
            else:
                condition = {
                    "mode": UpdateMode.REPLACE,
                    "etag": head.metadata["etag"],
                    "match_condition": MatchConditions.IfNotModified,
                }
                operations.append(("update", new_head, condition))
            try:
                await self._table.transact(operations)
                return new_version
            except ConcurrencyConflict:
                continue
        raise ConcurrencyConflict(f"policy of {tenant} is too contended")

    async def history(self, tenant: str) -> list[PolicyVersion]:
        rows = await self._table.query(
            "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi", pk=tenant, lo="0", hi=":"
        )
        return sorted(
            (
                PolicyVersion(
                    version=int(r["Version"]),
                    set_at=datetime.fromisoformat(str(r["SetAt"])),
                    set_by=str(r.get("SetBy", "")),
                    change=str(r.get("Change", "")),
                    policy=ClientPolicy.model_validate(json.loads(str(r["Policy"]))),
                )
                for r in rows
            ),
            key=lambda v: v.version,
        )
