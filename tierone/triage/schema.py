"""What triage says about a ticket. Importing this module loads no model and no numeric library."""

from __future__ import annotations

from pydantic import BaseModel, Field

INTENTS = (
    "password_reset",
    "account_unlock",
    "mfa_reset",
    "mailbox_permission",
    "group_membership",
    "license_change",
    "onboarding",
    "offboarding",
    "other",
)
# Intents that name an action in Microsoft 365 / Entra ID (whether or not the policy automates it yet).
AUTOMATABLE_INTENTS = INTENTS[:-1]
# The object a request names, by intent: what `TriageResult.object` holds.
OBJECT_KIND = {"mailbox_permission": "mailbox", "group_membership": "group", "license_change": "licence"}


class TriageResult(BaseModel):
    """Triage only proposes: the policy decides. Every field here can only narrow what may happen."""

    intent: str
    confidence: float = Field(ge=0.0, le=1.0, description="calibrated probability of `intent`, after the guards")
    target_emails: list[str] = Field(default_factory=list, description="addresses of people other than the requester")
    target_names: list[str] = Field(default_factory=list, description="names of people other than the requester")
    names_someone_else: bool = False
    reasons: list[str] = Field(default_factory=list)
    candidates: list[tuple[str, float]] = Field(default_factory=list, description="top 3 intents with probabilities")
    threshold: float = Field(0.5, description="the confidence this intent needs before anything is automated")
    object: str | None = Field(None, description="the group, mailbox or licence named, for those intents")
    dates: list[str] = Field(default_factory=list, description="dates as written (start or leaving dates)")
    target: str | None = Field(None, description='"requester", an e-mail address or a name')
    flags: list[str] = Field(default_factory=list, description="guards that fired: injection, privileged, ...")

    @property
    def below_threshold(self) -> bool:
        return self.confidence < self.threshold
