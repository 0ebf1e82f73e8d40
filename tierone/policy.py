"""The deterministic policy: given verified facts, decide what may happen and say which rule fired.

Triage proposes an intent; only this module decides. The target guard (privileged roles) is
checked before anything else can allow an action, whatever the intent or the requester."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel

from identity_integrations.models import DirectoryRole, DirectoryUser

# Intents TierOne may complete on its own today. Others are recognised but handed to a human.
AUTONOMOUS_INTENTS = frozenset({"password_reset"})

# Roles a User Administrator may not reset, and which we never touch without a human:
# anything beyond the short list Microsoft documents as resettable by helpdesk-level roles.
RESETTABLE_ROLE_NAMES = frozenset(
    {
        "directory readers",
        "guest inviter",
        "message center reader",
        "reports reader",
        "usage summary reports reader",
        "user experience success manager",
    }
)


class Verdict(StrEnum):
    ACT = "act"
    ESCALATE = "escalate"


class PolicyInput(BaseModel):
    intent: str
    confidence: float
    requester: DirectoryUser | None
    target: DirectoryUser | None
    target_roles: list[DirectoryRole] = []
    names_someone_else: bool = False


class Decision(BaseModel):
    verdict: Verdict
    rule: str
    reason: str


def privileged_roles(roles: list[DirectoryRole]) -> list[str]:
    return sorted(r.display_name for r in roles if r.display_name.lower() not in RESETTABLE_ROLE_NAMES)


def decide(facts: PolicyInput, min_confidence: float = 0.5) -> Decision:
    def escalate(rule: str, reason: str) -> Decision:
        return Decision(verdict=Verdict.ESCALATE, rule=rule, reason=reason)

    if facts.intent == "other":
        return escalate("P01-not-identity-work", "not a Microsoft 365 identity request TierOne handles")
    if facts.intent not in AUTONOMOUS_INTENTS:
        return escalate("P02-intent-not-automated", f"{facts.intent} is not automated for this client yet")
    if facts.confidence < min_confidence:
        return escalate("P03-low-confidence", f"triage confidence {facts.confidence:.2f} is below {min_confidence}")
    if facts.requester is None:
        return escalate("P04-requester-unknown", "the requester is not a user of the customer's directory")
    if facts.target is not None:
        privileged = privileged_roles(facts.target_roles)
        if privileged:
            return escalate(
                "P05-target-privileged",
                f"the target holds privileged directory roles ({', '.join(privileged)}): never changed autonomously",
            )
    if facts.names_someone_else or facts.target is None or facts.target.id != facts.requester.id:
        return escalate("P06-requester-not-target", "the request concerns someone other than the requester")
    if facts.target.on_premises_sync_enabled:
        return escalate(
            "P07-target-synced", "the account is synced from on-premises AD; its password is mastered there"
        )
    if not facts.target.account_enabled:
        return escalate("P08-target-disabled", "the account is disabled; a reset would not restore access")
    return Decision(verdict=Verdict.ACT, rule="P10-self-service-reset", reason="the user asked for their own reset")
