"""The deterministic policy: given verified facts, decide what may happen and say which rule fired.

Triage proposes an intent; only this module decides. The target guard (privileged roles) is
checked before anything else can allow an action, whatever the intent or the requester."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel

from identity_integrations.models import DirectoryRole, DirectoryUser

# Intents TierOne may complete on its own (per-client policy may switch any of them off).
AUTONOMOUS_INTENTS = frozenset(
    {
        "password_reset",
        "account_unlock",
        "mfa_reset",
        "group_membership",
        "license_change",
        "mailbox_permission",
        "onboarding",
        "offboarding",
    }
)
# Who may ask: the target themself or the target's manager of record; a leaver never offboards themself.
MANAGER_ONLY = frozenset({"offboarding"})
# Changes whose source of authority is on-premises AD for synced accounts.
MASTERED_ON_PREMISES = frozenset({"password_reset", "account_unlock", "offboarding"})
# A disabled account cannot use what these hand over.
NEEDS_ENABLED_ACCOUNT = frozenset({"password_reset", "mfa_reset"})

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
    threshold: float = 0.5  # the intent's confidence threshold, from triage
    requester: DirectoryUser | None
    target: DirectoryUser | None
    target_roles: list[DirectoryRole] = []
    names_someone_else: bool = False
    requester_is_manager: bool = False  # the requester is the target's manager of record in Entra ID
    requester_authorised: bool = False  # a contact the client authorised for this intent (client policy)
    has_onboarding_template: bool = False


class Decision(BaseModel):
    verdict: Verdict
    rule: str
    reason: str


def privileged_roles(roles: list[DirectoryRole]) -> list[str]:
    return sorted(r.display_name for r in roles if r.display_name.lower() not in RESETTABLE_ROLE_NAMES)


def decide(facts: PolicyInput) -> Decision:
    def escalate(rule: str, reason: str) -> Decision:
        return Decision(verdict=Verdict.ESCALATE, rule=rule, reason=reason)

    intent = facts.intent
    if intent == "other":
        return escalate("P01-not-identity-work", "not a Microsoft 365 identity request TierOne handles")
    if intent not in AUTONOMOUS_INTENTS:
        return escalate("P02-intent-not-automated", f"{intent} is not automated for this client")
    if facts.confidence < facts.threshold:
        return escalate(
            "P03-low-confidence", f"triage confidence {facts.confidence:.2f} is below {facts.threshold:.2f}"
        )
    if facts.requester is None:
        return escalate("P04-requester-unknown", "the requester is not a user of the customer's directory")
    if intent == "onboarding":
        if not facts.has_onboarding_template:
            return escalate("P12-no-onboarding-template", "the client has no onboarding template")
        return Decision(
            verdict=Verdict.ACT, rule="P13-onboarding-from-template", reason="new account from the client's template"
        )
    if facts.target is None:
        return escalate("P06-requester-not-target", "the request concerns someone TierOne could not identify")
    privileged = privileged_roles(facts.target_roles)
    if privileged:
        return escalate(
            "P05-target-privileged",
            f"the target holds privileged directory roles ({', '.join(privileged)}): never changed autonomously",
        )
    is_self = facts.target.id == facts.requester.id and not facts.names_someone_else
    vouched = facts.requester_is_manager or facts.requester_authorised
    if intent in MANAGER_ONLY and not vouched:
        return escalate(
            "P09-manager-required",
            f"{intent} must be requested by the user's manager of record or a contact the client authorised",
        )
    if not is_self and not vouched:
        return escalate(
            "P06-requester-not-target",
            "the request concerns someone other than the requester, who is neither their manager of record "
            "nor a contact the client authorised",
        )
    if facts.target.on_premises_sync_enabled and intent in MASTERED_ON_PREMISES:
        return escalate("P07-target-synced", "the account is synced from on-premises AD; this change is mastered there")
    if not facts.target.account_enabled and intent in NEEDS_ENABLED_ACCOUNT:
        return escalate("P08-target-disabled", "the account is disabled; this would not restore access")
    if intent == "password_reset" and is_self:
        return Decision(verdict=Verdict.ACT, rule="P10-self-service-reset", reason="the user asked for their own reset")
    if is_self:
        who, tag = "the user themself", "self"
    elif facts.requester_is_manager:
        who, tag = "the user's manager of record", "manager"
    else:
        who, tag = "a contact the client authorised", "authorised"
    return Decision(verdict=Verdict.ACT, rule=f"P11-{intent}-{tag}", reason=f"asked by {who}")
